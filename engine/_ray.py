"""The ``ray`` execution strategy: handlers run as Ray tasks, or on a pool of Ray actors.

Theory of operation
-------------------
A job crosses to a Ray worker as its handler's *name* (``module:function``) and its arguments,
never as the function: the worker imports the handler by name (:func:`_resolve`, cached per
worker process), so what a worker runs is what the cluster has installed, and a handler that is
not importable by name is refused with a :class:`~yawlflow.ConfigError` that says how to ship it.

Ray starts on first use, not in the constructor (``ray.init`` takes 3-6 s): a local cluster when
no address is given, with usage stats off and no dashboard, or a connection to ``address``. A
process that already initialised Ray keeps its Ray: the strategy reuses it and never shuts it
down. ``ray.init`` runs in a thread of its own that lives as long as the Ray it started: Ray's
head processes are tied to the *thread* that spawned them (Linux's parent-death signal follows
the thread), so starting Ray from a pooled worker thread kills the cluster when that thread
retires. Strategies in one process share one Ray, counted (:class:`_LocalRay`): the last strategy
to shut down stops the Ray that yawlflow started.

Awaiting a result must not block the event loop and must work on asyncio and trio. An
``ObjectRef`` is awaitable under asyncio only, and ``ray.get`` in a worker thread holds one thread
per job in flight (anyio's default limiter allows 40, so a wide fork-join would queue behind it).
So each job registers a completion callback on ``ref.future()``; Ray calls it on its own thread,
and it only *schedules* ``event.set`` on the event loop (``loop.call_soon_threadsafe`` /
``TrioToken.run_sync_soon``), never blocking Ray's thread. No thread per job, no polling.

Cancelling the awaiting task calls ``ray.cancel`` at once and lets the cancellation through; it
does not wait for Ray. A task is cancelled with ``force=True`` by default: ``force=False`` raises
``KeyboardInterrupt`` in the worker between bytecodes, which does not interrupt a handler blocked
in a sleep or a C call. An actor task cannot be forced: a pending one is dropped, a running one is
an ``asyncio`` task in an async actor and is cancelled there (a sync handler runs in the actor's
threads and is abandoned, its result dropped, as the ``thread`` strategy does).

Errors come back as the handler's own exception class where Ray could pickle it (the remote
traceback is attached as a note); otherwise as :class:`RayHandlerError` with the remote
traceback's last line. A worker, actor or node that dies fails the job with
:class:`RayWorkerDiedError`, which is retryable: tasks run with ``max_retries=0`` and actors with
``max_restarts=0, max_task_retries=0`` so that the item's retry policy, not Ray, decides; a dead
actor is replaced by a new one, so that the jobs sent after its death wait for it rather than
fail while Ray restarts the old one. The error classes extend those of the ``process`` strategy
(:mod:`yawlflow._strategies`), so one ``except`` serves both.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import itertools
import logging
import math
import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, ClassVar, Literal

import anyio

from ._errors import ConfigError, YawlflowError, YawlflowInternalError
from ._strategies import Deferred, JobCancelledError, RemoteHandlerError, WorkerCrashedError, loop_waker
from ._strategy import Forked, Job, StrategyMetrics

__all__ = (
    "RayHandlerError",
    "RayJobCancelledError",
    "RayStrategy",
    "RayStrategyError",
    "RayWorkerDiedError",
)

log = logging.getLogger("yawlflow.ray")

_INSTALL_HINT = "pip install 'yawlflow[ray]'"
_HANDLER_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
_WINDOW = 1024  # run times kept for p99

# Ray's errors, by name (their classes are looked up on first use; ray is imported lazily)
_WORKER_DIED = (
    "WorkerCrashedError",
    "RayActorError",  # ActorDiedError, ActorUnavailableError
    "NodeDiedError",
    "LocalRayletDiedError",
    "ObjectLostError",  # OwnerDiedError, ObjectReconstructionFailedError, ...
    "OutOfMemoryError",
    "RpcError",
)
_MISCONFIGURED = ("RuntimeEnvSetupError", "TaskUnschedulableError", "ActorUnschedulableError")


# -- errors ------------------------------------------------------------------------------------


class RayStrategyError(YawlflowError):
    """Ray failed to run a job for a reason of its own (none of the errors below).

    Attributes:
        retryable: ``True``: another attempt may succeed (the item's retry policy reads it).
    """

    retryable: ClassVar[bool] = True


class RayHandlerError(RemoteHandlerError):
    """The handler raised an exception that Ray could not bring back as its own class (it could
    not be pickled in the worker, or its class cannot be imported here); its traceback's last
    line is in the message, all of it in ``remote_traceback``."""


class RayWorkerDiedError(WorkerCrashedError):
    """The Ray worker, actor or node running the job died (or lost its result) before it ended.
    Retryable: the item's retry policy runs it again."""


class RayJobCancelledError(JobCancelledError):
    """The job was cancelled by :meth:`RayStrategy.cancel` or by :meth:`RayStrategy.shutdown`."""


# -- Ray, imported lazily and started once per process ----------------------------------------


def _import_ray() -> Any:
    """The ``ray`` module, typed ``Any`` (Ray's typing is partial: the boundary is here).

    Raises:
        ConfigError: Ray is not installed.
    """
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ConfigError(f"strategy 'ray' needs Ray, which is not installed ({exc}): {_INSTALL_HINT}") from None


class _OwnerThread:
    """A thread that runs ``ray.init`` and then stays alive until Ray is shut down (see the
    module docstring: Ray's head processes die with the thread that started them)."""

    def __init__(self, init: Callable[[], None]) -> None:
        self._started: Future[None] = Future()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(init,), name="yawlflow-ray", daemon=True)
        self._thread.start()

    def _main(self, init: Callable[[], None]) -> None:
        try:
            init()
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        self._stop.wait()

    def wait_started(self) -> None:
        self._started.result()

    def stop(self) -> None:
        self._stop.set()


