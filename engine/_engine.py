"""Engine: the embeddable workflow engine — one root task group, the handler registry, the store.

Theory of operation. ``async with Engine() as engine`` opens the root task group; every case
runs its asynchronous work in a child task group of it (a sub-case inside its parent's), and
each work item in its own cancel scope inside its case. A case's group is opened lazily, when
the case first has something to run in it (ADR 0002, "Lazy hosts"): ``start`` spawns no task.
Leaving the ``async with`` block cancels whatever still runs: no task outlives the engine. Specs
are compiled once and cached by identity; a NetRunner is built once per compiled net and shared
by every case of that net (it is pure).
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from ._case import Case, _check_data
from ._clock import Clock, SystemClock
from ._compiled import CompiledSpec, compile_spec
from ._errors import ConfigError, InvalidEventError, YawlflowInternalError
from ._events import CaseStarted
from ._handlers import Handler, HandlerRegistry
from ._runner import NetRunner
from ._spec import load
from ._spec._model import Spec
from ._state import CaseState
from ._store import CaseRecord, Store, open_store

__all__ = ("CaseInfo", "Engine")

CaseInfo = CaseRecord


class Engine:
    """The workflow engine. Use it as an async context manager.

    Args:
        store: the store URL (``memory://``, the default).
        clock: the clock every timer, timeout and backoff uses (default: the system clock;
            tests pass ``yawlflow.testing.FakeClock``).
        seed: run deterministically: handlers one at a time in a seed-chosen order, case ids
            derived from the seed; the same spec, data, seed and external calls give the same
            trace on every run and every backend.
        config: the engine's configuration (``handlers: {allow: [...]}``).
        handlers: handlers to register at once, by name.

    Raises:
        ConfigError: a bad store URL, clock, seed or configuration.
    """

    def __init__(
        self,
        *,
        store: str = "memory://",
        clock: Clock | None = None,
        seed: int | None = None,
        config: Mapping[str, Any] | None = None,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ConfigError(f"seed must be an int, not {seed!r}")
        if clock is not None and not (hasattr(clock, "now_ns") and hasattr(clock, "sleep_until")):
            raise ConfigError(f"clock {clock!r} lacks now_ns() and sleep_until(): use yawlflow.testing.FakeClock")
        self.store: Store = open_store(store)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.seed = seed
        self.config = _check_config(config)
        allow = self.config.get("handlers", {}).get("allow", [])
        self.handlers = HandlerRegistry(allow=allow)
        for name, fn in (handlers or {}).items():
            self.handlers.register(name, fn)
        self._ids = random.Random(f"ids/{seed}") if seed is not None else None  # noqa: S311 - ids, not secrets
        self._jitter: random.Random = random.SystemRandom()  # unseeded backoff jitter, shared by cases
        self._compiled: dict[int, tuple[Spec, CompiledSpec]] = {}
        # per compiled net: its runner (pure, shared) and a blank state every new case clones
        self._runners: dict[tuple[int, str], tuple[NetRunner, CaseState]] = {}
        self._cases: dict[str, Case] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Engine:
        if self._tg is not None:
            raise ConfigError("this engine is already running; use one `async with` per engine")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        service = getattr(self.clock, "run", None)
        if callable(service):
            tg.start_soon(service)
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        tg, self._tg = self._tg, None
        if tg is None:  # pragma: no cover
            raise YawlflowInternalError("tg is unset: this is a bug; please report it")
        tg.cancel_scope.cancel()
        return await tg.__aexit__(et, ev, tb)

    # -- cases -------------------------------------------------------------------------------------
    async def start(self, spec: Spec | str | os.PathLike[str], data: Mapping[str, Any] | None = None, *,
                    tenant: str | None = None) -> Case:
        """Start a case of ``spec`` (a Spec, or a path to load) with ``data``.

        Returns once the case's first step is applied (routing up to the first wait).

        Raises:
            ConfigError: the engine is not running (use ``async with Engine() as engine``).
            SpecError: ``spec`` is a path to a bad spec.
            InvalidEventError: ``data`` is not a JSON object.
        """
        if self._tg is None:
            raise ConfigError("the engine is not running: use `async with yf.Engine() as engine:` first")
        if not isinstance(spec, Spec):
            spec = load(spec)
        payload = _check_data(data, "case data")
        compiled = self._compile(spec)
        case_id = f"case-{self._ids.getrandbits(48):012x}" if self._ids is not None else f"case-{os.urandom(16).hex()}"
        case = Case(self, compiled, compiled.root, case_id, tenant=tenant)
        self._register(case)
        case._begin(payload)  # no task yet: the case gets its host when it first needs one
        return case

    def case(self, case_id: str) -> Case:
        """A handle on a case of this engine.

        Raises:
            InvalidEventError: no such case.
        """
        try:
            return self._cases[case_id]
        except KeyError:
            raise InvalidEventError(f"no case {case_id!r} in this engine (list them with engine.cases())") from None

    async def cases(self, status: str | None = None, tenant: str | None = None) -> list[CaseInfo]:
        """The cases in the store, filtered by ``status`` and ``tenant``."""
        return [r for r in self.store.records()
                if (status is None or r.status == status) and (tenant is None or r.tenant == tenant)]

    async def resume(self) -> list[Case]:
        """Every unfinished case in the store that this engine does not run yet, running again.

        The in-memory store lives and dies with its engine, so it has nothing to resume.
        """
        return []

    # -- internals ---------------------------------------------------------------------------------
    def _register(self, case: Case) -> None:
        self._cases[case.id] = case

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


def _check_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping, not {type(config).__name__}")
    known = {"handlers", "execution"}
    for key in config:
        if key not in known:
            raise ConfigError(f"config: unknown section {key!r} (known: {', '.join(sorted(known))})")
    handlers = config.get("handlers", {})
    if not isinstance(handlers, Mapping) or set(handlers) - {"allow"}:
        raise ConfigError("config.handlers: expected {allow: [module, ...]}")
    allow = handlers.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(m, str) and m for m in allow):
        raise ConfigError("config.handlers.allow: expected a list of module names")
    return dict(config)
