"""The bulkhead of a connector instance: at most N calls at once, a bounded queue, rejection beyond.

A bulkhead keeps one slow downstream from taking every task of the engine: calls past
``max_concurrent`` wait in a FIFO queue (anyio's semaphore is fair) of at most ``queue`` calls,
for at most ``queue_timeout`` of engine-clock time; a call that finds the queue full, or waits
too long, fails at once with ``BulkheadFullError``. The fast path (a free slot) takes the slot
without awaiting.
"""

from __future__ import annotations

import anyio

from yawlflow._clock import Clock

from ._errors import BulkheadFullError
from ._policy import BulkheadPolicy
from ._timeout import Expired, within

__all__ = ("Bulkhead",)


class Bulkhead:
    """A bulkhead (see the module docstring).

    Args:
        policy: slots, queue length and queue timeout.
        clock: the engine clock (for ``queue_timeout``).
        name: the connector's name, for messages.

    Attributes:
        in_flight: calls holding a slot now.
        waiting: calls in the queue now.
        peak: the most calls that ever held a slot at once.
    """

    def __init__(self, policy: BulkheadPolicy, clock: Clock, *, name: str = "connector") -> None:
        self.policy = policy
        self._clock = clock
        self.name = name
        self._slots: anyio.Semaphore | None = None  # made on first use, inside the event loop
        self.in_flight = 0
        self.waiting = 0
        self.peak = 0

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if need be; pair with :meth:`release`.

        Raises:
            BulkheadFullError: the queue is full, or ``queue_timeout`` passed.
        """
        if self._slots is None:
            self._slots = anyio.Semaphore(self.policy.max_concurrent, fast_acquire=True)
        try:
            self._slots.acquire_nowait()
        except anyio.WouldBlock:
            await self._wait(self._slots)
        self.in_flight += 1
        if self.in_flight > self.peak:
            self.peak = self.in_flight

    async def _wait(self, slots: anyio.Semaphore) -> None:
        policy = self.policy
        if self.waiting >= policy.queue:
            raise BulkheadFullError(
                f"connector {self.name!r}: bulkhead full: {self.in_flight} call(s) in flight "
                f"(max_concurrent {policy.max_concurrent}) and {self.waiting} queued (queue {policy.queue}); "
                "raise bulkhead.max_concurrent or bulkhead.queue in the engine configuration, or slow the callers",
                connector=self.name,
            )
        self.waiting += 1
        try:
            if policy.queue_timeout is None:
                await slots.acquire()
            else:
                await within(self._clock, policy.queue_timeout, slots.acquire)
        except Expired:
            raise BulkheadFullError(
                f"connector {self.name!r}: waited {float(policy.queue_timeout or 0):g}s for a bulkhead slot "
                f"({policy.max_concurrent} in flight); raise bulkhead.queue_timeout or bulkhead.max_concurrent",
                connector=self.name,
            ) from None
        finally:
            self.waiting -= 1

    def release(self) -> None:
        """Give back the slot taken by :meth:`acquire`."""
        self.in_flight -= 1
        if self._slots is not None:
            self._slots.release()
