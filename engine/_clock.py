"""Clocks: every timer, timeout and backoff of an engine goes through one injectable clock.

``SystemClock`` is the default (monotonic time, real sleeps). Tests pass
``yawlflow.testing.FakeClock``, which only moves when told to (or jumps to the next deadline once
every task is blocked), so a 30-day timer finishes at once.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ("Clock", "SystemClock")


@runtime_checkable
class Clock(Protocol):
    """What the engine needs of a clock."""

    def now_ns(self) -> int:
        """The current time, in nanoseconds (any fixed origin)."""
        ...

    async def sleep_until(self, deadline_ns: int) -> None:
        """Return once ``now_ns() >= deadline_ns`` (cancellable)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic_ns`` and ``anyio.sleep``."""

    def now_ns(self) -> int:
        """The monotonic time in nanoseconds."""
        return time.monotonic_ns()

    async def sleep_until(self, deadline_ns: int) -> None:
        """Sleep until ``deadline_ns``."""
        delay = (deadline_ns - time.monotonic_ns()) / 1e9
        await anyio.sleep(max(0.0, delay))
