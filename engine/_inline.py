"""The ``inline`` execution strategy (:mod:`yawlflow._strategies`): handlers run in the caller's task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import anyio

from ._errors import ConfigError
from ._jobs import Deferred, JobCancelledError, _gather, _is_async
from ._steal import Meter, summarize
from ._strategy import Forked, Job, StrategyMetrics

__all__ = ("InlineStrategy",)


class InlineStrategy:
    """Runs handlers in the caller's task: async ones awaited, sync ones only if quick.

    Args:
        quick: names of sync handlers that return at once (no I/O, no long loops), which may be
            called on the event loop's thread; the engine passes those registered with
            ``quick=True``. Any other sync handler is refused.
        window: run times kept for the p99.

    All methods are called from the event loop's thread.
    """

    name = "inline"

    def __init__(self, *, quick: Iterable[str] = (), window: int = 1024) -> None:
        self._quick = set(quick)
        self._scopes: dict[int, anyio.CancelScope] = {}
        self.meter = Meter(window)
        self.submitted = 0
        self.started = 0
        self._closed = False
        self._idle: anyio.Event | None = None

    def mark_quick(self, handler: str) -> None:
        """Let the sync handler named ``handler`` run inline from now on."""
        self._quick.add(handler)

    def _admit(self, job: Job) -> Callable[..., Any]:
        if self._closed:
            raise ConfigError(f"the {self.name} strategy is shut down: it takes no more jobs (job {job.id})")
        fn = job.fn
        if fn is None:
            raise ConfigError(f"inline strategy: job {job.id} (handler {job.handler!r}) has no function to call; "
                              "resolve the handler before submitting it")
        if not _is_async(fn) and job.handler not in self._quick:
            raise ConfigError(
                f"inline strategy: handler {job.handler!r} is a sync function not marked quick, and would block the "
                f"event loop; register it with quick=True if it returns at once, or run it with strategy: thread"
            )
        if job.id in self._scopes:
            raise ConfigError(f"{self.name} strategy: job id {job.id} is already running; number jobs uniquely")
        return fn

    async def submit(self, job: Job) -> Any:
        """Run ``job`` in this task; its value, or its exception raised again.

        Raises:
            ConfigError: the strategy is shut down; the job has no ``fn``; it is a sync handler
                not marked quick; or its id is in use.
            JobCancelledError: :meth:`cancel` cancelled it.
            Exception: what the handler raised.
        """
        fn = self._admit(job)
        self.submitted += 1
        self.started += 1
        t0 = time.perf_counter()
        ok = False
        if not _is_async(fn):
            try:
                value = fn(*job.args)
                ok = True
                return value
            finally:
                self.meter.record(ok, time.perf_counter() - t0)
        scope = anyio.CancelScope()
        self._scopes[job.id] = scope
        try:
            with scope:
                value = await fn(*job.args)
                ok = True
            if not ok:
                raise JobCancelledError(f"job {job.id} (handler {job.handler!r}) was cancelled while running")
            return value
        finally:
            self.meter.record(ok, time.perf_counter() - t0)
            del self._scopes[job.id]
            if not self._scopes and self._idle is not None:
                self._idle.set()

    async def submit_many(self, jobs: Sequence[Job]) -> list[Any]:
        """Run ``jobs`` concurrently, each in a task of its own; their values in order.

        Raises:
            ConfigError: as :meth:`submit`, checked for every job before any starts.
            Exception: the first exception a handler raised (the others were cancelled).
        """
        for job in jobs:
            self._admit(job)
        return await _gather([partial(self.submit, job) for job in jobs])

    def fork(self, jobs: Sequence[Job]) -> list[Forked]:
        """Each job as a :class:`Deferred`: it runs in the task that awaits it.

        Raises:
            ConfigError: as :meth:`submit`, checked for every job.
        """
        for job in jobs:
            self._admit(job)
        return [Deferred(self.submit, job) for job in jobs]

    def cancel(self, job_id: int) -> bool:
        """Cancel a running job (its ``submit`` raises :class:`JobCancelledError`); whether it was running."""
        scope = self._scopes.get(job_id)
        if scope is None:
            return False
        scope.cancel()
        return True

    async def shutdown(self, drain_s: float | None = None) -> None:
        """Take no more jobs; wait up to ``drain_s`` seconds for running ones, then cancel them."""
        self._closed = True
        if self._scopes:
            self._idle = anyio.Event()
            with anyio.move_on_after(drain_s):
                await self._idle.wait()
            for scope in list(self._scopes.values()):
                scope.cancel()
            if self._scopes:
                self._idle = anyio.Event()
                await self._idle.wait()

    def metrics(self) -> StrategyMetrics:
        """The counts so far."""
        return summarize([self.meter], submitted=self.submitted, started=self.started, cancelled=0)
