"""The ``inline``, ``thread`` and ``process`` execution strategies (:class:`~yawlflow._strategy.Strategy`).

Theory of operation
-------------------
``inline`` awaits an async handler in the caller's task (the case's task group); a sync handler
runs there only if it is *quick* (named in ``quick=`` or :meth:`InlineStrategy.mark_quick`),
since a blocking call there would stall every case on the loop.

``thread`` and ``process`` schedule on a :class:`~yawlflow._steal.WorkStealingPool`. The
awaiting task never blocks its loop: it waits on an ``anyio.Event`` that the worker thread sets
through the loop's own thread-safe wake-up (``loop.call_soon_threadsafe`` on asyncio and uvloop,
the trio token's ``run_sync_soon`` on trio), one wake-up per batch (a batch wakes its task when
its last job finished, or at its first error). No polling, and no ``anyio.from_thread.run``
(which would hold the worker until the loop ran the call).

``thread`` runs a sync handler on a worker thread; an *async* handler submitted to it runs in
the caller's loop (as ``inline``: a coroutine needs a loop, and the caller's is there), counted
in the same metrics. ``process`` keeps the pool (and its deques and stealing) in the parent:
each worker thread owns one child process and a pipe to it, sends it the job and waits for the
reply. What crosses the pipe is msgpack (msgspec): the handler's *name* (``module:function``,
imported by the child, so a lambda or a closure is refused at submit with a
:class:`~yawlflow.ConfigError` naming the fix), the arguments, and the return value, as plain
data (a tuple arrives as a list, a struct as a dict). An exception crosses pickled: its type,
``args`` and attributes are kept where the class is picklable and importable in the parent; the
child's traceback text is its ``__cause__`` (:class:`RemoteTraceback`); otherwise it arrives as
a :class:`RemoteHandlerError` with the type's name, message and traceback. A child that dies
(``os._exit``, a signal, a segfault) fails its job with :class:`WorkerCrashedError`
(``retryable``) and is replaced at once; the pool goes on. Children start from a fork server
that has the imports done (or with ``spawn``), never with ``fork``: the parent runs threads.

Cancellation (cancelling the awaiting task, ``anyio.fail_after`` around it, or
:meth:`cancel` with the job's id): a job not started never starts; a running ``inline`` job is
cancelled where it awaits; a running ``process`` job's child is killed and replaced; a running
``thread`` job is *abandoned*: Python cannot stop a thread, so the handler runs on until it
returns and its result is dropped (the worker is busy until then). :meth:`cancel` makes the
awaiting task raise :class:`JobCancelledError`; a cancelled task raises its own cancellation.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import importlib
import inspect
import multiprocessing
import multiprocessing.context
import os
import pickle
import random
import signal
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, ClassVar, Literal, Self, cast

import anyio
import msgspec

from ._errors import ConfigError, YawlflowError
from ._steal import Meter, Ticket, WorkStealingPool, summarize
from ._strategy import Forked, Job, StrategyMetrics

__all__ = (
    "Deferred",
    "InlineStrategy",
    "JobCancelledError",
    "ProcessStrategy",
    "RemoteHandlerError",
    "RemoteTraceback",
    "ThreadStrategy",
    "WorkerCrashedError",
    "loop_waker",
)

Wake = Callable[[Callable[[], object]], object]


# -- errors (the lead may move them into _errors.py) ---------------------------------------------
class JobCancelledError(YawlflowError):
    """A job was cancelled before it returned: by :meth:`~yawlflow._strategy.Strategy.cancel`,
    or by a shutdown whose drain time ran out."""


class WorkerCrashedError(YawlflowError):
    """The worker process running a job died (``os._exit``, a signal, a segfault, out of memory).

    The job may well succeed if run again, so retry policies treat it as retryable. The worker
    was replaced by a fresh process.

    Attributes:
        retryable: always ``True``.
        pid: the dead process's id.
        exitcode: its exit code (negative: the signal that killed it), ``None`` if unknown.
        handler: the job's handler name.
        job_id: the job's id.
    """

    retryable: ClassVar[bool] = True

    def __init__(self, message: str = "", *, pid: int | None = None, exitcode: int | None = None,
                 handler: str = "", job_id: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        self.exitcode = exitcode
        self.handler = handler
        self.job_id = job_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class RemoteHandlerError(YawlflowError):
    """A handler raised, in a worker process, an exception that could not be rebuilt here (not
    picklable, or its class is not importable in the engine's process).

    Attributes:
        type_name: the exception's ``module.QualifiedName``.
        remote_traceback: the traceback as the worker process formatted it.
    """

    def __init__(self, message: str = "", *, type_name: str = "", remote_traceback: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class RemoteTraceback(Exception):
    """The ``__cause__`` of an exception raised in a worker process: its traceback there, as text."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0]) if self.args else ""


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


# -- waking the event loop from a worker thread ----------------------------------------------
def _async_library() -> str:
    try:
        import sniffio
    except ImportError:  # trio depends on sniffio: without it, this is asyncio
        return "asyncio"
    return sniffio.current_async_library()


def loop_waker() -> Wake:
    """The running loop's thread-safe "call this soon" (call it from the loop's own thread).

    Raises:
        ConfigError: the running async library is neither asyncio nor trio.
    """
    lib = _async_library()
    if lib == "asyncio":
        return asyncio.get_running_loop().call_soon_threadsafe
    if lib == "trio":
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    raise ConfigError(f"yawlflow strategies run on asyncio or trio, not {lib!r}")


class _Batch:
    """The outcome of one submission (one job or many), filled in by workers, awaited by a task."""

    __slots__ = ("error", "event", "fired", "lock", "remaining", "values", "wake")

    def __init__(self, n: int, wake: Wake) -> None:
        self.event = anyio.Event()
        self.wake = wake
        self.values: list[Any] = [None] * n
        self.error: BaseException | None = None
        self.remaining = n
        self.fired = False
        self.lock = threading.Lock()

    def record(self, index: int, value: Any, error: BaseException | None) -> None:
        """Job ``index`` ended (any thread); the awaiting task wakes at the last one or the first error."""
        with self.lock:
            if error is None:
                self.values[index] = value
            elif self.error is None:
                self.error = error
            self.remaining -= 1
            fire = not self.fired and (self.remaining == 0 or self.error is not None)
            if fire:
                self.fired = True
        if fire:
            with contextlib.suppress(RuntimeError):  # the loop is closed (trio: RunFinishedError)
                self.wake(self.event.set)


class _Call:
    """One job on its way through a pool: the job, what the worker needs (``item``), its batch."""

    __slots__ = ("batch", "index", "item", "job", "ticket")

    def __init__(self, job: Job, item: Any, batch: _Batch, index: int) -> None:
        self.job = job
        self.item = item
        self.batch = batch
        self.index = index
        self.ticket: Ticket[_Call] | None = None  # set on the loop's thread once queued


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    )


