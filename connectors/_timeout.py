"""Time limits on the engine clock: await something, but give up after so many seconds of clock time.

On the real clock (``SystemClock``) this is ``anyio.move_on_after``: a deadline on the event
loop, no extra task. On any other clock (a FakeClock in tests) a watchdog task sleeps on the clock
and cancels the work when the clock reaches the deadline, so a 30-second timeout passes the
moment a test advances the clock by 30 seconds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

import anyio

from yawlflow._clock import Clock, SystemClock

__all__ = ("Expired", "within")

T = TypeVar("T")


class Expired(Exception):
    """The time limit passed before the work finished (the work was cancelled)."""


async def within(clock: Clock, seconds: float, fn: Callable[[], Awaitable[T]]) -> T:
    """Await ``fn()``, cancelling it once ``seconds`` of ``clock`` time have passed.

    A cancellation from outside (the caller's scope) propagates as usual.

    Raises:
        Expired: the limit passed first.
    """
    if type(clock) is SystemClock:
        with anyio.move_on_after(seconds):
            return await fn()
        raise Expired
    deadline = clock.now_ns() + int(seconds * 1e9)
    done = False
    value: T | None = None
    error: Exception | None = None
    async with anyio.create_task_group() as tg:

        async def watchdog() -> None:
            await clock.sleep_until(deadline)
            tg.cancel_scope.cancel()

        tg.start_soon(watchdog)
        try:
            value = await fn()
            done = True
        except Exception as exc:  # re-raised below, outside the task group (no ExceptionGroup)
            error = exc
        tg.cancel_scope.cancel()
    if error is not None:
        raise error
    if not done:  # only the watchdog cancels this task group's own scope: an outer cancel propagates
        raise Expired
    return cast("T", value)
