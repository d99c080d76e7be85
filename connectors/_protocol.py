"""The connector protocol: what a class must have to be a yawlflow connector.

A connector class has a ``Config`` (a frozen ``msgspec.Struct``, validated when the spec loads),
an async ``call(config, input, ctx)`` and an async ``health()``. Optional members:

* ``yawlflow_api: int`` (class attribute): the connector API it was written for; a plugin that
  declares another than :data:`API_VERSION` is refused with a message saying which.
* ``policy: Mapping`` (class attribute): the connector's default resilience policy (the keys of
  :class:`yawlflow.connectors.Policy`), under the engine configuration's and the task's.
* ``async open(env)`` / ``async close()``: the pool hooks, called once per connector instance,
  before its first call and when its host closes (open a client or a pool here, not per call).
* ``async reconcile(key)``: the output of the call made earlier with this idempotency key, or
  ``None`` when no such call took effect (after a crash the engine may then call again).

One instance serves every call to its name in an engine, concurrently: keep per-call state in
locals, and shared state (a pool) safe for concurrent use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import msgspec

from yawlflow._clock import Clock
from yawlflow._handlers import ItemContext

__all__ = ("API_VERSION", "Connector", "ConnectorEnv", "Health", "Output")

API_VERSION = 1
"""The connector API this yawlflow speaks; a plugin's ``yawlflow_api`` must equal it."""

Output = Mapping[str, Any] | None
"""What ``call`` returns: a mapping to merge into the case data, or ``None``."""


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """What ``health()`` reports.

    Attributes:
        ok: the downstream answers as it should.
        detail: why not, or anything worth logging (a version, a latency).
    """

    ok: bool
    detail: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectorEnv:
    """What ``open(env)`` receives: the instance's name, and the engine clock it must time with.

    Attributes:
        name: the name the connector is registered under.
        clock: the engine's clock; a connector that sleeps or times anything uses it, never
            ``time`` or ``anyio.sleep``, so tests on a virtual clock run instantly.
    """

    name: str
    clock: Clock


@runtime_checkable
class Connector(Protocol):
    """A yawlflow connector (see the module docstring for the optional members)."""

    Config: ClassVar[type[msgspec.Struct]]

    async def call(self, config: Any, input: Mapping[str, Any], ctx: ItemContext) -> Output:
        """Do the work of one item.

        Args:
            config: the task's config, an instance of ``Config`` (already validated).
            input: the item's input.
            ctx: the item's context; pass ``ctx.idempotency_key`` to the downstream, so that a
                call made again after a crash or a retry takes effect once.

        Returns:
            A mapping to merge into the case data, or ``None``.

        Raises:
            yawlflow.ConnectorError: the call failed; ``retryable`` says whether the same call
                may succeed later. Translate the transport's errors at this boundary.
        """
        ...

    async def health(self) -> Health:
        """Whether the downstream is reachable and well; cheap, and bounded in time."""
        ...
