"""What the ``inline``, ``thread`` and ``process`` strategies share (:mod:`yawlflow._strategies`).

The errors a job can end with (kept picklable: they cross the process boundary), waking the
event loop from a worker thread (:func:`loop_waker`), one submission's outcome as workers fill it
in (``_Batch``) and one job on its way through a pool (``_Call``), and :class:`Deferred`, the
job that ``fork`` hands back where a batch gains nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import anyio

from ._errors import ConfigError, YawlflowError
from ._steal import Ticket
from ._strategy import Job

__all__ = (
    "Deferred",
    "JobCancelledError",
    "RemoteHandlerError",
    "RemoteTraceback",
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
