"""The ``process`` execution strategy (:mod:`yawlflow._strategies`): :class:`ProcessStrategy`
and its worker processes.

Theory of operation
-------------------
``process`` keeps the pool (and its deques and stealing) in the parent: each worker thread owns
one child process and a pipe to it, sends it the job and waits for the reply. What crosses the
pipe is msgpack (msgspec): the handler's *name* (``module:function``, imported by the child, so a
lambda or a closure is refused at submit with a :class:`~yawlflow.ConfigError` naming the fix),
the arguments, and the return value, as plain data (a tuple arrives as a list, a struct as a
dict). An exception crosses pickled: its type, ``args`` and attributes are kept where the class
is picklable and importable in the parent; the child's traceback text is its ``__cause__``
(:class:`~yawlflow._jobs.RemoteTraceback`); otherwise it arrives as a
:class:`~yawlflow._jobs.RemoteHandlerError` with the type's name, message and traceback. A child
that dies (``os._exit``, a signal, a segfault) fails its job with
:class:`~yawlflow._jobs.WorkerCrashedError` (``retryable``) and is replaced at once; the pool
goes on. Children start from a fork server that has this module imported (or with ``spawn``),
never with ``fork``: the parent runs threads. A child runs :func:`_child_main` (defined here, so
this module is what a child imports).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import multiprocessing
import multiprocessing.context
import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Literal, cast

import msgspec

from ._errors import ConfigError
from ._jobs import JobCancelledError, RemoteHandlerError, RemoteTraceback, WorkerCrashedError, _Call, _workers
from ._pool import _PoolStrategy
from ._strategy import Job

__all__ = ("ProcessStrategy",)


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
            (e.g. your handlers' modules); ``yawlflow._process`` always is. The fork server
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