class _LocalRay:
    """This process's Ray as the ray strategies share it: who started it, how many use it."""

    lock = threading.Lock()
    users = 0
    owner: _OwnerThread | None = None  # set when yawlflow started (or connected) this Ray

    @classmethod
    def acquire(cls, ray: Any, init_kwargs: dict[str, Any]) -> bool:
        """Start Ray unless it is initialised already; count one more user. Whether yawlflow
        owns this Ray (started it, so shuts it down)."""
        with cls.lock:
            if not ray.is_initialized():
                if cls.owner is not None:  # someone shut our Ray down behind our back
                    cls.owner.stop()
                    cls.owner = None
                # a user's explicit setting wins; Ray reads it when it starts its processes
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
                owner = _OwnerThread(lambda: ray.init(**init_kwargs))
                owner.wait_started()
                cls.owner = owner
            cls.users += 1
            return cls.owner is not None

    @classmethod
    def release(cls, ray: Any) -> None:
        """One user fewer; the last one shuts down the Ray that yawlflow started."""
        with cls.lock:
            cls.users -= 1
            if cls.users == 0 and cls.owner is not None:
                try:
                    ray.shutdown()
                finally:
                    cls.owner.stop()
                    cls.owner = None


# -- what runs in the Ray worker --------------------------------------------------------------

_RESOLVED: dict[str, Callable[..., Any]] = {}


