"""The work-stealing strategies (:mod:`yawlflow._strategies`): ``_PoolStrategy``, what ``thread``
and ``process`` share (a :class:`~yawlflow._steal.WorkStealingPool` of jobs, batches, ``fork``,
cancellation, shutdown, metrics), and :class:`ThreadStrategy`, which runs sync handlers on the
pool's threads.
"""

from __future__ import annotations

import abc
import contextlib
import os
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self

import anyio

from ._errors import ConfigError
from ._inline import InlineStrategy
from ._jobs import Deferred, JobCancelledError, _Batch, _Call, _gather, _is_async, _workers, loop_waker
from ._steal import Meter, WorkStealingPool, summarize
from ._strategy import Forked, Job, StrategyMetrics

__all__ = ("ThreadStrategy",)


class _PoolStrategy(abc.ABC):
    """What ``thread`` and ``process`` share: a pool of :class:`_Call` s, batches, cancel, shutdown."""

    name: str
    _wait_after_abandon: float = 0.0  # seconds to wait for the workers once running jobs were abandoned

    def __init__(self, *, workers: int, seed: int | None, window: int) -> None:
        self._calls: dict[int, _Call] = {}
        self._closed = False
        self.pool: WorkStealingPool[_Call] = WorkStealingPool(
            self._run_call, self._done, workers=workers, rng=random.Random(seed),  # noqa: S311 - victims
            abandon=self._abandon, discard=self._discard, on_start=self._on_start, on_exit=self._on_exit,
            window=window, name=f"yawlflow-{self.name}",
        )

    # hooks for the subclasses (run on worker threads unless said otherwise)
    @abc.abstractmethod
    def _prepare(self, job: Job) -> Any:
        """On the loop: what a worker needs to run ``job`` (refuses what it cannot run)."""

    @abc.abstractmethod
    def _run_call(self, call: _Call, worker: int) -> Any:
        """On ``worker``: run ``call``; its value or its exception is the job's outcome."""

    def _abandon(self, call: _Call, worker: int) -> None:  # noqa: B027 - an optional hook
        """Under the pool's state lock: ``call``, running on ``worker``, was cancelled."""

    def _on_start(self, worker: int) -> None:  # noqa: B027 - an optional hook
        pass

    def _on_exit(self, worker: int) -> None:  # noqa: B027 - an optional hook
        pass

    @abc.abstractmethod
    def _cancelled_text(self, job: Job, running: bool) -> str:
        """The message of a job cancelled before (``running`` false) or while it ran."""

    # the pool's callbacks
    def _done(self, call: _Call, value: object, error: BaseException | None) -> None:
        call.batch.record(call.index, value, error)

    def _discard(self, call: _Call, running: bool) -> None:
        call.batch.record(call.index, None, JobCancelledError(
            f"{self._cancelled_text(call.job, running)} (the {self.name} strategy shut down)"))

    # the protocol
    def _check_open(self, jobs: Sequence[Job]) -> None:
        if self._closed:
            ids = ", ".join(str(j.id) for j in jobs[:5])
            raise ConfigError(f"the {self.name} strategy is shut down: it takes no more jobs (job {ids})")

    async def submit(self, job: Job) -> Any:
        """Run ``job`` on the pool; its value, or its exception raised again.

        Raises:
            ConfigError: the strategy is shut down, or cannot run this job (see the class).
            JobCancelledError: :meth:`cancel` or a shutdown cancelled it.
            WorkerCrashedError: (process) the worker process died while running it.
            Exception: what the handler raised.
        """
        return (await self.submit_many((job,)))[0]

    async def submit_many(self, jobs: Sequence[Job]) -> list[Any]:
        """Run ``jobs`` as one batch that idle workers split between them; values in order.

        Raises:
            ConfigError: as :meth:`submit`, checked for every job before any is queued.
            Exception: the first exception a job raised (the others were cancelled).
        """
        if not jobs:
            return []
        self._check_open(jobs)
        return await self._run_batch(jobs, [self._prepare(job) for job in jobs])

    def fork(self, jobs: Sequence[Job]) -> list[Forked]:
        """Queue ``jobs`` on the pool as one batch (spread over the workers' deques, then stolen
        back and forth), each with an outcome of its own (see :meth:`Strategy.fork`).

        Raises:
            ConfigError: the strategy is shut down, or cannot run a job (see the class), checked
                for every job before any is queued.
        """
        if not jobs:
            return []
        self._check_open(jobs)
        items = [self._prepare(job) for job in jobs]
        wake = loop_waker()
        calls = [_Call(job, item, _Batch(1, wake), 0) for job, item in zip(jobs, items, strict=True)]
        self._queue(calls)
        return [_PoolForked(self, c) for c in calls]

    def _queue(self, calls: Sequence[_Call]) -> None:
        """Register ``calls`` by job id and queue them on the pool in one step."""
        taken = [c.job.id for c in calls if c.job.id in self._calls]
        if taken or len({c.job.id for c in calls}) != len(calls):
            raise ConfigError(f"{self.name} strategy: job ids must be unique among running jobs "
                              f"({taken or 'duplicated in the batch'}); number jobs uniquely")
        for c in calls:
            self._calls[c.job.id] = c
        try:
            for c, ticket in zip(calls, self.pool.submit_many(calls), strict=True):
                c.ticket = ticket
        except BaseException:
            for c in calls:
                self._calls.pop(c.job.id, None)
            raise

    async def _run_batch(self, jobs: Sequence[Job], items: Sequence[Any]) -> list[Any]:
        batch = _Batch(len(jobs), loop_waker())
        calls = [_Call(job, item, batch, i) for i, (job, item) in enumerate(zip(jobs, items, strict=True))]
        self._queue(calls)
        try:
            try:
                await batch.event.wait()
            except BaseException:  # cancelled (or timed out): stop what has not finished
                self._cancel_all(calls)
                raise
        finally:
            for c in calls:
                self._calls.pop(c.job.id, None)
        if batch.error is not None:
            self._cancel_all(calls)
            raise batch.error
        return batch.values

    def _cancel_all(self, calls: Sequence[_Call]) -> None:
        for c in calls:
            if c.ticket is not None:
                self.pool.cancel(c.ticket)

    def cancel(self, job_id: int) -> bool:
        """Cancel a job (call from the loop's thread): its ``submit`` raises
        :class:`JobCancelledError`; whether it was still pending or running."""
        call = self._calls.get(job_id)
        if call is None or call.ticket is None:
            return False
        state = self.pool.cancel(call.ticket)
        if state is None:
            return False
        call.batch.record(call.index, None, JobCancelledError(self._cancelled_text(call.job, state == "running")))
        return True

    async def shutdown(self, drain_s: float | None = None) -> None:
        """Take no more jobs; let queued and running ones finish for up to ``drain_s`` seconds
        (``None``: as long as they take), then cancel the rest (see "Cancellation" in
        :mod:`yawlflow._strategies`). Idempotent."""
        self._closed = True
        stopped = anyio.Event()
        wake = loop_waker()

        def on_stopped() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone
                wake(stopped.set)

        self.pool.stop()
        self.pool.when_stopped(on_stopped)
        with anyio.move_on_after(drain_s):
            await stopped.wait()
        if not stopped.is_set():
            self.pool.stop(cancel_pending=True, abandon_running=True)
            with anyio.move_on_after(self._wait_after_abandon):
                await stopped.wait()

    def _counts(self) -> tuple[list[Meter], int, int, int]:
        submitted, started, cancelled = self.pool.counts()
        return list(self.pool.meters), submitted, started, cancelled

    def metrics(self) -> StrategyMetrics:
        """The counts so far (a snapshot; running workers may be a few jobs ahead)."""
        meters, submitted, started, cancelled = self._counts()
        return summarize(meters, submitted=submitted, started=started, cancelled=cancelled,
                         batches=self.pool.batches)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()