def _workers(value: int | None, default: int, what: str) -> int:
    if value is None:
        return max(1, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"execution.{what}.workers must be a whole number >= 1, not {value!r}")
    return value


async def _gather(calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Await every call concurrently; their values in order, or the first exception (raised
    after the others are cancelled)."""
    results: list[Any] = [None] * len(calls)
    errors: list[Exception] = []

    async def one(i: int, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            results[i] = await call()
        except Exception as exc:
            if not errors:
                errors.append(exc)
            tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(calls):
            tg.start_soon(one, i, call)
    if errors:
        raise errors[0]
    return results


class Deferred:
    """A :class:`~yawlflow._strategy.Forked` job that runs when its :meth:`result` is awaited,
    through the strategy's ``submit``: what ``fork`` hands back where a batch gains nothing
    (``inline``, whose jobs run in the awaiting tasks; async handlers on ``thread``; Ray, whose
    own scheduler places each task)."""

    __slots__ = ("_cancelled", "_submit", "job")

    def __init__(self, submit: Callable[[Job], Awaitable[Any]], job: Job) -> None:
        self._submit = submit
        self.job = job
        self._cancelled = False

    async def result(self) -> Any:
        """Run the job; its value, or its exception raised again.

        Raises:
            JobCancelledError: :meth:`cancel` was called first.
        """
        if self._cancelled:
            raise JobCancelledError(f"job {self.job.id} (handler {self.job.handler!r}) was cancelled before it started")
        return await self._submit(self.job)

    def cancel(self) -> None:
        """Make :meth:`result` refuse to run the job (a running one is cancelled with its task)."""
        self._cancelled = True


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


# -- inline ----------------------------------------------------------------------------------------
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


# -- the work-stealing strategies --------------------------------------------------------------
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
        (``None``: as long as they take), then cancel the rest (see the module docstring).
        Idempotent."""
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


# -- process -------------------------------------------------------------------------------------
_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder()
_OK, _ERR = 0, 1


class _Child:
    """One worker process and the parent's end of its pipe; owned by one worker thread."""

    __slots__ = ("buried", "conn", "killed", "lock", "process")

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.lock = threading.Lock()
        self.killed = False
        self.buried = False

    def kill(self) -> None:
        with self.lock:
            self.killed = True
            if not self.buried:
                self.process.kill()

    def bury(self, grace: float = 0.0) -> int | None:
        """Close the pipe, wait ``grace`` seconds for a clean exit, else kill; the exit code.

        Only the owning worker thread buries; once ``buried`` is set (under the lock) no
        :meth:`kill` from another thread touches the process, so a reaped pid is never signalled.
        """
        with self.lock:
            first = not self.buried
            self.buried = True
        if first:
            self.conn.close()
            self.process.join(grace)
            if self.process.exitcode is None:
                self.process.kill()
                self.process.join(5)
        code: int | None = self.process.exitcode
        return code


def _exit_text(code: int | None) -> str:
    if code is None:
        return "it did not exit"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class ProcessStrategy(_PoolStrategy):
    """Runs handlers in worker processes, scheduled by a work-stealing pool in this process.

    Each of the pool's ``workers`` threads owns one child process (see the module docstring for
    what crosses the boundary and what a crash does). For CPU-bound handlers.

    Args:
        workers: worker processes (default: the CPU count).
        seed: seeds the victim choices (``None``: a fresh seed).
        start_method: how children start: ``forkserver`` (the default where the platform has
            it: a child forks from a server that has the imports done, ~15 ms) or ``spawn``
            (everywhere: a fresh interpreter that imports yawlflow, ~0.2-0.4 s per child, paid
            again for each child replaced after a crash or a cancellation). Never ``fork``:
            this process runs threads.
        preload: modules the fork server imports once, so that children start with them
            (e.g. your handlers' modules); ``yawlflow._strategies`` always is. The fork server
            is one per process: the first strategy that starts it sets its preload list.
        window: run times kept per worker for the p99.

    Raises:
        ConfigError: ``workers`` is not a whole number >= 1, or ``start_method`` is not one of
            the two (or ``forkserver`` where the platform lacks it).

    A handler named ``__main__:f`` works when the main module is a file guarded by
    ``if __name__ == "__main__":`` (a child imports it again).
    """

    name = "process"
    _wait_after_abandon = 10.0  # killed children make their threads exit at once

    def __init__(self, *, workers: int | None = None, seed: int | None = None,
                 start_method: Literal["spawn", "forkserver"] | None = None, preload: Sequence[str] = (),
                 window: int = 1024) -> None:
        methods = multiprocessing.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method not in ("spawn", "forkserver") or start_method not in methods:
            raise ConfigError(
                f"execution.process.start_method must be 'spawn' or 'forkserver' (where the platform has it), not "
                f"{start_method!r} ('fork' is unsafe: the engine's process runs threads)"
            )
        ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":  # no effect once the server runs
            ctx.set_forkserver_preload(["__main__", __name__, *preload])
        # both contexts have the same API; typeshed knows SpawnContext on every platform
        self._ctx = cast(multiprocessing.context.SpawnContext, ctx)
        n = _workers(workers, os.cpu_count() or 1, self.name)
        self._children: list[_Child | None] = [None] * n
        self._busy: list[_Child | None] = [None] * n  # the child running a job now, per worker
        self._names: dict[tuple[str, int], tuple[object, str]] = {}
        super().__init__(workers=n, seed=seed, window=window)

    # -- on the loop: refuse what cannot cross -------------------------------------------------
    def _prepare(self, job: Job) -> bytes:
        name = self._importable(job)
        try:
            return _ENC.encode((name, job.args))
        except (TypeError, ValueError, msgspec.EncodeError) as exc:
            raise ConfigError(
                f"process strategy: job {job.id} (handler {job.handler!r}): its arguments cannot be sent to a worker "
                f"process ({exc}); pass plain data (dict, list, str, int, float, bool, None, msgspec structs), or "
                "run this task with strategy: thread"
            ) from None

    def _importable(self, job: Job) -> str:
        key = (job.handler, id(job.fn))
        hit = self._names.get(key)
        if hit is not None and hit[0] is job.fn:
            return hit[1]
        name, fn = job.handler, job.fn

        def refuse(why: str) -> ConfigError:
            return ConfigError(
                f"process strategy: handler {job.handler!r} (job {job.id}) cannot run in a worker process: {why}; a "
                "worker process imports its handler by name, so use a module-level function named "
                "'module:function' (e.g. 'billing.tasks:charge'), or run this task with strategy: thread"
            )

        if ":" not in name:
            module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
            if fn is None:
                raise refuse("it is not a 'module:function' name and no function was given")
            if not isinstance(module, str) or not isinstance(qual, str) or "<" in qual:
                raise refuse(f"{fn!r} is not importable by name (a lambda, a closure, or an object)")
            name = f"{module}:{qual}"
        try:
            found = _resolve(name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise refuse(f"{name!r} cannot be imported ({exc})") from None
        if fn is not None and found is not fn:
            raise refuse(f"{name!r} imports as {found!r}, not as the function given ({fn!r})")
        if not callable(found):
            raise refuse(f"{name!r} is {found!r}, which is not callable")
        self._names[key] = (fn, name)
        return name

    def _cancelled_text(self, job: Job, running: bool) -> str:
        if running:
            return (f"job {job.id} (handler {job.handler!r}) was cancelled while running: its worker process was "
                    "killed and is replaced")
        return f"job {job.id} (handler {job.handler!r}) was cancelled before it started"

    # -- on worker threads ---------------------------------------------------------------------
    def _spawn(self, worker: int) -> _Child:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=_child_main, args=(child_end,), name=f"yawlflow-process-{worker}",
                                    daemon=True)
        process.start()
        child_end.close()  # so the parent reads EOF when the child dies
        return _Child(process, parent_end)

    def _on_start(self, worker: int) -> None:
        self._children[worker] = self._spawn(worker)

    def _on_exit(self, worker: int) -> None:
        child, self._children[worker] = self._children[worker], None
        if child is not None:
            child.bury(grace=2.0)

    def _abandon(self, call: _Call, worker: int) -> None:
        child = self._busy[worker]
        if child is not None:
            child.kill()

    def _run_call(self, call: _Call, worker: int) -> Any:
        child = self._children[worker]
        # a killed child, or one that died idle (its end reads EOF), is replaced before use
        if child is None or child.killed or child.conn.poll():
            if child is not None:
                child.bury()
            child = self._children[worker] = self._spawn(worker)
        self._busy[worker] = child
        try:
            if not self.pool.still_running(worker):  # abandoned before it reached the child
                raise JobCancelledError(self._cancelled_text(call.job, running=False))
            try:
                child.conn.send_bytes(call.item)
                reply = child.conn.recv_bytes()
            except (EOFError, OSError):
                pass
            else:
                return _outcome(reply, call.job)
        finally:
            self._busy[worker] = None
        pid = child.process.pid
        code = child.bury(grace=5.0)  # its pipe closed as it exited: wait for its exit code
        self._children[worker] = None if self.pool.stopping else self._spawn(worker)
        raise WorkerCrashedError(
            f"the worker process (pid {pid}, {self.name} worker {worker}) died while running job {call.job.id} "
            f"(handler {call.job.handler!r}): {_exit_text(code)}; the job failed and may be retried; the worker "
            "was replaced by a fresh process",
            pid=pid, exitcode=code, handler=call.job.handler, job_id=call.job.id,
        )


def _resolve(name: str) -> Any:
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise ValueError(f"{name!r} is not 'module:function'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _outcome(reply: bytes, job: Job) -> Any:
    """The value a child sent back, or its exception rebuilt and raised."""
    msg = _DEC.decode(reply)
    if msg[0] == _OK:
        return msg[1]
    _, type_name, message, tb, blob = msg
    exc: object = None
    if blob:
        try:
            exc = pickle.loads(blob)  # noqa: S301 - bytes our own child process pickled
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteHandlerError(
            f"handler {job.handler!r} (job {job.id}) raised {type_name}: {message} (in a worker process; the exception "
            "could not be rebuilt here: it is not picklable, or its class is not importable in the engine's process)",
            type_name=type_name, remote_traceback=tb,
        )
    exc.__cause__ = RemoteTraceback(tb)
    raise exc


def _error_reply(exc: BaseException) -> bytes:
    try:
        message = str(exc)
    except Exception:
        message = "<str() failed>"
    try:
        blob = pickle.dumps(exc)
    except Exception:
        blob = b""
    kind = type(exc)
    return _ENC.encode((_ERR, f"{kind.__module__}.{kind.__qualname__}", message,
                        "".join(traceback.format_exception(exc)), blob))


def _serve(handlers: dict[str, Callable[..., Any]], name: str, args: list[Any]) -> bytes:
    try:
        fn = handlers.get(name)
        if fn is None:
            fn = handlers[name] = _resolve(name)
        value = fn(*args)
        if inspect.iscoroutine(value):
            value = asyncio.run(value)
    except BaseException as exc:  # every failure goes back to the engine
        return _error_reply(exc)
    try:
        return _ENC.encode((_OK, value))
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        return _error_reply(ConfigError(
            f"handler {name!r} returned a {type(value).__name__}, which cannot be sent back from a worker process "
            f"({exc}); return plain data (dict, list, str, int, float, bool, None), or run this task with "
            "strategy: thread"
        ))


def _child_main(conn: Connection) -> None:
    """A worker process: run the jobs the parent sends until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    handlers: dict[str, Callable[..., Any]] = {}
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        name, args = _DEC.decode(data)
        try:
            conn.send_bytes(_serve(handlers, name, args))
        except (EOFError, OSError):
            return