def _resolve(name: str) -> Callable[..., Any]:
    """The handler called ``name`` (``module:function`` or ``module:Class.method``), imported
    in this worker process on first use and cached.

    Raises:
        ConfigError: it cannot be imported by that name here, or is not callable.
    """
    fn = _RESOLVED.get(name)
    if fn is not None:
        return fn
    module_name, _, qualname = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise ConfigError(
            f"handler {name!r} is not importable by name in the Ray worker (pid {os.getpid()}): "
            f"{type(exc).__name__}: {exc}; the ray strategy imports handlers where they run: make it a "
            "module-level function of a module installed on the cluster, or ship the module with Ray "
            "(execution.ray init_kwargs: runtime_env: {py_modules: [...]} or {working_dir: ...})"
        ) from None
    if not callable(obj):
        raise ConfigError(f"handler {name!r} names a {type(obj).__name__}, not a function: name a callable")
    _RESOLVED[name] = obj
    return obj  # type: ignore[no-any-return]


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _interruptible() -> None:
    """Let ``ray.cancel(force=False)`` interrupt the task running in this worker.

    Ray interrupts a running task as Ctrl-C would (``KeyboardInterrupt`` in the worker's main
    thread), which Python drops when SIGINT is ignored, and a worker ignores it when the process
    that started the cluster did: a program started in the background by a shell script (``&``)
    ignores SIGINT, and so does everything it starts. The task would run on, cancelled in name only.
    """
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL)):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _run_task(name: str, args: tuple[Any, ...]) -> Any:
    """The body of a Ray task: resolve the handler, call it; an async one runs on asyncio."""
    _interruptible()
    result = _resolve(name)(*args)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    return result


class _HandlerActor:
    """One actor of the pool (an async actor: a running async handler can be cancelled)."""

    async def run(self, name: str, args: tuple[Any, ...]) -> Any:
        fn = _resolve(name)
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        # a sync handler runs in a thread so that the actor's loop stays free to cancel
        result = await asyncio.to_thread(fn, *args)
        if inspect.isawaitable(result):
            result = await result
        return result


# -- the strategy -----------------------------------------------------------------------------


class _Run:
    """One job in this strategy: waiting for Ray to start, then in flight."""

    __slots__ = ("actor", "cancelled", "event", "future", "handle", "job", "ref", "started")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.ref: Any = None
        self.future: Future[Any] | None = None
        self.event: anyio.Event | None = None
        self.actor = -1
        self.handle: Any = None
        self.cancelled = False
        self.started = 0.0