class _PoolForked:
    """One job of a batch queued on a work-stealing pool by ``fork``, with an outcome of its own."""

    __slots__ = ("_call", "_strategy", "job")

    def __init__(self, strategy: _PoolStrategy, call: _Call) -> None:
        self._strategy = strategy
        self._call = call
        self.job = call.job

    async def result(self) -> Any:
        """Wait for the job; its value, or its exception raised again. Cancelling the awaiting
        task cancels the job.

        Raises:
            JobCancelledError: :meth:`cancel`, the strategy's ``cancel`` or a shutdown cancelled it.
            Exception: what the handler raised.
        """
        call = self._call
        try:
            await call.batch.event.wait()
        except BaseException:
            self.cancel()
            raise
        finally:
            self._strategy._calls.pop(call.job.id, None)
        if call.batch.error is not None:
            raise call.batch.error
        return call.batch.values[0]

    def cancel(self) -> None:
        """Cancel the job (a no-op once it ended)."""
        call, strategy = self._call, self._strategy
        state = strategy.pool.cancel(call.ticket) if call.ticket is not None else None
        if state is not None:
            call.batch.record(0, None, JobCancelledError(strategy._cancelled_text(call.job, state == "running")))
        strategy._calls.pop(call.job.id, None)



class ThreadStrategy(_PoolStrategy):
    """Runs sync handlers on a work-stealing pool of threads (for blocking I/O, or C code that
    releases the GIL); an async handler submitted here runs in the caller's loop.

    Args:
        workers: threads (default: as ``concurrent.futures.ThreadPoolExecutor``,
            ``min(32, cpu count + 4)``).
        seed: seeds the victim choices (``None``: a fresh seed).
        window: run times kept per worker for the p99.

    Raises:
        ConfigError: ``workers`` is not a whole number >= 1.

    Use it as ``async with ThreadStrategy(workers=4) as s:`` or call :meth:`shutdown`.
    """

    name = "thread"

    def __init__(self, *, workers: int | None = None, seed: int | None = None, window: int = 1024) -> None:
        self.inline = InlineStrategy(window=window)
        super().__init__(workers=_workers(workers, min(32, (os.cpu_count() or 1) + 4), self.name),
                         seed=seed, window=window)

    def _fn(self, job: Job) -> Callable[..., Any]:
        if job.fn is None:
            raise ConfigError(f"thread strategy: job {job.id} (handler {job.handler!r}) has no function to call; "
                              "resolve the handler before submitting it")
        return job.fn

    def _prepare(self, job: Job) -> Any:
        return self._fn(job)

    def _run_call(self, call: _Call, worker: int) -> Any:
        return call.item(*call.job.args)

    def _cancelled_text(self, job: Job, running: bool) -> str:
        if running:
            return (f"job {job.id} (handler {job.handler!r}) was cancelled while running: its thread runs on until "
                    "the handler returns, and its result is dropped")
        return f"job {job.id} (handler {job.handler!r}) was cancelled before it started"

    async def submit(self, job: Job) -> Any:
        """As :meth:`_PoolStrategy.submit`; an async handler is awaited in this task instead.

        Raises:
            ConfigError: the strategy is shut down, or the job has no ``fn``.
            JobCancelledError: :meth:`cancel` or a shutdown cancelled it.
            Exception: what the handler raised.
        """
        if _is_async(self._fn(job)):
            self._check_open((job,))
            return await self.inline.submit(job)
        return (await self.submit_many((job,)))[0]

    def fork(self, jobs: Sequence[Job]) -> list[Forked]:
        """As :meth:`_PoolStrategy.fork`; a job of an async handler comes back as a
        :class:`Deferred` that runs in the task awaiting it.

        Raises:
            ConfigError: the strategy is shut down, or a job has no ``fn``.
        """
        if not jobs:
            return []
        self._check_open(jobs)
        on_loop = {job.id for job in jobs if _is_async(self._fn(job))}
        pooled = iter(super().fork([job for job in jobs if job.id not in on_loop]))
        return [Deferred(self.inline.submit, job) if job.id in on_loop else next(pooled) for job in jobs]

    async def submit_many(self, jobs: Sequence[Job]) -> list[Any]:
        """As :meth:`_PoolStrategy.submit_many`; async handlers are awaited in this loop meanwhile.

        Raises:
            ConfigError: the strategy is shut down, or a job has no ``fn``.
            Exception: the first exception a job raised (the others were cancelled).
        """
        if not jobs:
            return []
        self._check_open(jobs)
        on_loop = [i for i, job in enumerate(jobs) if _is_async(self._fn(job))]
        if not on_loop:
            return await self._run_batch(jobs, [self._prepare(job) for job in jobs])
        loop_set = set(on_loop)
        on_pool = [i for i in range(len(jobs)) if i not in loop_set]
        loop_jobs = [jobs[i] for i in on_loop]
        pool_jobs = [jobs[i] for i in on_pool]
        parts: list[Callable[[], Awaitable[Any]]] = [lambda: self.inline.submit_many(loop_jobs)]
        if pool_jobs:
            parts.append(lambda: self._run_batch(pool_jobs, [self._prepare(job) for job in pool_jobs]))
        done = await _gather(parts)
        values: list[Any] = [None] * len(jobs)
        for indices, part in zip((on_loop, on_pool), done, strict=False):
            for i, value in zip(indices, part, strict=True):
                values[i] = value
        return values

    def cancel(self, job_id: int) -> bool:
        """Cancel a job, on the pool or in the loop; whether it was still pending or running."""
        return super().cancel(job_id) or self.inline.cancel(job_id)

    async def shutdown(self, drain_s: float | None = None) -> None:
        """As :meth:`_PoolStrategy.shutdown`, for the async handlers running in the loop too."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.inline.shutdown, drain_s)
            await super().shutdown(drain_s)

    def _counts(self) -> tuple[list[Meter], int, int, int]:
        meters, submitted, started, cancelled = super()._counts()
        return [*meters, self.inline.meter], submitted + self.inline.submitted, started + self.inline.started, cancelled
