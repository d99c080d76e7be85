"""A work-stealing pool of threads: what the ``thread`` and ``process`` strategies schedule on.

Theory of operation
-------------------
``workers`` threads each own a deque of :class:`Ticket` s. The owner pushes and pops at the
*back* (LIFO: the job it forked last is the one whose data is warm), thieves take from the
*front* (FIFO: the oldest, usually the biggest piece of a split batch). Work submitted from
outside the pool (the event loop) goes to one shared *injector* queue; a job submitted from
inside a worker (a handler that forks) goes to that worker's own deque. An idle worker looks,
in this order, at its own deque, the injector (taking a share of it, as Go's scheduler does:
``len // workers`` items, at most ``grab`` , moved into its own deque in one step, so that a
batch from outside spreads over the workers and is then stolen back and forth), then at every
other worker's deque, starting at a random victim (an injected, seedable ``random.Random``).
Finding nothing, it *parks*: it sleeps on a condition until new work is pushed. Nothing spins.

Parking is an event count (Vyukov's "eventcount"): a worker reads ``epoch`` *before* it
searches, and sleeps only while ``epoch`` is still the value it read; every push bumps
``epoch`` (under the condition's lock) after the push and wakes as many sleepers as items were
pushed. So a push the search missed happened after the read, moved ``epoch``, and the worker
does not sleep: no wake-up is lost, and no worker sleeps while a deque holds work it could take.

Shutdown: :meth:`WorkStealingPool.stop` refuses further work from outside (under the injector's
lock, so a racing submit is either refused or lands before the flag and is seen), then wakes
every worker. A worker exits when a search that *began after it saw the flag* finds nothing;
work forked from inside a still-running job lands in its owner's deque, which its owner runs.
``drain`` (the default) runs everything queued; ``cancel_pending`` cancels what has not started
(here, at once, and by any worker that pops it later); ``abandon_running`` also gives up on
running jobs (their results are dropped).

Exactly once: a ticket moves ``pending -> running -> done`` or ``pending -> cancelled`` or
``running -> abandoned``, each step under one lock (``_claim``), so a ticket runs at most once
(it is in exactly one deque until popped, and a popped ticket that is no longer pending is
skipped) and its outcome is reported once: ``done`` only on ``running -> done``; a cancel only
by whoever made the ``cancel`` transition.

Memory model and locking (correctness first). Each deque has its own small lock; the only step
holding two deque locks is the injector grab, always the injector's first, so there is no lock
cycle. Ticket states change under ``_claim``; parking under the condition's lock; a worker's
run-time counts under its meter's lock (only its owner writes them; :meth:`metrics` reads a
snapshot that may lag a few jobs). Two reads are deliberately unlocked, and safe because CPython
reads and writes a single attribute atomically and, under the GIL, in one global order: the
``epoch`` a worker reads before searching (the eventcount re-checks it under the lock) and the
``stopping`` flag (set under the injector's lock and followed by a wake-up of everyone). The
locks also keep the compound steps (the grab, a state change and its hook) atomic where
CPython's per-operation atomicity would not, and keep the pool correct on a free-threaded build.

Every blocking or racing point of a worker is a ``yield`` of :meth:`WorkStealingPool.steps`: a
thread runs that generator to its end, answering a :class:`Park` by sleeping on the
:class:`ThreadParking`; a test harness runs several of them interleaved step by step from a
seeded scheduler (``tests/strategies/test_steal_sim.py``), so the same code is checked under
thousands of interleavings, no threads, no sleeps.

Why write it: there is no well-kept work-stealing pool for Python threads.
``concurrent.futures`` has one shared queue (and a ``Future`` with its own condition per job);
the others found are unmaintained or asyncio-only. This one is the stdlib only.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Final, Generic, Literal, Protocol, TypeVar

from ._errors import ConfigError
from ._strategy import StrategyMetrics

__all__ = ("Meter", "Park", "Parking", "ThreadParking", "Ticket", "WorkStealingPool", "summarize")

T = TypeVar("T")
_log = logging.getLogger("yawlflow.steal")

PENDING: Final = 0
RUNNING: Final = 1
DONE: Final = 2
CANCELLED: Final = 3
ABANDONED: Final = 4
_STATES: Final = ("pending", "running", "done", "cancelled", "abandoned")


class Ticket(Generic[T]):
    """One submitted item and where it is in its life.

    Attributes:
        item: what was submitted.
        worker: the index of the worker that ran it (``None`` until it starts).
    """

    __slots__ = ("item", "state", "worker")

    def __init__(self, item: T) -> None:
        self.item = item
        self.state: int = PENDING
        self.worker: int | None = None

    @property
    def status(self) -> str:
        """``pending``, ``running``, ``done``, ``cancelled`` or ``abandoned``."""
        return _STATES[self.state]

    def __repr__(self) -> str:
        return f"Ticket({self.item!r}, {self.status})"


class Park:
    """What :meth:`WorkStealingPool.steps` yields when its worker found nothing: sleep until
    :attr:`Parking.epoch` differs from ``epoch`` (i.e. until something is pushed)."""

    __slots__ = ("epoch",)

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch


class Parking(Protocol):
    """Where idle workers sleep (an event count, see the module docstring)."""

    @property
    def epoch(self) -> int:
        """Bumped by every :meth:`signal`."""
        ...

    def signal(self, n: int) -> None:
        """Something was pushed: bump :attr:`epoch`, wake up to ``n`` sleepers."""
        ...

    def signal_all(self) -> None:
        """Bump :attr:`epoch` and wake every sleeper (shutdown)."""
        ...

    def wait(self, epoch: int) -> None:
        """Sleep while :attr:`epoch` equals ``epoch``."""
        ...


class ThreadParking:
    """:class:`Parking` on a ``threading.Condition``."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._epoch = 0
        self.sleepers = 0

    @property
    def epoch(self) -> int:
        """Bumped by every signal (read without the lock: see the module docstring)."""
        return self._epoch

    def signal(self, n: int) -> None:
        """Bump the epoch; wake up to ``n`` sleepers."""
        with self._cond:
            self._epoch += 1
            if self.sleepers:
                self._cond.notify(n)

    def signal_all(self) -> None:
        """Bump the epoch; wake every sleeper."""
        with self._cond:
            self._epoch += 1
            self._cond.notify_all()

    def wait(self, epoch: int) -> None:
        """Sleep while the epoch is ``epoch`` (returns at once if it moved already)."""
        with self._cond:
            while self._epoch == epoch:
                self.sleepers += 1
                try:
                    self._cond.wait()
                finally:
                    self.sleepers -= 1