class RayStrategy:
    """Runs handlers as Ray tasks (``mode="task"``) or on a fixed pool of Ray actors (``"actor"``).

    See the module docstring for how it works. Configured by ``execution.ray``
    (``{address: null, mode: task, actors: 4, num_cpus: 1}``).

    Args:
        address: the Ray cluster to connect to (``"ray://head:10001"``, ``"auto"``, ``"host:port"``);
            ``None``: start a local Ray (unless this process initialised Ray already: then that one).
        mode: ``"task"``: each job is a Ray task; ``"actor"``: jobs go to a pool of actors that
            import and cache their handlers, each job to the least-loaded actor (ties in turn).
        actors: the pool's size (actor mode); ``None``: one actor per CPU of the cluster.
        num_cpus: the CPUs each task or actor reserves (Ray's ``num_cpus``); ``None``: Ray's
            default (1 for a task; an actor reserves none while it runs).
        init_kwargs: more keyword arguments for ``ray.init`` (e.g. ``runtime_env``, ``num_cpus``,
            ``namespace``); they win over the strategy's own.
        temp_dir: Ray's session folder for a local Ray (``ray.init(_temp_dir=...)``); ``None``:
            Ray's default, ``/tmp/ray``. Keep it short: Ray's socket paths must fit in 107 bytes.
        force_cancel: cancel a running task by killing its worker (``ray.cancel(force=True)``);
            ``False`` raises ``KeyboardInterrupt`` in it instead, which a blocked handler only
            sees when it returns to Python. Actor tasks are never forced.
        actor_concurrency: jobs one actor runs at once (actor mode).

    Raises:
        ConfigError: an argument is invalid (Ray itself is only needed, and checked, on first use).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        mode: Literal["task", "actor"] = "task",
        actors: int | None = None,
        num_cpus: float | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        temp_dir: str | None = None,
        force_cancel: bool = True,
        actor_concurrency: int = 1,
    ) -> None:
        if mode not in ("task", "actor"):
            raise ConfigError(f"RayStrategy: unknown mode {mode!r} (use 'task' or 'actor')")
        if actors is not None and (not isinstance(actors, int) or actors < 1):
            raise ConfigError(f"RayStrategy: actors must be a positive integer or None, got {actors!r}")
        if num_cpus is not None and num_cpus < 0:
            raise ConfigError(f"RayStrategy: num_cpus must be >= 0 or None, got {num_cpus!r}")
        if actor_concurrency < 1:
            raise ConfigError(f"RayStrategy: actor_concurrency must be >= 1, got {actor_concurrency!r}")
        self.address = address
        self.mode = mode
        self.actors = actors
        self.num_cpus = num_cpus
        self.force_cancel = force_cancel
        self.actor_concurrency = actor_concurrency
        self._init_kwargs = self._ray_init_kwargs(address, temp_dir, init_kwargs or {})
        self._lock = threading.Lock()
        self._ray: Any = None
        self._remote: Any = None  # the Ray remote function (task mode)
        self._task_options: dict[str, Any] = {}
        self._actor_class: Any = None  # the Ray actor class, with its options (actor mode)
        self._pool: list[Any] = []  # actor handles (actor mode)
        self._load: list[int] = []  # jobs in flight per actor
        self._turn = itertools.count()
        self._release_lock = threading.Lock()
        self._acquired = False  # this strategy counts as one of Ray's users (_LocalRay)
        self._ready = False  # Ray is up and the task or the pool is prepared
        self._owns_ray = False
        self._closed = False
        self._runs: dict[int, _Run] = {}
        self._idle: anyio.Event | None = None
        # metrics
        self._submitted = self._completed = self._failed = self._queued = self._running = 0
        self._total_s = 0.0
        self._finished = 0
        self._recent: deque[float] = deque(maxlen=_WINDOW)

    @staticmethod
    def _ray_init_kwargs(address: str | None, temp_dir: str | None, extra: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if address is not None and address != "local":
            kwargs["address"] = address
        else:
            kwargs["include_dashboard"] = False
            if temp_dir is not None:
                kwargs["_temp_dir"] = temp_dir
        kwargs.update(extra)
        return kwargs

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` was called: the strategy takes no more jobs."""
        return self._closed

    @property
    def owns_ray(self) -> bool:
        """Whether Ray was started (or connected) by yawlflow, so shut down with the last strategy."""
        return self._owns_ray

    # -- starting ------------------------------------------------------------------------------

    def _start(self) -> None:
        """Start (or join) Ray and prepare the task or the actor pool; idempotent. Blocks: call it
        in a worker thread."""
        with self._lock:
            if self._ready:
                return
            if self._closed:
                raise ConfigError("the ray strategy is shut down: it takes no more jobs")
            ray = _import_ray()
            try:
                self._owns_ray = _LocalRay.acquire(ray, self._init_kwargs)
            except YawlflowError:
                raise
            except Exception as exc:
                where = f"connect to Ray at {self.address!r}" if self.address else "start a local Ray"
                raise ConfigError(
                    f"strategy 'ray' could not {where}: {type(exc).__name__}: {exc} "
                    "(check execution.ray.address, or leave it null for a local Ray)"
                ) from exc
            self._ray = ray
            self._acquired = True
            try:
                self._prepare(ray)
            except BaseException:
                self._release()
                raise
            self._ready = True  # last: the event loop reads it without the lock
        if self.closed:  # shut down while Ray started: whichever of the two sees the other releases
            self._release()
            raise ConfigError("the ray strategy is shut down: it takes no more jobs")

    def _prepare(self, ray: Any) -> None:
        options: dict[str, Any] = {}
        if self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        if self.mode == "task":
            self._remote = ray.remote(_run_task)
            self._task_options = {"max_retries": 0, "retry_exceptions": False, **options}
            return
        size = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # no restarts: a dead actor is replaced (_replace_actor; see the module docstring)
        self._actor_class = ray.remote(_HandlerActor).options(
            max_restarts=0, max_task_retries=0, max_concurrency=self.actor_concurrency, **options
        )
        self._pool = [self._actor_class.remote() for _ in range(size)]
        self._load = [0] * size

    def _release(self) -> None:
        """Stop the actors and let go of Ray (once). Blocks: call it in a worker thread."""
        with self._release_lock:
            if not self._acquired:
                return
            self._acquired = False
        for actor in self._pool:
            try:
                self._ray.kill(actor)
            except Exception:
                log.debug("ray.kill failed for an actor", exc_info=True)
        _LocalRay.release(self._ray)

    async def start(self) -> None:
        """Start (or join) Ray now rather than on the first job.

        Raises:
            ConfigError: Ray is not installed, cannot start or connect, or the strategy is shut down.
        """
        if not self._ready:
            await anyio.to_thread.run_sync(self._start, abandon_on_cancel=True)

    # -- submitting ----------------------------------------------------------------------------

    def _check(self, job: Job) -> None:
        if self._closed:
            raise ConfigError(f"job {job.id} ({job.handler!r}): the ray strategy is shut down: it takes no more jobs")
        if not _HANDLER_NAME.match(job.handler):
            raise ConfigError(
                f"job {job.id}: handler {job.handler!r} is not a 'module:function' name: the ray strategy "
                "imports handlers by name in the Ray workers; name a module-level function as module:function"
            )
        qualname = getattr(job.fn, "__qualname__", "")
        if "<locals>" in qualname or "<lambda>" in qualname:
            raise ConfigError(
                f"job {job.id}: handler {job.handler!r} is {qualname!r}, a nested function or lambda, which "
                "Ray workers cannot import by name: move it to module level"
            )

    def _launch(self, run: _Run) -> None:
        """Hand the job to Ray (non-blocking) and arrange for its completion to wake the loop."""
        job = run.job
        if self.mode == "task":
            # the task is named after its handler (Ray's dashboard and logs show it)
            run.ref = self._remote.options(name=job.handler, **self._task_options).remote(job.handler, job.args)
        else:
            n = len(self._pool)
            turn = next(self._turn)
            index = min(range(n), key=lambda i: (self._load[i], (i - turn) % n))
            run.handle = self._pool[index]
            run.ref = run.handle.run.remote(job.handler, job.args)
            run.actor = index
            self._load[index] += 1
        run.started = time.perf_counter()
        self._running += 1
        event = run.event = anyio.Event()
        call_soon = loop_waker()

        def wake(_: object) -> None:  # on Ray's thread: schedule, never block
            with contextlib.suppress(RuntimeError):  # the event loop is gone: nobody waits
                call_soon(event.set)

        run.future = run.ref.future()
        run.future.add_done_callback(wake)

    async def submit(self, job: Job) -> Any:
        """Run ``job`` on Ray; return its value or raise its exception.

        Cancelling the awaiting task cancels the Ray task (``ray.cancel``) or the actor task, and
        does not wait for Ray to confirm.

        Raises:
            ConfigError: the strategy is shut down; Ray is missing or cannot start; the handler is
                not a ``module:function`` name, or the worker cannot import it by that name.
            RayWorkerDiedError: the worker, actor or node running it died (retryable).
            RayHandlerError: the handler raised an exception that could not come back as its class.
            RayJobCancelledError: :meth:`cancel` or :meth:`shutdown` cancelled it.
            Exception: what the handler raised, as its own class.
        """
        self._check(job)
        run = _Run(job)
        self._submitted += 1
        self._runs[job.id] = run
        if not self._ready:
            self._queued += 1
            try:
                await self.start()
            except BaseException:
                self._runs.pop(job.id, None)
                self._failed += 1
                raise
            finally:
                self._queued -= 1
            if run.cancelled or self._closed:
                self._runs.pop(job.id, None)
                self._failed += 1
                raise RayJobCancelledError(f"job {job.id} (handler {job.handler!r}) was cancelled before Ray started")
        try:
            self._launch(run)
        except BaseException:
            self._runs.pop(job.id, None)
            self._failed += 1
            raise
        return await self._join(run)

    async def _join(self, run: _Run) -> Any:
        if run.event is None or run.future is None:
            raise YawlflowInternalError(f"job {run.job.id} awaited before it was handed to Ray")
        try:
            await run.event.wait()
        except BaseException:  # the awaiting task is cancelled: cancel the job, let it through
            self._abort(run)
            self._finish(run, ok=False)
            raise
        if run.cancelled:
            self._finish(run, ok=False)
            raise RayJobCancelledError(f"job {run.job.id} (handler {run.job.handler!r}) was cancelled")
        try:
            value = run.future.result()
        except BaseException as exc:
            self._finish(run, ok=False)
            if run.handle is not None and isinstance(exc, self._ray.exceptions.RayActorError):
                self._replace_actor(run)
            error, chained = self._translate(exc, run.job)
            if chained:
                raise error from exc
            raise error from None
        self._finish(run, ok=True)
        return value

    def fork(self, jobs: Sequence[Job]) -> list[Forked]:
        """Each job as a :class:`~yawlflow._strategies.Deferred` that becomes a Ray task when
        awaited: Ray's own scheduler spreads the tasks over its workers, so the batch needs no
        step of its own here.

        Raises:
            ConfigError: as :meth:`submit`, checked for every job.
        """
        for job in jobs:
            self._check(job)
        return [Deferred(self.submit, job) for job in jobs]

    async def submit_many(self, jobs: Sequence[Job]) -> list[Any]:
        """Run ``jobs`` as one batch (fork-join): all are handed to Ray first, in order, then
        awaited together; their values in order. The first exception is raised after the other
        jobs are cancelled.

        Raises:
            ConfigError, RayWorkerDiedError, RayHandlerError, RayJobCancelledError, Exception: as
                :meth:`submit`, for the first job that fails.
        """
        for job in jobs:
            self._check(job)
        if not jobs:
            return []
        await self.start()
        runs: list[_Run] = []
        try:
            for job in jobs:
                self._check(job)  # shut down meanwhile
                run = _Run(job)
                self._submitted += 1
                self._runs[job.id] = run
                self._launch(run)
                runs.append(run)
        except BaseException:
            for run in runs:
                self._abort(run)
                self._finish(run, ok=False)
            raise
        results: list[Any] = [None] * len(runs)
        first: list[BaseException] = []

        async def join(i: int, run: _Run, scope: anyio.CancelScope) -> None:
            try:
                results[i] = await self._join(run)
            except Exception as exc:
                if not first:
                    first.append(exc)
                scope.cancel()

        async with anyio.create_task_group() as tg:
            for i, run in enumerate(runs):
                tg.start_soon(join, i, run, tg.cancel_scope)
        if first:
            raise first[0]
        return results

    # -- errors ----------------------------------------------------------------------------------

    def _translate(self, exc: BaseException, job: Job) -> tuple[BaseException, bool]:
        """The exception ``submit`` raises for Ray's ``exc``; and whether to chain ``exc`` to it."""
        errors = self._ray.exceptions
        where = f"job {job.id} (handler {job.handler!r})"

        def named(names: Sequence[str]) -> tuple[type[BaseException], ...]:
            return tuple(c for c in (getattr(errors, n, None) for n in names) if isinstance(c, type))

        if isinstance(exc, errors.TaskCancelledError):  # cancelled by someone else (e.g. `ray cancel`)
            return RayJobCancelledError(f"{where} was cancelled in Ray"), True
        if isinstance(exc, errors.RayTaskError):
            cause = getattr(exc, "cause", None)
            remote = str(exc)  # the worker's traceback, Ray's frames left out, under "ray::NAME() (pid=, ip=)"
            if isinstance(cause, BaseException) and not isinstance(cause, errors.RayError):
                cause.add_note(f"raised in a Ray worker: {remote}")
                return cause, False
            last = remote.strip().splitlines()[-1] if remote.strip() else str(cause or exc)
            return RayHandlerError(
                f"{where} raised {last!r} in the Ray worker, which Ray could not bring back as its class "
                f"({cause}); make the exception picklable (and importable here) to get it as itself",
                type_name=last.partition(":")[0], remote_traceback=remote,
            ), False
        if isinstance(exc, named(_WORKER_DIED)):
            kind = "actor" if self.mode == "actor" else "worker"
            return RayWorkerDiedError(
                f"{where}: the Ray {kind} running it died ({type(exc).__name__}): the job failed and may be "
                "retried per its retry policy; if it keeps dying, the handler crashes its process (see the "
                "worker logs in Ray's session folder)",
                handler=job.handler, job_id=job.id,
            ), True
        if isinstance(exc, named(_MISCONFIGURED)):
            return ConfigError(
                f"{where}: Ray cannot run it: {type(exc).__name__}: {exc} "
                "(check execution.ray num_cpus and init_kwargs against the cluster)"
            ), True
        if isinstance(exc, errors.RayError):
            return RayStrategyError(f"{where}: Ray failed: {type(exc).__name__}: {exc}"), True
        return exc, False

    # -- cancelling and finishing ----------------------------------------------------------------

    def _abort(self, run: _Run) -> None:
        """Cancel ``run`` in Ray (idempotent) and wake its waiter."""
        if run.cancelled:
            return
        run.cancelled = True
        if run.ref is not None:
            try:
                if self.mode == "task":
                    self._ray.cancel(run.ref, force=self.force_cancel)
                else:
                    self._ray.cancel(run.ref)
            except Exception:  # Ray gone already (its shutdown cancels everything anyway)
                log.debug("ray.cancel failed for job %s", run.job.id, exc_info=True)
        if run.event is not None:
            run.event.set()

    def _finish(self, run: _Run, *, ok: bool) -> None:
        if self._runs.pop(run.job.id, None) is None:
            return  # finished already
        if run.actor >= 0:
            self._load[run.actor] -= 1
        if run.ref is not None:
            self._running -= 1
            if not run.cancelled:
                seconds = time.perf_counter() - run.started
                self._total_s += seconds
                self._finished += 1
                self._recent.append(seconds)
        if ok:
            self._completed += 1
        else:
            self._failed += 1
        if self._idle is not None and self._running == 0:
            self._idle.set()

    def _replace_actor(self, run: _Run) -> None:
        """Put a new actor in the dead one's place (once, whichever of its jobs notices first)."""
        if self._closed or not self._acquired or self._pool[run.actor] is not run.handle:
            return
        with contextlib.suppress(Exception):
            self._ray.kill(run.handle)
        self._pool[run.actor] = self._actor_class.remote()
        log.warning("ray strategy: actor %d died; replaced", run.actor)

    def cancel(self, job_id: int) -> bool:
        """Cancel one job (``ray.cancel``); its ``submit`` raises :class:`RayJobCancelledError`.

        Returns:
            whether it was still waiting or running.
        """
        run = self._runs.get(job_id)
        if run is None or run.cancelled:
            return False
        self._abort(run)
        return True

    async def shutdown(self, drain_s: float | None = None) -> None:
        """Stop taking jobs; let running ones finish for up to ``drain_s`` seconds (``None``: as
        long as they take), cancel the rest, stop the actors, and shut Ray down if yawlflow
        started it and no other ray strategy still uses it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._running:
            self._idle = anyio.Event()
            with anyio.move_on_after(drain_s):
                await self._idle.wait()
        for run in list(self._runs.values()):
            self._abort(run)
        if self._acquired:
            await anyio.to_thread.run_sync(self._release)

    # -- metrics -----------------------------------------------------------------------------

    def metrics(self) -> StrategyMetrics:
        """The counts so far (``stolen`` is always 0: Ray schedules; ``queue_depth`` counts jobs
        waiting for Ray to start; run times run from the hand-over to Ray to the result)."""
        p99 = 0.0
        if self._recent:
            ordered = sorted(self._recent)
            p99 = ordered[math.ceil(0.99 * len(ordered)) - 1]
        return StrategyMetrics(
            submitted=self._submitted,
            running=self._running,
            completed=self._completed,
            failed=self._failed,
            stolen=0,
            queue_depth=self._queued,
            mean_s=self._total_s / self._finished if self._finished else 0.0,
            p99_s=p99,
        )
