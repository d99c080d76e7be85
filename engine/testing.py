"""yawlflow.testing: a virtual clock and engine fixtures for tests (also a pytest plugin).

``FakeClock`` only moves when told to: ``await clock.advance(seconds)`` wakes every sleeper due
in that span, in deadline order, letting the engine settle after each (``anyio``'s
``wait_all_tasks_blocked``), so a 30-day timer fires at once and in a fixed order. With
``autojump=True`` an engine that uses the clock jumps straight to the next deadline whenever all
its tasks are blocked (like trio's ``MockClock(autojump_threshold=0)``).

The pytest plugin (entry point ``pytest11: yawlflow``) provides the fixtures ``fake_clock`` (a
FakeClock, usable at any scope: it binds to no event loop until used) and ``engine`` (an
in-memory Engine on that clock, for ``anyio`` async tests).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio

__all__ = ("FakeClock",)


class FakeClock:
    """A virtual clock for tests.

    Args:
        start: the initial time in seconds.
        autojump: when used by an Engine, jump to the next deadline once every task is blocked.
    """

    def __init__(self, start: float = 0.0, *, autojump: bool = False) -> None:
        self._now = int(start * 1e9)
        self._heap: list[tuple[int, int, anyio.Event]] = []
        self._counter = itertools.count()
        self.autojump = autojump
        self._new_sleeper: anyio.Event | None = None

    def now_ns(self) -> int:
        """The virtual time in nanoseconds."""
        return self._now

    def now(self) -> float:
        """The virtual time in seconds."""
        return self._now / 1e9

    async def sleep_until(self, deadline_ns: int) -> None:
        """Block until the clock is advanced to ``deadline_ns``."""
        if deadline_ns <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._heap, (deadline_ns, next(self._counter), event))
        if self._new_sleeper is not None:
            self._new_sleeper.set()
        try:
            await event.wait()
        finally:
            event.set()  # a cancelled sleeper is dropped, so it cannot attract a jump

    async def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of virtual time."""
        await self.sleep_until(self._now + int(seconds * 1e9))

    def next_deadline(self) -> float | None:
        """The earliest pending deadline in seconds, or ``None``."""
        self._drop_done()
        return self._heap[0][0] / 1e9 if self._heap else None

    def _drop_done(self) -> None:
        while self._heap and self._heap[0][2].is_set():
            heapq.heappop(self._heap)

    async def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``, waking the due sleepers in deadline order.

        After each wake-up, and at the end, wait until every other task is blocked, so the
        engine has settled when this returns.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("a clock cannot go backwards: advance by a non-negative number of seconds")
        target = self._now + round(seconds * 1e9)
        await anyio.wait_all_tasks_blocked()
        while True:
            self._drop_done()
            if not self._heap or self._heap[0][0] > target:
                break
            deadline, _, event = heapq.heappop(self._heap)
            self._now = max(self._now, deadline)
            event.set()
            await anyio.wait_all_tasks_blocked()
        self._now = target
        await anyio.wait_all_tasks_blocked()

    async def run(self) -> None:
        """The autojump service an Engine starts for its clock (does nothing unless ``autojump``)."""
        if not self.autojump:
            return
        while True:
            await anyio.wait_all_tasks_blocked()
            self._drop_done()
            if not self._heap:
                self._new_sleeper = anyio.Event()
                await self._new_sleeper.wait()
                self._new_sleeper = None
                continue
            deadline, _, event = heapq.heappop(self._heap)
            self._now = max(self._now, deadline)
            event.set()


# -- the pytest plugin --------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the plugin
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def fake_clock() -> FakeClock:
        """A FakeClock at time 0 (no autojump)."""
        return FakeClock()

    @pytest.fixture
    async def engine(fake_clock: FakeClock) -> AsyncIterator[Any]:
        """An in-memory Engine on ``fake_clock``; needs an async test (``anyio`` marker)."""
        from . import Engine

        async with Engine(clock=fake_clock) as eng:
            yield eng