class Meter:
    """Counts of finished jobs and a bounded window of their run times.

    Args:
        window: how many recent run times the p99 is taken over.
    """

    __slots__ = ("completed", "failed", "lock", "stolen", "total_s", "window")

    def __init__(self, window: int = 1024) -> None:
        self.completed = 0
        self.failed = 0
        self.stolen = 0
        self.total_s = 0.0
        self.window: deque[float] = deque(maxlen=max(1, window))
        self.lock = threading.Lock()

    def record(self, ok: bool, seconds: float) -> None:
        """One job finished: ``ok`` (it returned) or not, after ``seconds``."""
        with self.lock:
            if ok:
                self.completed += 1
            else:
                self.failed += 1
            self.total_s += seconds
            self.window.append(seconds)


def summarize(meters: Iterable[Meter], *, submitted: int, started: int, cancelled: int,
              batches: int = 0) -> StrategyMetrics:
    """One :class:`StrategyMetrics` from ``meters`` and the pool's counters.

    Args:
        meters: the run-time meters (one per worker, plus any of the strategy's own).
        submitted: jobs submitted.
        started: jobs that started running (the meters' jobs, and those still running).
        cancelled: jobs cancelled before they started (counted as failed, never run).
        batches: submissions of several jobs at once.
    """
    completed = failed = stolen = 0
    total = 0.0
    samples: list[float] = []
    for m in meters:
        with m.lock:
            completed += m.completed
            failed += m.failed
            stolen += m.stolen
            total += m.total_s
            samples.extend(m.window)
    finished = completed + failed
    samples.sort()
    return StrategyMetrics(
        submitted=submitted,
        running=max(0, started - finished),
        completed=completed,
        failed=failed + cancelled,
        stolen=stolen,
        batches=batches,
        queue_depth=max(0, submitted - started - cancelled),
        mean_s=total / finished if finished else 0.0,
        p99_s=samples[max(0, math.ceil(0.99 * len(samples)) - 1)] if samples else 0.0,
    )


