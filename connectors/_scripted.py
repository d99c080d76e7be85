"""A connector whose calls follow a script, for tests of workflows and of the resilience layer.

Public as ``yawlflow.connectors.testing.ScriptedConnector``: each call takes the next step of its
script (a mapping to return, an exception to raise, seconds to sleep on the clock, ``BLOCK``, or
an async function), and it counts what happened (calls, the most at once, cancellations).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import msgspec

from yawlflow._clock import Clock, SystemClock
from yawlflow._handlers import ItemContext

from ._protocol import API_VERSION, ConnectorEnv, Health, Output

__all__ = ("BLOCK", "ScriptedConfig", "ScriptedConnector", "Step")


class _Block:
    def __repr__(self) -> str:
        return "BLOCK"


BLOCK: Any = _Block()
"""A :class:`ScriptedConnector` step: wait until cancelled."""

Step = (
    Mapping[str, Any] | BaseException | float | _Block | Callable[[Mapping[str, Any], ItemContext], Awaitable[Output]]
)
"""A scripted call: a mapping (returned), an exception (raised), seconds (slept on the clock, then
``{}``), :data:`BLOCK`, or an async function of (input, ctx)."""


class ScriptedConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A :class:`ScriptedConnector`'s config.

    Attributes:
        tag: any text; it comes back in each output as ``tag``.
    """

    tag: str = ""


class ScriptedConnector:
    """A connector whose calls follow a script (see :data:`Step`), counting what happens to them.

    Args:
        steps: what successive calls do.
        default: what every call past the script does (default: return ``{}``).
        clock: the clock numeric steps sleep on (default: the one ``open`` gives, else the
            system clock).
        healthy: what ``health()`` reports.

    Attributes:
        calls: the ``(input, ctx)`` of every call, in order.
        in_flight: calls running now.
        peak: the most calls that ever ran at once.
        cancelled: calls that ended by cancellation.
        opened, closed: how often ``open`` and ``close`` were called.
        healthy: what ``health()`` reports (assign to change it).
    """

    yawlflow_api = API_VERSION
    Config = ScriptedConfig

    def __init__(self, *steps: Step, default: Step | None = None, clock: Clock | None = None,
                 healthy: bool = True) -> None:
        self.steps = list(steps)
        self.default: Step = default if default is not None else {}
        self._clock = clock
        self.healthy = healthy
        self.calls: list[tuple[Mapping[str, Any], ItemContext]] = []
        self.in_flight = 0
        self.peak = 0
        self.cancelled = 0
        self.opened = 0
        self.closed = 0

    async def open(self, env: ConnectorEnv) -> None:
        """Count it, and take the engine clock unless one was given."""
        self.opened += 1
        if self._clock is None:
            self._clock = env.clock

    async def close(self) -> None:
        """Count it."""
        self.closed += 1

    async def call(self, config: ScriptedConfig, input: Mapping[str, Any], ctx: ItemContext) -> Output:
        """Do the next step of the script."""
        step = self.steps.pop(0) if self.steps else self.default
        self.calls.append((input, ctx))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            output = await self._do(step, input, ctx)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        if output is not None and config.tag:
            return {**output, "tag": config.tag}
        return output

    async def _do(self, step: Step, input: Mapping[str, Any], ctx: ItemContext) -> Output:
        if isinstance(step, BaseException):
            raise copy.copy(step)  # a fresh one each time: the retry layer adds notes to what it sees
        if isinstance(step, _Block):
            await anyio.sleep_forever()
            return None  # pragma: no cover - only cancellation ends it
        if isinstance(step, (int, float)):
            clock = self._clock or SystemClock()
            await clock.sleep_until(clock.now_ns() + int(step * 1e9))
            return {}
        if isinstance(step, Mapping):
            return dict(step)
        return await step(input, ctx)

    async def health(self) -> Health:
        """``healthy``."""
        return Health(ok=self.healthy, detail="scripted")
