"""Engine: the embeddable workflow engine — one root task group, the handler registry, the store.

Theory of operation. ``async with Engine() as engine`` opens the root task group; every case
runs its asynchronous work in a child task group of it (a sub-case inside its parent's), and
each work item in its own cancel scope inside its case. A case's group is opened lazily, when
the case first has something to run in it (ADR 0002, "Lazy hosts"): ``start`` spawns no task.
Leaving the ``async with`` block cancels whatever still runs: no task outlives the engine. Specs
are compiled once and cached by identity; a NetRunner is built once per compiled net and shared
by every case of that net (it is pure).

The store (ADR 0005). ``memory://`` is made with the engine and lives as long as it. A durable
store (``sqlite:///path.db``) is opened, taking its one-writer lock, when the engine is entered,
and closed when it is left. Every applied event is appended; an API call that changes a case
awaits ``store.durable()`` before it returns, so what it acknowledged is on disk; every
``snapshot_every`` events a case's state is snapshotted. :meth:`Engine.resume` folds every
unfinished case back from the store (snapshot + later events) and carries on: timers re-armed
from their recorded deadlines, auto items that were running re-run with the same idempotency
key (after asking the handler's ``reconcile``), sub-cases reattached.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
import random
import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import msgspec

from ._case import Case, _check_data, _check_key, _History
from ._clock import Clock, SystemClock
from ._compiled import KIND_AUTO, KIND_COMPOSITE, CompiledSpec, compile_spec
from ._config import CONFIG_ENV, check_config, read_config
from ._config import execution as _execution_config
from ._config import limits as _limits_config
from ._durable import ImageError, UnstartedCaseError, encode_image, fold_case
from ._effects import StartItem, StartSubcase
from ._errors import ConfigError, InvalidEventError, StoreError, YawlflowError, YawlflowInternalError
from ._events import CaseCancelRequested, CaseStarted, ItemCompleted
from ._handlers import Handler, HandlerRegistry, ItemContext, _Entry
from ._hooks import HookEvent, Hooks
from ._limits import Gates
from ._runner import NetRunner
from ._spec import load
from ._spec._model import Spec
from ._state import CaseState
from ._steal import Meter, summarize
from ._store import CaseDamagedError, CaseExistsError, CaseRecord, MemoryStore, Store, check_store_url, open_store
from ._strategy import Strategy, StrategyMetrics
from ._telemetry import Telemetry, telemetry_for
from .connectors._breaker import BreakerState
from .connectors._host import _log_breaker

__all__ = ("CaseInfo", "Engine")

_log = logging.getLogger(__name__)

CaseInfo = CaseRecord

_UNFINISHED = ("running", "suspended")
BLOCKING_WORKERS = 40
"""Threads for the sync handlers that run under ``inline`` without being quick (as many as
anyio's default thread limiter allowed them before)."""
KEEP_FINISHED = 10_000
"""With a durable store, the engine forgets its finished case trees once it holds this many cases
(or twice as many as were left after the last sweep); the store keeps them, and
``engine.case(id)`` reads one back."""
"""Store statuses of the cases that have not ended (a suspended case is folded back like a running one)."""


class _Tree:
    """A case tree folded back from the store, not yet carried on (see :meth:`Engine.resume`).

    ``cases``: every case loaded, parents before their sub-cases; ``orphans``: sub-cases whose
    parent no longer waits for them (its cancel did not reach the store): they are cancelled;
    ``unstarted``: sub-cases registered whose start did not reach the store: they start now.
    """

    __slots__ = ("cases", "orphans", "root", "unstarted")

    root: Case  # set once the tree's root is loaded

    def __init__(self) -> None:
        self.cases: list[Case] = []
        self.orphans: list[Case] = []
        self.unstarted: list[Case] = []


class Engine:
    """The workflow engine. Use it as an async context manager.

    Args:
        store: the store URL: ``memory://`` (the default: the cases live as long as the engine)
            or ``sqlite:///path.db`` (durable: opened, with its one-writer lock, when the engine
            is entered; see :meth:`resume`).
        clock: the clock every timer, timeout and backoff uses (default: the system clock;
            tests pass ``yawlflow.testing.FakeClock``).
        seed: run deterministically: handlers one at a time in a seed-chosen order, case ids
            derived from the seed; the same spec, data, seed and external calls give the same
            trace on every run and every backend.
        config: the engine's configuration (``handlers: {allow: [...]}``; ``connectors: {NAME:
            {settings, timeout, retry, breaker, bulkhead, health}}``, see
            :class:`yawlflow.connectors.ConnectorHost`).
        handlers: handlers to register at once, by name.
        connectors: connector classes (or ready instances) to register for this engine only, by
            name; other names resolve in the process-wide registry (built-ins, plugins).
        tracer_provider, meter_provider: OpenTelemetry providers for the engine's spans and
            metrics (default: the global ones); with none configured, telemetry costs nothing.

    Raises:
        ConfigError: a bad store URL, clock, seed or configuration.

    Attributes:
        store_url: the store's URL, as given.
        handlers: the handler registry (``engine.handlers.register(name, fn)``).
        connectors: the engine's :class:`~yawlflow.connectors.ConnectorHost`: one instance per
            connector name, with its breaker and bulkhead, opened on first use while the engine
            runs (``engine.connectors.registry.register(name, cls)`` adds one).

    Entering the engine raises :class:`~yawlflow.StoreError` when its durable store cannot be
    opened — in particular when another engine holds it (the message names the file and the
    holder).
    """

    def __init__(
        self,
        *,
        store: str = "memory://",
        clock: Clock | None = None,
        seed: int | None = None,
        config: Mapping[str, Any] | None = None,
        handlers: Mapping[str, Handler] | None = None,
        connectors: Mapping[str, Any] | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ConfigError(f"seed must be an int, not {seed!r}")
        if clock is not None and not (hasattr(clock, "now_ns") and hasattr(clock, "sleep_until")):
            raise ConfigError(f"clock {clock!r} lacks now_ns() and sleep_until(): use yawlflow.testing.FakeClock")
        scheme = check_store_url(store)
        self.store_url = store
        self._durable_store = scheme != "memory"
        self._store: Store | None = None if self._durable_store else MemoryStore()
        self._snap_every = 0  # the open store's snapshot_every (0: the memory store, no snapshots)
        self._no_snapshot: set[str] = set()  # cases whose state would not encode: their log suffices
        # of the cases folded back and still held (by the engine or a caller): resolved before the store closes
        self._histories: weakref.WeakSet[_History] = weakref.WeakSet()
        self._sweep_at = KEEP_FINISHED  # a durable store: drop finished case trees once this many are held
        self._sweeping = False
        self._dormant: dict[str, _Tree] = {}  # trees folded back but not yet carried on, by root id
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.seed = seed
        self.config = _check_config(config)
        allow = self.config.get("handlers", {}).get("allow", [])
        self.handlers = HandlerRegistry(allow=allow)
        for name, fn in (handlers or {}).items():
            self.handlers.register(name, fn)
        from .connectors._host import ConnectorHost
        from .connectors._registry import Registry
        from .connectors._registry import registry as process_registry

        registry = Registry(parent=process_registry)
        for name, connector in (connectors or {}).items():
            registry.register(name, connector)
        # its jitter is seeded with the engine, so a seeded run's connector retries replay too
        self.execution = _execution_config(None, self.config.get("execution"))
        self._gates = Gates(_limits_config(None, self.config.get("limits")))
        self._gated = self._gates.any_item_limit
        self.hooks = Hooks()
        self._strategies: dict[str, Strategy] = {}  # made on first use, shut down when the engine stops
        self._inline_meter = Meter()  # the items run inline (metrics()["strategies"]["inline"])
        self._inline_started = 0
        self._job_ids = 0
        self._closing = False  # leaving: nothing new starts while running items drain
        self._drain_event: anyio.Event | None = None
        self._providers = (tracer_provider, meter_provider)
        self._tel: Telemetry | None = None
        self.connectors = ConnectorHost(
            registry=registry, clock=self.clock, config=self.config.get("connectors"),
            on_breaker_change=self._breaker_changed,
            rng=random.Random(f"connectors/{seed}") if seed is not None else None,  # noqa: S311 - jitter
        )
        self._host_open = False
        self._connector_entries: dict[tuple[int, str, int], _Entry] = {}
        self._ids = random.Random(f"ids/{seed}") if seed is not None else None  # noqa: S311 - ids, not secrets
        self._jitter: random.Random = random.SystemRandom()  # unseeded backoff jitter, shared by cases
        self._compiled: dict[int, tuple[Spec, CompiledSpec]] = {}
        # per compiled net: its runner (pure, shared) and a blank state every new case clones
        self._runners: dict[tuple[int, str], tuple[NetRunner, CaseState]] = {}
        self._cases: dict[str, Case] = {}
        self._opening: dict[str, anyio.Event] = {}  # keyed starts not yet past their first step
        self._tg: anyio.abc.TaskGroup | None = None
        # the first store failure while running: from then on nothing is written or applied (the
        # in-memory state may be ahead of the log); API calls and waiters raise it; resume elsewhere
        self._broken: StoreError | None = None

    @property
    def _slow_path(self) -> bool:
        """Whether quick handlers must leave the inline fast path (limits to queue on, before-hooks to await)."""
        return self._gated or self.hooks.wants("before_item_start")

    def metrics(self) -> dict[str, Any]:
        """What the engine counts now: cases by status, items running and queued behind limits, hooks.

        Returns:
            ``{"strategies": {name: StrategyMetrics fields}, "cases": {"running", "suspended",
            "finished"} (the cases this engine holds; with a durable store it forgets finished ones
            in sweeps, see ``KEEP_FINISHED``), "items": {"running", "queued"}, "hooks": {"called", "failed"}, "limits":
            {gate: {"held", "limit", "waiting"}}}``.
        """
        running = suspended = finished = items = 0
        for case in self._cases.values():
            if case._finished:
                finished += 1
            elif case._state.suspended:
                suspended += 1
            else:
                running += 1
            items += len(case._scopes)
        gates = self._gates.all()
        return {
            "strategies": {name: msgspec.structs.asdict(m) for name, m in self._strategy_metrics().items()},
            "cases": {"running": running, "suspended": suspended, "finished": finished},
            "items": {"running": items, "queued": sum(g.waiting for g in gates)},
            "hooks": {"called": self.hooks.called, "failed": self.hooks.failed},
            "limits": {g.name: {"held": g.held, "limit": g.limit, "waiting": g.waiting} for g in gates},
        }

    def _strategy_metrics(self) -> dict[str, StrategyMetrics]:
        """Each strategy's counts: ``inline`` (the items run in the case's task group, quick sync
        handlers called on the loop, and sync ones on the engine's daemon threads) once one ran,
        then the pools made so far (``blocking``, the daemon threads, counted under ``inline``)."""
        out: dict[str, StrategyMetrics] = {}
        if self._inline_started:
            out["inline"] = summarize([self._inline_meter], submitted=self._inline_started,
                                      started=self._inline_started, cancelled=0)
        out.update((name, st.metrics()) for name, st in self._strategies.items() if name != "blocking")
        return out

    @property
    def store(self) -> Store:
        """The engine's store (a durable one is open only while the engine runs).

        Raises:
            ConfigError: the durable store is not open (the engine is not running).
        """
        store = self._store
        if store is None:
            raise ConfigError(f"the engine's store {self.store_url} is open only while the engine runs: use "
                              "`async with engine:`")
        return store

    async def __aenter__(self) -> Engine:
        if self._tg is not None:
            raise ConfigError("this engine is already running; use one `async with` per engine")
        if self._broken is not None and not self._durable_store:
            raise ConfigError(f"this engine's in-memory store failed ({self._broken}): its cases cannot go on; "
                              "make a new engine")
        self._broken = None
        self._closing = False
        self._tel = telemetry_for(*self._providers)
        if self._tel is not None:
            self._tel.observe_strategies(self._strategy_metrics)
        if self._store is None:
            self._store = open_store(self.store_url)  # StoreError: locked by another engine, not a store...
        self._snap_every = self._store.snapshot_every
        if self._host_open:  # a second `async with`: a host is entered once
            self._renew_host()
        try:
            await self.connectors.__aenter__()  # entered before the root group: left after it
        except BaseException:
            await self._close_store(quiet=True)
            raise
        self._host_open = True
        tg = anyio.create_task_group()
        try:
            await tg.__aenter__()
        except BaseException:
            await self._close_connectors()
            await self._close_store(quiet=True)
            raise
        self._tg = tg
        service = getattr(self.clock, "run", None)
        if callable(service):
            tg.start_soon(service)
        if callable(getattr(self._store, "renew", None)):
            tg.start_soon(self._renew_leases)
        return self

    async def _renew_leases(self) -> None:
        """On a shared store, renew this engine's case leases every third of their length.

        Leases run on the database server's clock, so this sleeps in real time, not on the
        engine's clock (a fake clock in tests would let them expire or renew them never).
        """
        store = self._store
        lease_s = float(getattr(store, "lease_s", 30.0))
        while True:
            await anyio.sleep(lease_s / 3)
            if store is None or self._broken is not None:
                return
            try:
                await anyio.to_thread.run_sync(store.renew)  # type: ignore[attr-defined]
            except StoreError as exc:
                self._store_failed(exc)
                return

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        if et is None and self.execution.drain_ns:
            await self._drain(self.execution.drain_ns)
        tg, self._tg = self._tg, None
        if tg is None:  # pragma: no cover
            raise YawlflowInternalError("tg is unset: this is a bug; please report it")
        tg.cancel_scope.cancel()
        try:
            suppress = await tg.__aexit__(et, ev, tb)
        except BaseExceptionGroup as group:
            await self._close_connectors()
            await self._close_strategies()
            await self._close_store(quiet=True)
            first = _only_store_errors(group)
            if first is not None:  # one clean StoreError for the embedder, not a group per task group
                raise first from None
            raise
        except BaseException:
            await self._close_connectors()
            await self._close_strategies()
            await self._close_store(quiet=True)
            raise
        await self._close_connectors()
        await self._close_strategies()
        if self._tel is not None:
            self._tel.close()
        broken = self._broken
        await self._close_store(quiet=broken is not None or (et is not None and not suppress))
        if broken is not None and et is None:  # a handler's result could not be written: say so
            raise StoreError(f"the engine's store failed while it ran ({broken}); the unfinished cases resume from "
                             "what was written (async with Engine(store=...) as engine: await engine.resume())"
                             ) from broken
        return suppress

    def stop(self) -> None:
        """Stop taking new work now (a graceful shutdown's first step, e.g. on SIGTERM).

        No case starts and no new item starts from now on (what would start is held; with a
        durable store it starts on ``resume()``); running items go on. Leaving the engine then
        waits up to ``execution.drain`` for them and cancels the rest.
        """
        self._closing = True

    async def _drain(self, drain_ns: int) -> None:
        """Leaving the engine: start nothing new, let running items finish for ``drain_ns`` (engine clock).

        What is still running then is cancelled by the caller; with a durable store it is in the
        log as started and runs again on ``resume()``.
        """
        self._closing = True
        deadline = self.clock.now_ns() + drain_ns
        with anyio.CancelScope() as outer:
            async def timer() -> None:
                await self.clock.sleep_until(deadline)
                outer.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(timer)
                while any(case._scopes or case._inbox for case in self._cases.values()):
                    self._drain_event = anyio.Event()
                    await self._drain_event.wait()
                tg.cancel_scope.cancel()
        self._drain_event = None
        if outer.cancelled_caught:
            _log.warning("engine %s: items still running after the drain time (%gs) are cancelled", self.store_url,
                         drain_ns / 1e9)

    def _strategy(self, name: str) -> Strategy:
        """The engine's strategy ``name`` (thread, process or ray), made on first use.

        ``blocking`` is the pool of daemon threads (``BLOCKING_WORKERS``) on which the ``inline``
        strategy runs sync handlers that are not quick: a handler still running when the drain
        time ran out is abandoned there and never holds up the interpreter's exit (anyio's worker
        threads are not daemons).

        Raises:
            ConfigError: the strategy cannot be made (e.g. Ray is not installed).
        """
        hit = self._strategies.get(name)
        if hit is not None:
            return hit
        ex = self.execution
        made: Strategy
        if name in ("thread", "blocking"):
            from ._strategies import ThreadStrategy

            workers = ex.thread_workers if name == "thread" else BLOCKING_WORKERS
            made = ThreadStrategy(workers=workers, seed=self.seed)
        elif name == "process":
            from ._strategies import ProcessStrategy

            made = ProcessStrategy(workers=ex.process_workers, seed=self.seed)
        elif name == "ray":
            from ._ray import RayStrategy

            options = dict(ex.ray)
            made = RayStrategy(options.pop("address", None), **options)
        else:  # pragma: no cover - the config and spec checks allow no other name
            raise ConfigError(f"unknown execution strategy {name!r}")
        self._strategies[name] = made
        return made

    def _next_job(self) -> int:
        self._job_ids += 1
        return self._job_ids

    async def _close_strategies(self) -> None:
        """Shut the strategies down: what is still queued or running is cancelled (the cases were)."""
        strategies, self._strategies = list(self._strategies.values()), {}
        with anyio.CancelScope(shield=True):
            for strategy in strategies:
                try:
                    await strategy.shutdown(0)
                except Exception:
                    _log.exception("engine %s: shutting the %s strategy down failed", self.store_url, strategy.name)

    def _breaker_changed(self, name: str, old: BreakerState, new: BreakerState, reason: str) -> None:
        _log_breaker(name, old, new, reason)
        if self._tel is not None:
            self._tel.breaker_changed(name, old, new, reason)

    def _renew_host(self) -> None:
        """A fresh connector host with the same registry and configuration (a host is entered once)."""
        from .connectors._host import ConnectorHost

        old = self.connectors
        self.connectors = ConnectorHost(registry=old.registry, clock=self.clock, config=self.config.get("connectors"),
                                        rng=old._rng, on_breaker_change=self._breaker_changed)
        self._connector_entries.clear()

    async def _close_connectors(self) -> None:
        """Close the connector instances (their ``close()``); a failure is logged, never raised over the exit."""
        from ._errors import ConnectorError

        try:
            await self.connectors.__aexit__(None, None, None)
        except ConnectorError:
            _log.exception("engine %s: closing a connector failed", self.store_url)

    async def _close_store(self, *, quiet: bool) -> None:
        """Close a durable store (the memory store stays: the engine may be entered again).

        Histories of folded-back cases are read first, so their handles keep their traces. Handles
        stay readable; ``engine.case()`` forgets them (a new ``async with`` resumes from the store).
        """
        if not self._durable_store or self._store is None:
            return
        store = self._store
        with anyio.CancelScope(shield=True):
            try:
                for history in list(self._histories):
                    try:
                        history.resolve()
                    except StoreError as exc:  # the log went bad meanwhile: the trace stays short
                        _log.error("engine %s: a resumed case's history could not be read: %s", self.store_url, exc)
                self._histories.clear()
                await store.aclose()
            except StoreError:
                if not quiet:
                    raise
                _log.exception("engine %s: closing the store failed", self.store_url)
            finally:
                self._store = None
                self._snap_every = 0
                self._cases.clear()
                self._dormant.clear()

    async def _ack(self, case: Case | None = None) -> None:
        """Return once every event applied so far is durable (the memory store: at once, no checkpoint).

        Args:
            case: the case whose API call waits (on a shared store, losing *other* cases'
                leases does not fail its call).

        Raises:
            StoreError: the store failed (now, or earlier while this engine ran), or ``case`` is
                leased to another engine now.
        """
        if self._broken is not None:
            raise self._broken_error()
        store = self._store
        if store is not None:
            try:
                await store.durable()
            except StoreError as exc:
                lost = _lost_cases(exc)
                if lost is None:
                    self._store_failed(exc)
                    raise
                roots = self._lost_roots(lost)
                self._lose(lost, exc)
                if case is not None and case._root.id in roots:
                    raise

    def _lose(self, lost: dict[str, str | None], exc: StoreError) -> None:
        """Stop running the cases another engine now holds (their trees): forget them, cancel their work."""
        for root in self._lost_roots(lost):
            top = self._cases.get(root)
            if top is None:
                continue
            _log.warning("case %s is leased to another engine now (%s): this engine stops running it", root,
                         lost.get(root) or "unknown", extra={"case_id": root})
            for case in top._tree() if not top._finished else [top]:
                case._abandon()
                self._cases.pop(case.id, None)

    def _lost_roots(self, lost: dict[str, str | None]) -> set[str]:
        roots = set()
        for case_id in lost:
            case = self._cases.get(case_id)
            roots.add(case._root.id if case is not None else case_id)
        return roots

    def _store_failed(self, exc: StoreError) -> None:
        """Stop writing after the store's first failure, and wake every waiter so that it raises.

        A lost lease (a shared store refusing writes for cases another engine took) is not a
        failure of the store: those cases are dropped from this engine, the others go on.
        """
        lost = _lost_cases(exc)
        if lost is not None:
            self._lose(lost, exc)
            return
        if self._broken is not None:
            return
        self._broken = exc
        _log.error("engine %s: the store failed, nothing more is written; leave the engine and resume the cases "
                   "from the store in a new one (Engine.resume()): %s", self.store_url, exc)
        for case in list(self._cases.values()):
            case._notify()

    def _broken_error(self) -> StoreError:
        exc = self._broken
        return StoreError(
            f"the engine's store failed earlier ({exc}); nothing since was written: leave this engine and resume "
            f"the unfinished cases in a new one (async with Engine(store=...) as engine: await engine.resume())"
        )

    def _snapshot(self, case: Case, store: Store, seq: int) -> None:
        """Keep the case's state after its event ``seq`` (called when the store asks for one)."""
        if case.id in self._no_snapshot:
            return
        try:
            blob = encode_image(case._state, case._timers)
        except ImageError as exc:
            self._no_snapshot.add(case.id)
            _log.info("case %s: no snapshots (%s); it resumes from its log alone", case.id, exc,
                      extra={"case_id": case.id})
            return
        store.snapshot(case.id, blob, seq)

    # -- cases -------------------------------------------------------------------------------------
    async def start(self, spec: Spec | str | os.PathLike[str], data: Mapping[str, Any] | None = None, *,
                    tenant: str | None = None, key: str | None = None) -> Case:
        """Start a case of ``spec`` (a Spec, or a path to load) with ``data``.

        Returns once the case's first step is applied (routing up to the first wait). With a
        durable store, its start is on disk before the case runs anything (so no handler acts
        for a start that was not acknowledged); what the first step then does is written as a
        handler's result is, without a wait (ADR 0005).

        Args:
            spec: the spec, or a path to one.
            data: the case data, a JSON object.
            tenant: the tenant the case belongs to.
            key: an idempotency key: the case's id is derived from it (and the tenant), so a
                repeated start with the same key starts nothing and returns the case the first
                call started — also after a restart, on a durable store.

        Raises:
            ConfigError: the engine is not running (use ``async with Engine() as engine``).
            SpecError: ``spec`` is a path to a bad spec.
            InvalidEventError: ``data`` is not a JSON object; ``key`` is not a non-empty string,
                or it started a case of another spec.
            StoreError: the store failed (the case may not have been stored).
        """
        if self._tg is None:
            raise ConfigError("the engine is not running: use `async with yf.Engine() as engine:` first")
        if self._broken is not None:
            raise self._broken_error()
        if self._closing:
            raise ConfigError("the engine is shutting down (draining its running items): it starts no new case")
        if not isinstance(spec, Spec):
            spec = load(spec)
        payload = _check_data(data, "case data")
        key = _check_key(key)
        compiled = self._compile(spec)
        if self.hooks.wants("before_case_start"):
            await self.hooks.before(HookEvent(event="before_case_start", tenant=tenant, data=payload))
        slot = self._gates.for_case(tenant)
        if slot is not None:
            await slot.acquire()  # the tenant's limit of unfinished cases: wait for one to end
        try:
            case = await self._start(compiled, payload, tenant, key)
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        if slot is not None:
            if case._slot is None and not case._finished:
                case._slot = slot
            else:
                slot.release()  # a repeated start (its case holds a slot already), or it ended at once
        return case

    async def _start(self, compiled: CompiledSpec, payload: dict[str, Any], tenant: str | None,
                     key: str | None) -> Case:
        if key is not None:
            case_id = "case-" + hashlib.sha256(f"{tenant or ''}\0{key}".encode()).hexdigest()[:32]
            case = Case(self, compiled, compiled.root, case_id, tenant=tenant)
            try:
                case._create()
            except CaseExistsError:
                before = await self._started_before(case_id, key, compiled)
                if before is not None:
                    return before
                # registered by a start that died before its first record: this call starts it
        else:
            case = self._new_case(compiled, tenant)
        self._register(case)
        if not self._durable_store:
            case._open(payload)  # no task yet: the case gets its host when it first needs one
            return case
        # Durable: the start is on disk before the case runs anything, so no handler ever acts for
        # a case whose start was not acknowledged (and that a caller would start again).
        store = self.store
        started = case._started(payload)
        opening: anyio.Event | None = None
        if key is not None:
            opening = self._opening[case.id] = anyio.Event()
        try:
            try:
                seq = store.append(case.id, started)
                await store.durable()
            except BaseException as exc:
                self._cases.pop(case.id, None)
                if isinstance(exc, StoreError):
                    self._store_failed(exc)
                raise
            # what it does next is written like a handler's result: soon. A failure of that is recorded
            # (the engine writes no more); the start is on disk: the case resumes from there
            with contextlib.suppress(StoreError):
                case._open_logged(started, seq)
        finally:
            if opening is not None:  # a repeat of this start waiting in _started_before answers now
                del self._opening[case.id]
                opening.set()
        return case

    def _new_case(self, compiled: CompiledSpec, tenant: str | None) -> Case:
        """A new root case with a fresh id, registered in the store (not yet started)."""
        ids = self._ids
        for _ in range(1000):
            case_id = f"case-{ids.getrandbits(48):012x}" if ids is not None else f"case-{os.urandom(16).hex()}"
            case = Case(self, compiled, compiled.root, case_id, tenant=tenant)
            try:
                case._create()
            except CaseExistsError:
                if ids is None:
                    raise
                continue  # seeded ids repeat when an engine restarts on a durable store: draw the next
            return case
        raise StoreError(  # pragma: no cover - a thousand seeded ids in a row already taken
            f"no free case id after 1000 draws from seed {self.seed}: use another seed")

    async def _started_before(self, case_id: str, key: str, compiled: CompiledSpec) -> Case | None:
        """The case a start with idempotency key ``key`` made before (``case_id`` derives from the key).

        ``None`` when that start died before its first record reached the store (it was never
        acknowledged): the caller starts the case now.
        """
        await self._ack()
        opening = self._opening.get(case_id)
        if opening is not None:  # the first start is on disk but has not applied its first step yet
            await opening.wait()
        try:
            case = self.case(case_id)
        except UnstartedCaseError:
            return None
        if case._state.status == "failed" and case._state.seq == 0:  # marked failed by a resume meanwhile
            raise InvalidEventError(f"idempotency key {key!r}: the start with this key was interrupted before it was "
                                    f"acknowledged (case {case_id!r} never started); use a new key")
        if case._spec.id != compiled.id:
            raise InvalidEventError(f"idempotency key {key!r} started case {case_id!r} of spec {case._spec.id!r}, "
                                    f"not of {compiled.id!r}: a key names one start; use a new key")
        return case

    def case(self, case_id: str) -> Case:
        """A handle on any case in the engine's store.

        A case this engine runs is returned as it is. With a durable store, another case is
        folded back from the store: a finished one as a read-only handle; an unfinished one with
        its whole case tree, *dormant* — its state, work items and trace are there and API calls
        work, but the items that were running and the timers that were armed when its last engine
        stopped wait for :meth:`resume`.

        Raises:
            InvalidEventError: no such case.
            StoreError: the case is in the store but cannot be loaded (the message says why).
        """
        hit = self._cases.get(case_id)
        if hit is not None:
            return hit
        store = self._store
        record: CaseRecord | None = None
        if self._durable_store and store is not None and isinstance(case_id, str):
            try:
                record = store.record(case_id)
            except StoreError:
                record = None
        if store is None or record is None:
            raise InvalidEventError(f"no case {case_id!r} in this engine or its store (list them with "
                                    "engine.cases())")
        if record.status not in _UNFINISHED:
            return self._load_view(record)
        top = record
        while top.parent is not None:  # fold the whole tree from its root (or from an orphan)
            try:
                above = store.record(top.parent)
            except StoreError:
                break
            if above.status not in _UNFINISHED:
                break
            top = above
        if top.case not in self._cases:
            self._load_tree(top, self._running_by_parent())
        found = self._cases.get(case_id)
        if found is None:  # pragma: no cover - the tree load registers every running case in it
            raise InvalidEventError(f"no case {case_id!r} in this engine or its store")
        return found

    async def cases(self, status: str | None = None, tenant: str | None = None) -> list[CaseInfo]:
        """The cases in the store (sub-cases included), in creation order, filtered by ``status`` and ``tenant``.

        Raises:
            ConfigError: the engine's durable store is not open (the engine is not running).
        """
        store = self.store
        await store.durable()
        return store.records(status=status, tenant=tenant)

    async def publish(self, spec: Spec | str | os.PathLike[str], *, tenant: str | None = None) -> Spec:
        """Keep ``spec`` in the store as the one that new cases of its id start from, for ``tenant``.

        ``tenant=None`` publishes it for every tenant. It replaces the spec of the same id published
        for that tenant before; cases started already go on with their own version. The spec is
        compiled first, so an invalid one is never published. Returns once it is on disk (a durable
        store), so an engine opened later on the store finds it in :meth:`published` — this is how
        ``yawlflow serve`` keeps the specs uploaded to it (``POST /api/v1/specs``). The in-memory
        store keeps it while it lives.

        Args:
            spec: the spec, or a path to one.
            tenant: the tenant that may start it (``None``: every tenant).

        Returns:
            The published spec (loaded, when a path was given).

        Raises:
            ConfigError: the engine's durable store is not open (the engine is not running), or
                ``tenant`` is not ``None`` or a non-empty string.
            SpecError: the spec is invalid.
            StoreError: the store failed, or it was opened read-only.
        """
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise ConfigError(f"tenant must be None (every tenant) or a non-empty string, not {tenant!r}")
        if self._broken is not None:
            raise self._broken_error()
        store = self.store
        if not isinstance(spec, Spec):
            spec = load(spec)
        self._compile(spec)
        store.publish_spec(tenant, spec)
        await self._ack()
        return spec

    async def published(self, tenant: str | None = None) -> dict[str, Spec]:
        """The specs published with :meth:`publish` that ``tenant`` may start, by spec id.

        Those published for ``tenant`` win over those of the same id published for every tenant;
        ``tenant=None`` gives only those published for every tenant. Read from the store: an
        engine opened on a durable store finds what engines before it published.

        Raises:
            ConfigError: the engine's durable store is not open (the engine is not running).
            StoreError: the store cannot be read.
        """
        store = self.store
        await store.durable()
        found: dict[str, Spec] = {}
        for owner, spec in store.published_specs(tenant):  # every tenant's first: the tenant's own win
            if isinstance(spec, Spec) and (owner is None or tenant is not None):
                found[spec.id] = spec
        return found

    async def resume(self) -> list[Case]:
        """Carry on every unfinished case in the store that this engine does not run yet.

        Each root case is folded back from the store — its spec version (``spec_of``), its latest
        snapshot and the events after it — with its running sub-cases, and goes on where its log
        ends: timers are re-armed at their recorded deadlines (never later than one full delay
        from now); auto items that were running when the engine stopped run again
        (at-least-once) with the same :attr:`~yawlflow.ItemContext.idempotency_key` — unless
        their handler's ``reconcile(key)`` returns the output of the effect, which completes the
        item instead; a sub-case that ended without its parent hearing of it reports now; one the
        parent no longer waits for is cancelled. A case that cannot be loaded (a poisoned log or
        spec) is logged and skipped: the others resume.

        Returns:
            The resumed root cases, in creation order. The in-memory store lives and dies with its
            engine, so there it is empty.

        Raises:
            ConfigError: the engine is not running.
            StoreError: the store failed while the cases were carried on.
        """
        if self._tg is None:
            raise ConfigError("the engine is not running: use `async with yf.Engine(store=...) as engine:` first")
        store = self.store
        if not self._durable_store:
            return []
        await self._ack()
        claim = getattr(store, "claim", None)
        if callable(claim):  # a shared store: only the cases whose lease this engine takes
            running = [r for r in await anyio.to_thread.run_sync(claim) if r.case not in self._cases]
        else:
            running = _unfinished(store)
        ids = {r.case for r in running}
        by_parent = self._running_by_parent(running)
        for record in running:
            if record.case in self._cases or (record.parent is not None and record.parent in ids):
                continue  # runs here already, or is folded back with its parent
            try:
                self._load_tree(record, by_parent)
            except UnstartedCaseError:
                # Engine.start never returned for it (nor stored its data): it was never acknowledged
                _log.warning("case %s was registered but its start never reached the store (the engine stopped "
                             "inside Engine.start, before acknowledging it): marked failed, not resumed",
                             record.case, extra={"case_id": record.case})
                store.set_status(record.case, "failed")
            except StoreError as exc:
                if not isinstance(exc, CaseDamagedError):
                    raise  # the store could not be read: nothing is known about the case, resume again later
                _log.error("case %s cannot be resumed and is skipped: %s", record.case, exc,
                           extra={"case_id": record.case})
            except Exception as exc:  # one poisoned case never stops the others
                _log.error("case %s cannot be resumed and is skipped: %s", record.case, exc, exc_info=True,
                           extra={"case_id": record.case})
        resumed: list[Case] = []
        for root_id in list(self._dormant):
            tree = self._dormant.pop(root_id)
            unfinished = not tree.root._finished and tree.root not in tree.orphans
            await self._carry_on(tree)
            if unfinished:
                resumed.append(tree.root)
        await self._ack()
        return resumed

    # -- internals: folding cases back ---------------------------------------------------------
    def _running_by_parent(self, running: list[CaseRecord] | None = None) -> dict[str, list[CaseRecord]]:
        if running is None:
            running = _unfinished(self.store)
        out: dict[str, list[CaseRecord]] = {}
        for record in running:
            if record.parent is not None:
                out.setdefault(record.parent, []).append(record)
        return out

    def _spec_for(self, case: str) -> CompiledSpec:
        spec = self.store.spec_of(case)
        if not isinstance(spec, Spec):
            raise CaseDamagedError(f"case {case!r}: its stored spec is not a yawlflow spec ({type(spec).__name__}); "
                                   "it was not stored by an engine")
        return self._compile(spec)

    def _load_tree(self, record: CaseRecord, by_parent: dict[str, list[CaseRecord]]) -> _Tree:
        """Fold ``record``'s case and its running sub-cases back, register them dormant.

        Nothing is registered unless the whole tree loads.

        Raises:
            StoreError: a case of the tree cannot be loaded.
        """
        store = self.store
        compiled = self._spec_for(record.case)
        history = _History(self, store, compiled, record.case, record.net)
        tree = _Tree()
        root = tree.root = self._load_case(record, compiled, None, None, history, by_parent, tree)
        if record.parent is not None:  # its parent ended without cancelling it
            root._detached = True
            tree.orphans.insert(0, root)
        for case in tree.cases:
            self._register(case)
        self._histories.add(history)
        self._dormant[record.case] = tree
        return tree

    def _load_case(self, record: CaseRecord, compiled: CompiledSpec, parent: Case | None, parent_item: int | None,
                   history: _History, by_parent: dict[str, list[CaseRecord]], tree: _Tree) -> Case:
        store = self.store
        if record.net not in compiled.nets:
            raise CaseDamagedError(f"case {record.case!r} runs net {record.net!r}, which its spec {compiled.id!r} "
                                   "lacks")
        runner, blank = self._runner_for(compiled, record.net)
        cases = tree.cases
        try:
            folded = fold_case(store, record.case, runner, blank)
        except UnstartedCaseError:
            if parent is None or parent_item is None:
                raise
            # a sub-case registered but not started: its parent's item holds its data; it starts now
            case = Case(self, compiled, record.net, record.case, parent=parent, parent_item=parent_item,
                        tenant=record.tenant)
            history.marks[record.case] = 0
            cases.append(case)
            tree.unstarted.append(case)
            return case
        case = Case(self, compiled, record.net, record.case, parent=parent, parent_item=parent_item,
                    tenant=record.tenant)
        state = case._state = folded.state
        case._timers = folded.timers  # recorded deadlines; armed when the case is carried on
        case._finished = state.status != "running"
        case._history = history
        history.marks[record.case] = folded.length
        cases.append(case)
        if case._finished:
            if record.status != state.status:  # the status write was lost with the store's tail
                store.set_status(record.case, state.status)
            return case
        attached: set[str] = set()
        for item in sorted(state.items.values(), key=lambda i: i.id):
            if not (item.busy and runner.net.kind[item.tid] == KIND_COMPOSITE):
                continue
            child_id = f"{record.case}/{item.id}"
            try:
                child_record = store.record(child_id)
            except StoreError:
                history.marks[child_id] = 0  # never stored: carrying on starts it
                continue
            child = self._load_case(child_record, compiled, case, item.id, history, by_parent, tree)
            case._children[item.id] = child
            attached.add(child_id)
        for other in by_parent.get(record.case, ()):
            if other.case not in attached:  # a sub-case this case no longer waits for
                try:
                    orphan = self._load_case(other, compiled, case, None, history, by_parent, tree)
                except UnstartedCaseError:
                    store.set_status(other.case, "cancelled")  # never started, no longer wanted
                    continue
                orphan._detached = True
                tree.orphans.append(orphan)
        return case

    def _load_view(self, record: CaseRecord) -> Case:
        """A read-only handle on a finished case of the store (its trace folded from its log)."""
        store = self.store
        compiled = self._spec_for(record.case)
        if record.net not in compiled.nets:
            raise CaseDamagedError(f"case {record.case!r} runs net {record.net!r}, which its spec {compiled.id!r} "
                                   "lacks")
        runner, blank = self._runner_for(compiled, record.net)
        case = Case(self, compiled, record.net, record.case, tenant=record.tenant)
        history = _History(self, store, compiled, record.case, record.net)
        try:
            folded = fold_case(store, record.case, runner, blank)
        except UnstartedCaseError:  # abandoned inside Engine.start: no data, no events
            case._state.status = record.status
            case._state.error = "its start never reached the store (the engine stopped inside Engine.start)"
            history.marks[record.case] = 0
        else:
            case._state = folded.state
            history.marks[record.case] = folded.length
        case._finished = case._state.status != "running"
        case._history = history
        self._histories.add(history)
        self._register(case)
        return case

    async def _carry_on(self, tree: _Tree) -> None:
        """Start what a folded-back tree was doing when its engine stopped (see :meth:`resume`)."""
        orphans = {id(c) for c in tree.orphans}
        # 1. the in-doubt items: ask their handlers' reconcile first, before anything changes
        plans: list[tuple[Case, StartItem, dict[str, Any] | None]] = []
        for case in tree.cases:
            if case._finished or id(case) in orphans:
                continue
            kinds = case._runner.net.kind
            for item in sorted(case._state.items.values(), key=lambda i: i.id):
                if item.busy and kinds[item.tid] == KIND_AUTO:
                    effect = StartItem(item=item.id, task=item.task, net=case.net, input=item.data or {},
                                       attempt=item.attempt, key=f"{case.id}/{item.id}")
                    plans.append((case, effect, await self._reconcile(case, effect)))
        # 2. the rest at once, without a checkpoint between
        for case in tree.orphans:
            if not case._finished:
                case._api(CaseCancelRequested(at_ns=case._now()))
        unstarted = {id(c) for c in tree.unstarted}
        for case in tree.cases:
            if case._finished or id(case) in orphans or id(case) in unstarted:
                continue
            case._rearm_timers()
            net = case._runner.net
            for item in sorted(case._state.items.values(), key=lambda i: i.id):
                if item.busy and net.kind[item.tid] == KIND_COMPOSITE and item.id not in case._children:
                    sub = net.tasks[item.tid].net or ""
                    case._effect(StartSubcase(item=item.id, task=item.task, net=sub, case=f"{case.id}/{item.id}",
                                              data=dict(item.data or {})))
        for case in tree.unstarted:
            parent = case._parent
            if parent is not None and case._parent_item is not None and not parent._finished:
                waiting = parent._state.items.get(case._parent_item)
                case._open(dict(waiting.data or {}) if waiting is not None else {})
        for case, effect, output in plans:
            if case._finished or effect.item not in case._state.items:
                continue
            if output is not None:
                case._inbox.append(ItemCompleted(item=effect.item, output=output, at_ns=case._now()))
            else:
                case._start_item(effect)
        for case in reversed(tree.cases):  # sub-cases that ended without their parent hearing of it
            parent = case._parent
            if (case._finished and parent is not None and not case._detached and not parent._finished
                    and case._parent_item is not None and parent._children.get(case._parent_item) is case):
                case._report(case._state.status, case._state.data, case._state.error)
        for case in tree.cases:
            if not case._finished:
                case._drain()

    async def _reconcile(self, case: Case, effect: StartItem) -> dict[str, Any] | None:
        """Ask the handler of an in-doubt item whether its effect took place: its output, or ``None``."""
        net = case._runner.net
        tid = net.task_ids[effect.task]
        run = net.tasks[tid].run
        if run is None:  # pragma: no cover
            return None
        try:
            entry = self._entry(case, tid)
        except YawlflowError:
            return None  # running it reports the missing handler or connector
        fn = entry.reconcile
        if fn is None:
            return None
        where = f"case {case.id}: item {effect.item} ({effect.task!r})"
        try:
            if inspect.iscoroutinefunction(fn) or entry.quick:
                value = fn(effect.key)
            else:
                value = await anyio.to_thread.run_sync(fn, effect.key, abandon_on_cancel=True)
            if inspect.isawaitable(value):
                value = await value
        except Exception as exc:
            _log.warning("%s: reconcile(%r) failed (%s: %s); running the item again", where, effect.key,
                         type(exc).__name__, exc, extra={"case_id": case.id, "item_id": effect.item})
            return None
        if value is None:
            return None
        if not isinstance(value, Mapping):
            _log.warning("%s: reconcile(%r) returned %s, not a mapping or None; running the item again", where,
                         effect.key, type(value).__name__, extra={"case_id": case.id, "item_id": effect.item})
            return None
        try:
            return _check_data(value, f"the result of reconcile({effect.key!r})")
        except InvalidEventError as exc:
            _log.warning("%s: %s; running the item again", where, exc, extra={"case_id": case.id})
            return None

    # -- internals ---------------------------------------------------------------------------------
    def _entry(self, case: Case, tid: int) -> _Entry:
        """What runs task ``tid`` of ``case``'s net: its handler, or a call of its connector.

        A connector task gets an async entry (made once per task) that calls the engine's
        connector host — breaker, bulkhead, the connector's own timeout and retries — with the
        task's config validated against the connector's ``Config``; the item's own ``timeout``
        and ``retry`` apply around it as to any handler. The connector's ``reconcile`` is the
        entry's.

        Raises:
            ConfigError: no handler of that name (or not allowed).
            ConnectorError: the connector is unknown, its plugin is broken, or the config does not
                validate (the message names the task's config element).
        """
        net = case._runner.net
        run = net.tasks[tid].run
        if run is None:  # pragma: no cover
            raise YawlflowInternalError("task.run is unset: this is a bug; please report it")
        if run.connector is None:
            return self.handlers.resolve(run.handler or "")
        key = (id(case._spec), net.name, tid)
        hit = self._connector_entries.get(key)
        if hit is not None:
            return hit
        name = run.connector
        config = self.connectors.validate_config(name, run.config,
                                                 f"$.nets.{net.name}.tasks.{net.task_names[tid]}.run.config")
        host = self.connectors

        async def call(data: dict[str, Any], ctx: ItemContext) -> dict[str, Any]:
            return await host.call(name, config, data, ctx)

        async def reconcile(key: str) -> dict[str, Any] | None:
            return await host.reconcile(name, key)

        entry = self._connector_entries[key] = _Entry(call, False, reconcile)
        return entry

    def _register(self, case: Case) -> None:
        self._cases[case.id] = case
        if len(self._cases) >= self._sweep_at and self._durable_store and not self._sweeping and self._tg is not None:
            self._sweeping = True
            self._tg.start_soon(self._sweep)

    async def _sweep(self) -> None:
        """Forget the finished case trees (a long-running server would hold every case it ran).

        Only with a durable store, and only once their end is on disk: ``engine.case(id)`` then
        folds a finished case back from the store (a read-only handle, with its trace, data and
        idempotency keys). Handles that callers hold stay as they are. The next sweep comes when
        twice as many cases as are left are held (at least ``KEEP_FINISHED``): amortised O(1).
        """
        try:
            # not an abandoned tree: another engine runs it now, and its handle here says so
            done = [(cid, case) for cid, case in self._cases.items()
                    if case._root._finished and not case._root._abandoned]
            await self._ack()  # their statuses were written before this: now they are durable
            for cid, case in done:
                if self._cases.get(cid) is case:
                    del self._cases[cid]
        except StoreError:
            pass  # the engine stopped writing (it says so on every call); keep what it holds
        finally:
            self._sweep_at = max(KEEP_FINISHED, 2 * len(self._cases))
            self._sweeping = False

    def _compile(self, spec: Spec) -> CompiledSpec:
        hit = self._compiled.get(id(spec))
        if hit is not None and hit[0] is spec:
            return hit[1]
        compiled = compile_spec(spec)
        self._compiled[id(spec)] = (spec, compiled)
        return compiled

    def _runner_for(self, spec: CompiledSpec, net: str) -> tuple[NetRunner, CaseState]:
        """The runner of ``net`` and a blank state to clone (``CaseState.fresh``) for each case."""
        key = (id(spec), net)
        hit = self._runners.get(key)
        if hit is None:
            runner = NetRunner(spec.net(net))
            hit = self._runners[key] = (runner, runner.initial_state(CaseStarted(case="", net=net)))
        return hit


def _lost_cases(exc: BaseException) -> dict[str, str | None] | None:
    """The cases a shared store refused to write for (its ``LeaseLostError``), else ``None``."""
    cases = getattr(exc, "cases", None)
    return dict(cases) if isinstance(exc, StoreError) and isinstance(cases, dict) else None


def _only_store_errors(group: BaseExceptionGroup[BaseException]) -> StoreError | None:
    """The first StoreError of ``group`` when every exception in it (nested groups too) is one."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    if leaves and all(isinstance(exc, StoreError) for exc in leaves):
        first = leaves[0]
        assert isinstance(first, StoreError)  # noqa: S101 - checked just above
        return first
    return None


def _unfinished(store: Store) -> list[CaseRecord]:
    """The cases of ``store`` that have not ended, in creation order."""
    return [r for r in store.records() if r.status in _UNFINISHED]


def _check_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The engine's configuration, checked: ``config``, else the file ``$YAWLFLOW_CONFIG`` names, else none.

    Raises:
        ConfigError: every problem, located (see :mod:`yawlflow._config`).
    """
    if config is None:
        path = os.environ.get(CONFIG_ENV)
        return read_config(path) if path else {}
    return check_config(config)