class _Deque(Generic[T]):
    """A deque of tickets under its own lock; ``pushed`` counts pushes (for ``submitted``)."""

    __slots__ = ("items", "lock", "pushed")

    def __init__(self) -> None:
        self.items: deque[Ticket[T]] = deque()
        self.lock = threading.Lock()
        self.pushed = 0

    def push(self, tickets: Sequence[Ticket[T]]) -> None:
        with self.lock:
            self.items.extend(tickets)
            self.pushed += len(tickets)

    def pop(self) -> Ticket[T] | None:  # the owner's end (LIFO)
        with self.lock:
            return self.items.pop() if self.items else None

    def steal(self) -> Ticket[T] | None:  # the thieves' end (FIFO)
        with self.lock:
            return self.items.popleft() if self.items else None

    def drain(self) -> list[Ticket[T]]:
        with self.lock:
            out = list(self.items)
            self.items.clear()
            return out


class _Local(threading.local):
    worker: int | None = None


class WorkStealingPool(Generic[T]):
    """A pool of ``workers`` threads that steal work from each other (see the module docstring).

    Args:
        run: ``run(item, worker)``, called on a worker thread for each item; what it returns
            or raises is the item's outcome.
        done: ``done(item, value, error)``, called on the worker thread when an item finished
            and was not cancelled meanwhile (``error`` is what ``run`` raised, else ``None``).
        workers: how many worker threads.
        rng: the source of victim choices (seed it to make a run repeatable); each worker gets
            its own generator seeded from it.
        abandon: ``abandon(item, worker)``, called *under the pool's state lock* when a running
            item is cancelled: keep it short (e.g. kill the process that runs it); it must not
            call back into the pool.
        discard: ``discard(item, running)``, called for each item the pool itself cancels on
            :meth:`stop` (``running``: it was abandoned while running).
        on_start: ``on_start(worker)``, called on each worker thread before it takes work.
        on_exit: ``on_exit(worker)``, called on each worker thread when it stops.
        grab: the most items a worker moves from the injector into its own deque at once.
        window: run times kept per worker for the p99.
        name: the threads' name prefix.
        parking: where idle workers sleep (default: a :class:`ThreadParking`); a test harness
            passes its own.
        start: start the threads now (``False``: drive :meth:`steps` yourself, as the
            deterministic tests do, or call :meth:`start` later).

    Raises:
        ConfigError: ``workers`` or ``grab`` is not a whole number >= 1.
    """

    def __init__(self, run: Callable[[T, int], object], done: Callable[[T, object, BaseException | None], None],
                 *, workers: int, rng: random.Random | None = None,
                 abandon: Callable[[T, int], None] | None = None,
                 discard: Callable[[T, bool], None] | None = None,
                 on_start: Callable[[int], None] | None = None, on_exit: Callable[[int], None] | None = None,
                 grab: int = 32, window: int = 1024, name: str = "yawlflow-steal",
                 parking: Parking | None = None, start: bool = True) -> None:
        for what, value in (("workers", workers), ("grab", grab)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"work-stealing pool: {what} must be a whole number >= 1, not {value!r}")
        self.workers = workers
        self.name = name
        self._run = run
        self._done = done
        self._abandon = abandon
        self._discard = discard
        self._on_start = on_start
        self._on_exit = on_exit
        self._grab_max = grab
        rng = rng if rng is not None else random.Random()  # noqa: S311 - victim choice, not security
        self._rngs = [random.Random(rng.getrandbits(64)) for _ in range(workers)]  # noqa: S311
        self._deques: list[_Deque[T]] = [_Deque() for _ in range(workers)]
        self._injector: _Deque[T] = _Deque()
        self.parking: Parking = parking if parking is not None else ThreadParking()
        self._meters = [Meter(window) for _ in range(workers)]
        self._claim = threading.Lock()
        self._current: list[Ticket[T] | None] = [None] * workers
        self._started = 0
        self._cancelled = 0
        self.batches = 0  # submissions of several items at once from outside (under the injector's lock)
        self._stopping = False
        self._cancelling = False
        self._tls = _Local()
        self._threads: list[threading.Thread] = []
        self._alive = 0
        self._exit_lock = threading.Lock()
        self._exit_callbacks: list[Callable[[], object]] = []
        if start:
            self.start()

    # -- the outside -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker threads (daemon threads: an abandoned job never holds up exit).

        Raises:
            ConfigError: the threads were started already.
        """
        if self._threads:
            raise ConfigError(f"work-stealing pool {self.name!r}: start() was called already")
        self._alive = self.workers
        self._threads = [threading.Thread(target=self._thread_main, args=(w,), name=f"{self.name}-{w}", daemon=True)
                         for w in range(self.workers)]
        for t in self._threads:
            t.start()

    def current_worker(self) -> int | None:
        """The index of the worker of this pool that is running the calling code, else ``None``."""
        return self._tls.worker

    def submit(self, item: T) -> Ticket[T]:
        """Queue ``item``: on the calling worker's own deque inside the pool, else the injector.

        Raises:
            ConfigError: the pool was stopped (from outside; a running job may still fork).
        """
        return self.submit_many((item,))[0]

    def submit_many(self, items: Iterable[T]) -> list[Ticket[T]]:
        """Queue ``items`` as one batch (fork-join: idle workers steal parts of it).

        Raises:
            ConfigError: the pool was stopped (from outside; a running job may still fork).
        """
        tickets = [Ticket(item) for item in items]
        if not tickets:
            return tickets
        w = self._tls.worker
        if w is None:
            inj = self._injector
            with inj.lock:
                if self._stopping:
                    raise ConfigError(f"work-stealing pool {self.name!r} is shut down: it takes no more work")
                inj.items.extend(tickets)
                inj.pushed += len(tickets)
                if len(tickets) > 1:
                    self.batches += 1
        else:
            self._deques[w].push(tickets)
        self.parking.signal(len(tickets))
        return tickets

    def cancel(self, ticket: Ticket[T]) -> Literal["pending", "running"] | None:
        """Cancel ``ticket``: a pending one never starts; a running one is abandoned (the
        ``abandon`` hook runs; its outcome is dropped). Returns what it was, or ``None`` if it
        had finished or was cancelled already."""
        with self._claim:
            if ticket.state == PENDING:
                ticket.state = CANCELLED
                self._cancelled += 1
                return "pending"
            if ticket.state == RUNNING:
                ticket.state = ABANDONED
                if self._abandon is not None and ticket.worker is not None:
                    self._abandon(ticket.item, ticket.worker)
                return "running"
        return None

    def still_running(self, worker: int) -> bool:
        """Whether the job ``worker`` is running was not abandoned meanwhile (read under the
        state lock: a ``run`` callback asks before it starts something it cannot take back)."""
        with self._claim:
            ticket = self._current[worker]
            return ticket is not None and ticket.state == RUNNING

    def stop(self, *, cancel_pending: bool = False, abandon_running: bool = False) -> None:
        """Take no more work from outside; let the workers exit once there is nothing to do.

        Args:
            cancel_pending: cancel every job not started yet (``discard(item, False)`` each).
            abandon_running: abandon every running job too (``abandon`` then
                ``discard(item, True)`` each; implies ``cancel_pending``): the workers exit as
                soon as their jobs return.

        Idempotent; a later call may escalate (drain first, cancel later).
        """
        cancel_pending = cancel_pending or abandon_running
        if cancel_pending:
            with self._claim:  # read under _claim by every worker before it starts a job
                self._cancelling = True
        with self._injector.lock:  # a racing submit from outside is refused or seen
            self._stopping = True
        self.parking.signal_all()
        if cancel_pending:
            for d in (self._injector, *self._deques):
                for ticket in d.drain():
                    if self.cancel(ticket) == "pending" and self._discard is not None:
                        self._guard(self._discard, ticket.item, False)
        if abandon_running:
            for w in range(self.workers):
                running = self._current[w]
                if running is not None and self.cancel(running) == "running" and self._discard is not None:
                    self._guard(self._discard, running.item, True)

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the workers to exit; whether they all did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def shutdown(self, *, cancel_pending: bool = False, abandon_running: bool = False,
                 timeout: float | None = None) -> bool:
        """:meth:`stop`, then :meth:`join`; whether every worker exited in time."""
        self.stop(cancel_pending=cancel_pending, abandon_running=abandon_running)
        return self.join(timeout)

    def when_stopped(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` (on the last worker's thread, or here if they exited already) once
        every worker thread has exited."""
        with self._exit_lock:
            if self._alive:
                self._exit_callbacks.append(callback)
                return
        callback()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping

    @property
    def meters(self) -> tuple[Meter, ...]:
        """The workers' run-time meters, one per worker."""
        return tuple(self._meters)

    def counts(self) -> tuple[int, int, int]:
        """``(submitted, started, cancelled before starting)`` so far."""
        with self._claim:
            started, cancelled = self._started, self._cancelled
        return sum(d.pushed for d in (self._injector, *self._deques)), started, cancelled

    def metrics(self) -> StrategyMetrics:
        """Counts so far (a snapshot that may lag running workers by a few jobs)."""
        submitted, started, cancelled = self.counts()
        return summarize(self._meters, submitted=submitted, started=started, cancelled=cancelled,
                         batches=self.batches)

    # -- a worker ------------------------------------------------------------------------------
    def steps(self, w: int) -> Generator[Park | None, None, None]:
        """Worker ``w``'s life, one atomic step per ``yield``: ``None`` between steps, a
        :class:`Park` when it found nothing (resume it once :attr:`Parking.epoch` moved).
        Returns when the pool is stopped and nothing is left for it."""
        own = self._deques[w]
        rng = self._rngs[w]
        n = self.workers
        meter = self._meters[w]
        while True:
            stopping = self._stopping  # before the search: see the module docstring (shutdown)
            epoch = self.parking.epoch  # before the search: the eventcount
            ticket = own.pop()
            if ticket is None:
                yield None
                ticket = self._grab(w)
            if ticket is None and n > 1:
                start = rng.randrange(n)
                for i in range(n):
                    victim = (start + i) % n
                    if victim == w:
                        continue
                    yield None
                    ticket = self._deques[victim].steal()
                    if ticket is not None:
                        with meter.lock:
                            meter.stolen += 1
                        break
            if ticket is None:
                if stopping:
                    return
                yield Park(epoch)
                continue
            yield None
            self._execute(w, ticket)

    def _grab(self, w: int) -> Ticket[T] | None:
        """Take one ticket from the injector and move a share of the rest to ``w``'s deque."""
        inj, own = self._injector, self._deques[w]
        with inj.lock:
            if not inj.items:
                return None
            first = inj.items.popleft()
            share = min(len(inj.items) // self.workers, self._grab_max)
            if share:
                with own.lock:  # lock order: injector, then a worker's deque (nowhere else two)
                    for _ in range(share):
                        own.items.append(inj.items.popleft())
            return first

    def _execute(self, w: int, ticket: Ticket[T]) -> None:
        with self._claim:
            if ticket.state != PENDING:  # cancelled while it waited
                return
            if self._cancelling:
                ticket.state = CANCELLED
                self._cancelled += 1
                cancelled = True
            else:
                ticket.state = RUNNING
                ticket.worker = w
                self._current[w] = ticket
                self._started += 1
                cancelled = False
        if cancelled:
            if self._discard is not None:
                self._guard(self._discard, ticket.item, False)
            return
        value: object = None
        error: BaseException | None = None
        outer = self._tls.worker
        self._tls.worker = w
        t0 = time.perf_counter()
        try:
            value = self._run(ticket.item, w)
        except BaseException as exc:  # every outcome goes back to the submitter
            error = exc
        finally:
            took = time.perf_counter() - t0
            self._tls.worker = outer
        with self._claim:
            finished = ticket.state == RUNNING
            if finished:
                ticket.state = DONE
            self._current[w] = None
        self._meters[w].record(finished and error is None, took)
        if finished:
            self._guard(self._done, ticket.item, value, error)

    @staticmethod
    def _guard(fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            _log.exception("work-stealing pool: a callback failed (this is a bug in the strategy)")

    def _thread_main(self, w: int) -> None:
        try:
            if self._on_start is not None:
                self._guard(self._on_start, w)
            for request in self.steps(w):
                if request is not None:
                    self.parking.wait(request.epoch)
        finally:
            if self._on_exit is not None:
                self._guard(self._on_exit, w)
            with self._exit_lock:
                self._alive -= 1
                callbacks = self._exit_callbacks if not self._alive else []
                if not self._alive:
                    self._exit_callbacks = []
            for cb in callbacks:
                self._guard(cb)
