"""Case: one running case inside an Engine — the loop that feeds the runner and runs its effects.

Theory of operation. Each case owns a task group (inside the engine's root group; a sub-case's
inside its parent's) and a cancel scope per running work item and per armed timer. The group is
lazy: its *host* task starts the first time the case has something asynchronous to run (an async
or threaded handler, its timer loop, a hosted sub-case, the seeded driver), so a case that only
routes, calls quick handlers or waits for external work costs no task at all (ADR 0002).

Events reach the runner through one *inbox* that a synchronous drain loop empties: an API call
applies its own event first (so a bad call raises :class:`InvalidEventError` and changes
nothing), handlers and timers post theirs. Effects are carried out in order: a quick sync
handler is called inline (its result goes back to the inbox, so nothing recurses), other
handlers get a task, sub-cases a child Case, timers a sleeper on the engine's clock. Every
applied event is appended to the store first, so state = fold(log).

With a seed, handlers do not run concurrently: the root case keeps a *ready* list of started
items for its whole tree, and one driver task runs them one at a time in a seed-chosen order, so
the trace does not depend on timing or on the event-loop backend.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from ._compiled import KIND_EXTERNAL, CompiledSpec
from ._effects import ArmTimer, CancelItem, CaseFinished, DisarmTimer, Effect, StartItem, StartSubcase
from ._errors import ConfigError, InvalidEventError, StoreError, YawlflowError, YawlflowInternalError
from ._events import (
    CaseCancelRequested,
    CaseResumed,
    CaseStarted,
    CaseSuspended,
    Event,
    ForceCompleteRequested,
    InstanceAdded,
    ItemCancelRequested,
    ItemCompleted,
    ItemFailed,
    ItemResumed,
    ItemStarted,
    ItemSuspended,
    SignalForwarded,
    SignalReceived,
    TimerFired,
    fingerprint,
)
from ._handlers import ItemContext, _Entry
from ._hooks import HookEvent
from ._limits import Slots
from ._runner import Step, TraceRecord
from ._store import CaseRecord, Store
from ._strategy import Forked, Job, Strategy
from ._why import Wait, why

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ("Case", "Result", "WorkItem")

_log = logging.getLogger(__name__)


class WorkItem(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of one work item.

    Attributes:
        id: its id within its case.
        case: its case's id.
        task: its task's name.
        net: its net's name.
        instance: its instance number in a multiple-instance task, else ``None``.
        state: enabled, offered, started, completed, cancelled or failed.
        data: its input, once started; else ``None``.
        suspended: whether it is suspended (``case.suspend_item``): it cannot be started or
            completed, nor its handler run, until resumed.
    """

    id: int
    case: str
    task: str
    net: str
    instance: int | None
    state: str
    data: dict[str, Any] | None = None
    suspended: bool = False


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """How a case ended (or, from ``yf.run``, that it waits for external work).

    Attributes:
        case_id: the case's id.
        status: completed, failed, cancelled, or (``yf.run`` only) waiting.
        data: the case data.
        trace: the case's events (its sub-cases' included), in the order applied.
        error: the failure message, when failed.
        offered: the offered items, when waiting.
    """

    case_id: str
    status: str
    data: dict[str, Any]
    trace: list[TraceRecord]
    error: str | None = None
    offered: list[WorkItem] = msgspec.field(default_factory=list)


def _check_data(data: object, what: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise InvalidEventError(f"{what} must be a mapping with string keys (a JSON object), not {type(data).__name__}")
    try:
        return dict(msgspec.json.decode(msgspec.json.encode(dict(data))))
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidEventError(
            f"{what} must hold only JSON values (str, int, float, bool, None, list, dict): {exc}"
        ) from None


def _check_key(key: object) -> str | None:
    """An idempotency key as given to an API call: ``None``, or a non-empty string of at most 200 characters."""
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > 200:
        raise InvalidEventError(f"an idempotency key must be a non-empty string of at most 200 characters, not "
                                f"{key!r:.60}")
    return key


_MAX_NESTING = 50
"""How deep sub-cases may nest (a composite task whose net starts itself again, WCP-22 recursion)."""

_HOOKS_OF: dict[str, tuple[str, ...]] = {
    "case.started": ("after_case_start",), "case.completed": ("after_case_complete", "cleanup"),
    "case.failed": ("on_case_error", "cleanup"), "case.cancelled": ("on_case_cancel", "cleanup"),
    "item.completed": ("after_item_complete",), "item.failed": ("on_item_error",),
    "item.retried": ("on_item_error",), "item.cancelled": ("on_item_cancel",),
}
"""The hooks each trace record calls (see :mod:`yawlflow._hooks`)."""

_ENDED = {"item.completed": "has already completed", "item.cancelled": "was withdrawn or cancelled",
          "item.failed": "has failed"}


class Case:
    """A handle on one case. Created by :meth:`Engine.start`; never construct it directly.

    The calls that change the case (``start_item``, ``complete``, ``cancel_item``, ``signal``,
    ``add_instance``, ``force_complete``, ``cancel``) return once their event is applied and, with
    a durable store, on disk: an acknowledged event survives a crash. They raise
    :class:`~yawlflow.StoreError` when the store failed (the event may then be lost: resume the
    case from the store), and :class:`~yawlflow.ConfigError` once the engine of a durable store has
    stopped.
    """

    # slots: 10,000 waiting cases hold 10,000 of these; a __dict__ of ~30 attributes is 1.6 KiB each
    __slots__ = (
        "_abandoned",
        "_children",
        "_detached",
        "_done",
        "_draining",
        "_driving",
        "_engine",
        "_finished",
        "_forks",
        "_forwarding",
        "_held",
        "_history",
        "_hosted",
        "_inbox",
        "_parent",
        "_parent_item",
        "_pending",
        "_ready",
        "_ready_event",
        "_rng",
        "_root",
        "_runner",
        "_scopes",
        "_slot",
        "_spec",
        "_state",
        "_tg",
        "_timer_loop_started",
        "_timer_scope",
        "_timer_wakeup",
        "_timers",
        "_trace",
        "_waiters",
        "id",
        "net",
        "tenant",
    )

    def __init__(self, engine: Engine, spec: CompiledSpec, net: str, case_id: str, *,
                 parent: Case | None = None, parent_item: int | None = None, tenant: str | None = None) -> None:
        self._engine = engine
        self._spec = spec
        self._runner, blank = engine._runner_for(spec, net)
        self.id = case_id
        self.net = net
        self.tenant = tenant
        self._parent = parent
        self._parent_item = parent_item
        self._root: Case = parent._root if parent is not None else self
        self._state = blank.fresh(case_id)  # as ``initial_state`` makes it, without rebuilding the marking
        self._trace: list[TraceRecord] = []
        self._inbox: list[Event] = []  # a list, not a deque: an empty deque holds a 0.5 KiB block
        self._draining = False
        self._forwarding = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._hosted = False  # its host task was asked for (lazily: the first time work needs a task)
        # containers most cases never use start as None (an empty list is 56 bytes and a GC object)
        self._pending: list[tuple[Any, tuple[Any, ...]]] | None = None
        self._scopes: dict[int, anyio.CancelScope] = {}
        self._timers: dict[tuple[int, str], int] = {}  # (item, purpose) -> deadline (ns); one sleeper
        self._timer_loop_started = False
        self._timer_scope: anyio.CancelScope | None = None
        self._timer_wakeup: anyio.Event | None = None
        self._children: dict[int, Case] = {}
        self._forks: dict[int, _Fork] | None = None  # MI task id -> its instances on their way to a pool
        self._finished = False
        self._detached = False
        self._done: anyio.Event | None = None  # made by the host, the only one that waits on it
        self._waiters: list[anyio.Event] | None = None
        seed = engine.seed
        # not for security: a seeded order (deterministic mode) or jitter
        # the unseeded source is shared: a SystemRandom per case would carry an unused 2.5 KiB state
        self._rng = random.Random(f"{seed}/{case_id}") if seed is not None else engine._jitter  # noqa: S311
        self._ready: list[tuple[Case, StartItem]] | None = None  # root only, seeded mode only
        self._ready_event: anyio.Event | None = None
        self._driving = False  # root only, seeded mode only: the driver task was spawned
        # a case folded back from a durable store: its trace before that, rebuilt on demand
        self._history: _History | None = None
        # what a suspended case (or item) would have started: handlers and due timers, run on resume
        self._held: list[StartItem | TimerFired] | None = None
        self._abandoned = False  # another engine took the case (a shared store's lease)
        self._slot: Slots | None = None  # a root case's place in its tenant's case limit

    # -- public API ------------------------------------------------------------------------------
    @property
    def spec_id(self) -> str:
        """The id of the spec the case runs."""
        return self._spec.id

    @property
    def status(self) -> str:
        """running, suspended, completed, failed or cancelled."""
        state = self._state
        return "suspended" if state.suspended and state.status == "running" else state.status

    @property
    def data(self) -> dict[str, Any]:
        """A copy of the case data."""
        return dict(self._state.data)

    @property
    def trace(self) -> list[TraceRecord]:
        """The events so far (this case's and its sub-cases'), in the order applied.

        For a case resumed from a durable store, the part before the resume is rebuilt from the
        store (once, on first use); see :mod:`yawlflow._durable` for how sub-cases interleave.
        """
        history = self._history
        if history is None:
            return list(self._trace)
        return history.prefix(self.id) + self._trace

    def work_items(self, state: str | None = None) -> list[WorkItem]:
        """This case's work items: the live ones, or those in ``state``.

        Raises:
            InvalidEventError: ``state`` is not a work-item state.
        """
        states = ("enabled", "offered", "started", "completed", "cancelled", "failed")
        if state is not None and state not in states:
            raise InvalidEventError(f"unknown work-item state {state!r} (use one of: {', '.join(states)})")
        out = []
        paused = self._state.paused or ()
        for rec in self._state.items.values():
            if state is None or rec.state == state:
                out.append(WorkItem(id=rec.id, case=self.id, task=rec.task, net=rec.net, instance=rec.instance,
                                    state=rec.state, data=dict(rec.data) if rec.data is not None else None,
                                    suspended=rec.id in paused))
        if state in ("completed", "cancelled", "failed"):  # ended items live on in the trace only
            event = "item.cancelled" if state == "cancelled" else f"item.{state}"
            for r in self.trace:
                if r["case"] == self.id and r["event"] == event and r["item"] is not None:
                    out.append(WorkItem(id=int(r["item"]), case=self.id, task=str(r["task"]), net=str(r["net"]),
                                        instance=r["instance"], state=state,
                                        data=r["data"] if state == "completed" else None))
        return out

    def why(self) -> list[Wait]:
        """What the case (and its sub-cases) waits for: offered items, running handlers, triggers,
        timers, joins still waiting for a branch, mutexes, milestones; empty once it has ended."""
        held = frozenset(w.item for w in self._held or ())
        out = why(self._runner, self._state, self._timers, held)
        for child in self._children.values():
            out.extend(child.why())
        return out

    async def start_item(self, item_id: int, *, key: str | None = None) -> None:
        """Start an offered item (claiming it: in a deferred choice, the others are withdrawn).

        Args:
            item_id: the item.
            key: an idempotency key: a repeated call with the same key changes nothing and
                returns as the first did (also after a restart: keys are in the case's log).

        Raises:
            InvalidEventError: the item is not offered (never was, or already started, withdrawn...),
                the case or item is suspended, or ``key`` was used for another call.
        """
        event = ItemStarted(item=item_id, key=_check_key(key), at_ns=self._now())
        if not self._repeat(event):
            self._external(item_id)
            self._api(event)
        await self._acked()

    async def complete(self, item_id: int, output: Mapping[str, Any] | None = None, *,
                       key: str | None = None) -> None:
        """Complete an offered or started external item with ``output`` (merged into the case data).

        Args:
            item_id: the item.
            output: its output, a JSON object.
            key: an idempotency key (see :meth:`start_item`).

        Raises:
            InvalidEventError: the item is not a live external item (the message says whether it
                completed, was withdrawn or failed), ``output`` is not a JSON object, the case or
                item is suspended, or ``key`` was used for another call.
        """
        data = _check_data(output, f"the output of item {item_id}")
        event = ItemCompleted(item=item_id, output=data, key=_check_key(key), at_ns=self._now())
        if not self._repeat(event):
            self._external(item_id)
            self._api(event)
        await self._acked()

    async def cancel_item(self, item_id: int, *, key: str | None = None) -> None:
        """Withdraw an enabled or offered item, or halt a started one (WCP-19); the case goes on.

        Raises:
            InvalidEventError: no live item has that id (the message says what became of it), or
                ``key`` was used for another call.
        """
        event = ItemCancelRequested(item=item_id, key=_check_key(key), at_ns=self._now())
        if not self._repeat(event):
            if item_id not in self._state.items:
                raise self._gone(item_id)
            self._api(event)
        await self._acked()

    async def signal(self, name: str, data: Mapping[str, Any] | None = None, *, key: str | None = None) -> None:
        """Send the signal ``name`` (with ``data`` to merge into the case data) to the case.

        Transient triggers waiting now take it, else it is lost; persistent ones keep it.

        Args:
            name: the signal's name.
            data: data to merge into the case data, a JSON object.
            key: an idempotency key (see :meth:`start_item`).

        Raises:
            InvalidEventError: the case has ended or is suspended, ``name`` is empty, ``data`` is
                not a JSON object, or ``key`` was used for another call.
        """
        if not isinstance(name, str) or not name:
            raise InvalidEventError(f"a signal name must be a non-empty string, not {name!r}")
        payload = _check_data(data, f"the data of signal {name!r}") or None
        key = _check_key(key)
        if key is not None and self._repeat(SignalReceived(signal=name, data=payload, key=key)):
            await self._acked()
            return
        if self._finished:
            raise InvalidEventError(f"case {self.id!r} has ended ({self.status}): it takes no more calls")
        # One signal for the whole case tree: every transient waiter in it gets it; one case (the
        # first with a persistent waiter, else the first that declares such a trigger) consumes
        # or keeps it for a persistent trigger.
        tree = self._tree()
        waits = {c.id: c._runner.waiting_for(c._state, name) for c in tree}
        owner = next((c for c in tree if waits[c.id][1]), None)
        keeper = self if owner is None and self._spec_keeps(name) else None
        for case in tree:
            if case is self or case is owner or waits[case.id][0]:
                case._api(SignalReceived(signal=name, data=payload, persistent=case is owner or case is keeper,
                                         keep=case is keeper, key=key if case is self else None,
                                         at_ns=self._now()))
        self._root._forward_signals()
        await self._acked()

    async def suspend(self) -> None:
        """Suspend the case and its sub-cases: they start nothing new until :meth:`resume`.

        Handlers already running finish and their results are applied, but what they enable
        waits: no handler starts, no timer fires, and offered items stay offered but cannot be
        started or completed; signals, new instances and force-completion are refused. Cancelling
        still works. The suspension is in the case's log: a case suspended when its engine
        stopped is suspended after ``Engine.resume()`` too.

        Raises:
            InvalidEventError: the case has ended or is already suspended.
        """
        if not self._finished and self._state.suspended:
            raise InvalidEventError(f"case {self.id!r} is already suspended")
        for case in self._tree():
            if not case._state.suspended:
                case._api(CaseSuspended(at_ns=self._now()))
                case._set_status("suspended")
        await self._acked()

    async def resume(self) -> None:
        """Resume the suspended case (and its sub-cases): what waited starts now.

        Raises:
            InvalidEventError: the case is not suspended (or has ended).
        """
        if not self._finished and not self._state.suspended:
            raise InvalidEventError(f"case {self.id!r} is not suspended: there is nothing to resume")
        for case in self._tree():
            if case._state.suspended:
                case._api(CaseResumed(at_ns=self._now()))
                case._set_status("running")
        for case in self._tree():
            case._release()
        await self._acked()

    async def suspend_item(self, item_id: int) -> None:
        """Suspend one item: an offered one cannot be started or completed, an enabled one's handler
        does not start when it is triggered, until :meth:`resume_item`.

        Raises:
            InvalidEventError: no live item has that id, it is already suspended, or its handler
                or sub-case is running (suspend the case instead, or halt it with ``cancel_item``).
        """
        if item_id not in self._state.items and not self._finished:
            raise self._gone(item_id)
        self._api(ItemSuspended(item=item_id, at_ns=self._now()))
        await self._acked()

    async def resume_item(self, item_id: int) -> None:
        """Resume a suspended item (what waited for it starts, unless the case is suspended).

        Raises:
            InvalidEventError: no live item has that id, or it is not suspended.
        """
        if item_id not in self._state.items and not self._finished:
            raise self._gone(item_id)
        self._api(ItemResumed(item=item_id, at_ns=self._now()))
        self._release()
        await self._acked()

    async def add_instance(self, task: str, data: Mapping[str, Any] | None = None) -> None:
        """Add an instance to the running dynamic multiple-instance task ``task`` (WCP-15).

        The instance's input is the task's input overlaid with ``data`` (``item`` defaults to the
        instance number).

        Raises:
            InvalidEventError: no dynamic instance task of that name is running, its ``max`` is
                reached, or ``data`` is not a JSON object.
        """
        payload = _check_data(data, f"the data of the new instance of {task!r}")
        self._api(InstanceAdded(task=task, data=payload, at_ns=self._now()))
        await self._acked()

    async def force_complete(self, task: str) -> None:
        """Complete the running multiple-instance task ``task`` now (WCP-27).

        Its live instances are withdrawn, the completed ones gathered, and its successors enabled.

        Raises:
            InvalidEventError: no multiple-instance task of that name is running.
        """
        self._api(ForceCompleteRequested(task=task, at_ns=self._now()))
        await self._acked()

    async def cancel(self) -> None:
        """Cancel the whole case (WCP-20): every item, timer and sub-case is withdrawn.

        Raises:
            InvalidEventError: the case has already ended.
        """
        self._api(CaseCancelRequested(at_ns=self._now()))
        await self._acked()

    async def idle(self) -> None:
        """Return once no auto work runs in the case (or its sub-cases) and it waits or is done.

        Raises:
            StoreError: the engine's store failed before the case ended: it cannot go on in this
                engine (resume it from the store in a new one).
        """
        if self._engine._broken is not None and not self._finished:
            raise self._engine._broken_error()
        while not (self._finished or self._root_running() == 0):
            await self._wait_change()

    async def result(self) -> Result:
        """Wait until the case ends; return how.

        Raises:
            StoreError: the engine's store failed before the case ended (see :meth:`idle`).
        """
        while not self._finished:
            await self._wait_change()
        if self._abandoned:
            raise self._elsewhere()
        return self._result()

    def __repr__(self) -> str:
        return f"<Case {self.id!r} net={self.net!r} status={self.status}>"

    # -- internals: event application -------------------------------------------------------
    def _now(self) -> int:
        return self._engine.clock.now_ns()

    async def _acked(self) -> None:
        if self._engine._durable_store:
            await self._engine._ack(self)

    def _elsewhere(self) -> StoreError:
        return StoreError(f"case {self.id!r} is run by another engine now (its lease on the shared store "
                          f"{self._engine.store_url} passed to it): make the call there")

    def _abandon(self) -> None:
        """Stop running this case here (another engine holds it now): cancel its work, wake its waiters.

        Its handle stays readable; API calls on it are refused (its engine no longer runs it).
        """
        self._finished = True
        self._abandoned = True
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()
        for scope in list(self._scopes.values()):
            scope.cancel()
        self._scopes.clear()
        self._timers.clear()
        self._held = None
        if self._done is not None:
            self._done.set()
        self._notify()

    def _repeat(self, event: ItemStarted | ItemCompleted | ItemCancelRequested | SignalReceived) -> bool:
        """Whether ``event``'s idempotency key was applied already (then the call is a no-op).

        Raises:
            InvalidEventError: the key was used for a call that asked for something else.
        """
        key = event.key
        keys = self._state.keys
        if key is None or keys is None or key not in keys:
            return False
        if keys[key] != fingerprint(event):
            raise InvalidEventError(
                f"case {self.id!r}: idempotency key {key!r} was used for another call ({keys[key].split(':')[0]} "
                f"of {keys[key].split(':')[1]}) or with other data: a key names one call; use a new key"
            )
        return True

    def _gone(self, item_id: object) -> InvalidEventError:
        """The error for a call about an item that is not live: what became of it, if it ever was."""
        ended = f"; the case has ended ({self.status})" if self._finished else ""
        for r in reversed(self.trace):
            if r["case"] == self.id and r["item"] == item_id and r["event"] in _ENDED:
                return InvalidEventError(
                    f"case {self.id!r}: item {item_id} ({r['task']!r}) {_ENDED[str(r['event'])]} (trace seq "
                    f"{r['seq']}){ended}: the call changes nothing"
                )
        return InvalidEventError(f"case {self.id!r}: no live item {item_id!r} (it was never created){ended}: list "
                                 "live items with case.work_items()")

    def _set_status(self, status: str) -> None:
        engine = self._engine
        store = engine._store
        if store is not None and engine._broken is None:
            try:
                store.set_status(self.id, status)
            except StoreError as exc:
                engine._store_failed(exc)
                raise

    def _release(self) -> None:
        """Start what the case held while it (or one of its items) was suspended."""
        held = self._held
        if not held or self._finished or self._state.suspended:
            return
        paused = self._state.paused or ()
        keep: list[StartItem | TimerFired] = []
        self._held = None
        for what in held:
            if what.item in paused or what.item not in self._state.items:
                if what.item in self._state.items:
                    keep.append(what)
                continue
            if isinstance(what, StartItem):
                self._start_item(what)
            else:
                self._inbox.append(what)
        if keep:
            self._held = keep + (self._held or [])
        self._drain()

    def _hold(self, what: StartItem | TimerFired) -> bool:
        """Keep ``what`` for later if the case or its item is suspended."""
        state = self._state
        if not state.suspended and (state.paused is None or what.item not in state.paused):
            return False
        if self._held is None:
            self._held = []
        self._held.append(what)
        return True

    def _external(self, item_id: int) -> None:
        rec = self._state.items.get(item_id)
        if rec is None:
            raise self._gone(item_id)
        if rec is not None and self._runner.net.kind[rec.tid] != KIND_EXTERNAL:
            raise InvalidEventError(
                f"case {self.id!r}: item {item_id} ({rec.task!r}) is an automatic item run by its handler; "
                "only external items are started and completed through the API"
            )

    def _api(self, event: Event) -> None:
        broken = self._engine._broken
        if broken is not None:
            raise self._engine._broken_error()
        if self._abandoned:
            raise self._elsewhere()
        if self._finished:
            raise InvalidEventError(f"case {self.id!r} has ended ({self.status}): it takes no more calls")
        if self._engine._store is None:
            raise ConfigError(f"case {self.id!r}: its engine has stopped and closed its store "
                              f"{self._engine.store_url}; resume the case in a running engine "
                              "(`async with yf.Engine(store=...) as engine: await engine.resume()`)")
        step = self._runner.handle(self._state, event)  # raises InvalidEventError before any change
        self._applied(event, step)
        self._drain()

    def _post(self, event: Event) -> None:
        self._inbox.append(event)
        self._drain()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        inbox = self._inbox
        taken = 0
        try:
            while taken < len(inbox):  # events applied here may post more: they are taken in turn
                event = inbox[taken]
                taken += 1
                if self._finished:
                    continue
                if self._engine._broken is not None:
                    taken = len(inbox)  # the store failed: nothing more is applied (resume from the store)
                    break
                try:
                    step = self._runner.handle(self._state, event)
                except InvalidEventError:
                    continue  # a late result for an item withdrawn meanwhile: nothing to do
                try:
                    self._applied(event, step)
                except StoreError:
                    taken = len(inbox)  # recorded by _applied: the API calls and waiters raise it
                    break
        finally:
            del inbox[:taken]
            self._draining = False
        root = self._root
        if root._state.signals or (root._children and any(c._state.signals for c in root._tree()[1:])):
            root._forward_signals()
        self._notify()

    def _applied(self, event: Event, step: Step, seq: int | None = None) -> None:
        """Log ``event`` (unless it is already, at ``seq``), then carry out its step's effects."""
        engine = self._engine
        store = engine._store
        if store is None:  # pragma: no cover - _api checks first; nothing runs once the engine has left
            raise YawlflowInternalError("the store is closed: this is a bug; please report it")
        if engine._broken is not None:
            raise engine._broken_error()
        if seq is None:
            try:
                seq = store.append(self.id, event)
            except StoreError as exc:
                engine._store_failed(exc)  # the state is ahead of the log now: nothing more is written
                raise
        done = 0
        for effect, pos in zip(step.effects, step.positions, strict=True):
            if pos > done:
                self._extend_trace(step.trace[done:pos])
                done = pos
            self._effect(effect)  # a sub-case's events land right after what caused them
        self._extend_trace(step.trace[done:])
        if engine._snap_every and not self._finished and engine._broken is None:
            try:
                if store.needs_snapshot(self.id):
                    engine._snapshot(self, store, seq)  # the state after event seq, its timers armed
            except StoreError as exc:
                engine._store_failed(exc)
                raise

    def _extend_trace(self, records: list[TraceRecord]) -> None:
        engine = self._engine
        if records:
            if engine._tel is not None:
                engine._tel.records(self, records)
            if engine.hooks.any:
                self._hook_records(records)
        case: Case | None = self
        while case is not None:
            case._trace.extend(records)
            case = case._parent

    def _hook_records(self, records: list[TraceRecord]) -> None:
        """Tell the engine's hooks what these trace records of this case say happened."""
        engine = self._engine
        hooks = engine.hooks
        tenant = self._root.tenant
        for r in records:
            names = _HOOKS_OF.get(str(r["event"]), ())
            for name in names:
                if not hooks.wants(name):
                    continue
                data = r["data"]
                if r["event"] == "item.failed":
                    data = {**(data or {}), "final": True}
                elif r["event"] == "item.retried":
                    data = {**(data or {}), "final": False}
                elif name == "cleanup" or r["event"] in ("case.started", "case.failed", "case.cancelled"):
                    data = dict(self._state.data)
                hooks.notify(HookEvent(event=name, case=self.id, tenant=tenant, task=r["task"],
                                       item=r["item"], data=data), engine._tg)

    def _begin(self, data: dict[str, Any]) -> None:
        self._create()
        self._open(data)

    def _create(self) -> None:
        """Register the case in the store (``CaseExistsError`` when its id is taken: nothing changed)."""
        store = self._engine._store
        if store is None:
            raise ConfigError("the engine is not running: use `async with yf.Engine() as engine:` first")
        store.create(
            CaseRecord(case=self.id, spec_id=self._spec.id, net=self.net, tenant=self.tenant,
                       parent=self._parent.id if self._parent else None),
            self._spec.spec,
        )

    def _started(self, data: dict[str, Any]) -> CaseStarted:
        return CaseStarted(case=self.id, net=self.net, data=data, seed=self._engine.seed,
                           parent=self._parent.id if self._parent else None, at_ns=self._now())

    def _open(self, data: dict[str, Any]) -> None:
        """Apply the case's ``CaseStarted`` (and route up to its first wait)."""
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("case %s started in net %r", self.id, self.net, extra={"case_id": self.id, "net": self.net})
        self._post(self._started(data))

    def _open_logged(self, started: CaseStarted, seq: int) -> None:
        """Apply a ``CaseStarted`` already in the store (at ``seq``), and route up to the first wait."""
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("case %s started in net %r", self.id, self.net, extra={"case_id": self.id, "net": self.net})
        self._applied(started, self._runner.handle(self._state, started), seq)
        self._drain()

    # -- internals: effects ------------------------------------------------------------------
    def _spawn(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` in a task of this case's task group, starting the case's host first.

        The host is lazy: a case that never runs anything asynchronous (routing, quick handlers,
        external items, signals) never gets one. The first spawn asks for it, in the engine's
        root group for a root case and through the parent's ``_spawn`` for a sub-case, so the
        tree of task groups keeps its shape; work queues in ``_pending`` until the host runs.
        """
        if self._tg is not None:
            self._tg.start_soon(fn, *args)
            return
        if self._pending is None:
            self._pending = []
        self._pending.append((fn, args))
        if not self._hosted:
            self._hosted = True
            if self._parent is not None:
                self._parent._spawn(self._host)
            elif self._engine._tg is not None:
                self._engine._tg.start_soon(self._host)

    def _effect(self, effect: Effect) -> None:
        if isinstance(effect, StartItem):
            self._start_item(effect)
        elif isinstance(effect, CancelItem):
            scope = self._scopes.pop(effect.item, None)
            if scope is not None:
                scope.cancel()
            child = self._children.pop(effect.item, None)
            if child is not None:
                child._detached = True
                if not child._finished:
                    child._api(CaseCancelRequested(at_ns=self._now()))
            root = self._root
            if root._ready:
                root._ready = [(c, e) for c, e in root._ready if not (c is self and e.item == effect.item)]
        elif isinstance(effect, ArmTimer):
            self._timers[(effect.item, effect.purpose)] = self._now() + effect.after_ns
            if not self._timer_loop_started:
                self._timer_loop_started = True
                self._spawn(self._timer_loop)
            self._poke_timers()
        elif isinstance(effect, DisarmTimer):
            if self._timers.pop((effect.item, effect.purpose), None) is not None:
                self._poke_timers()
        elif isinstance(effect, StartSubcase):
            depth, up = 0, self._parent
            while up is not None:
                depth, up = depth + 1, up._parent
            if depth >= _MAX_NESTING:  # a net that starts itself without end: fail the item, not the stack
                self._inbox.append(ItemFailed(
                    item=effect.item, error_type="RecursionError", retryable=False, at_ns=self._now(),
                    error=f"sub-case {effect.case!r} would be nested {depth + 1} deep (at most {_MAX_NESTING}): net "
                          f"{effect.net!r} starts sub-cases without end; give its recursion a way out"))
                return
            child = Case(self._engine, self._spec, effect.net, effect.case, parent=self,
                         parent_item=effect.item, tenant=self.tenant)
            self._children[effect.item] = child
            self._engine._register(child)
            child._begin(effect.data)  # its host starts (through ours) when it first needs one
        elif isinstance(effect, CaseFinished):
            self._finish(effect)

    def _start_item(self, effect: StartItem) -> None:
        if (self._state.suspended or self._state.paused is not None) and self._hold(effect):
            return
        engine = self._engine
        if engine._closing:  # shutting down: nothing new starts (a durable store resumes it later)
            if self._held is None:
                self._held = []
            self._held.append(effect)
            return
        tid = self._runner.net.task_ids[effect.task]
        task = self._runner.net.tasks[tid]
        try:
            entry = self._engine._entry(self, tid)
        except YawlflowError as exc:  # no such handler or connector, a bad config: retrying cannot help
            self._inbox.append(ItemFailed(item=effect.item, error=str(exc), error_type=type(exc).__name__,
                                          retryable=False, at_ns=self._now()))
            return
        if self._engine.seed is not None:
            root = self._root
            if root._ready is None:
                root._ready = []
            root._ready.append((self, effect))
            if root._ready_event is not None:
                root._ready_event.set()
            elif not root._driving:
                root._driving = True
                root._spawn(root._driver)  # the driver starts with the tree's first ready item
            return
        if (entry.quick and not entry.is_async and effect.attempt == 1 and task.timeout_ns is None
                and not engine._slow_path):
            self._inbox.append(self._call_inline(entry, effect))  # no task: the cost model's fast path
            return
        scope = anyio.CancelScope()
        self._scopes[effect.item] = scope
        self._spawn(self._run_item, effect, entry, scope)

    def _context(self, effect: StartItem) -> ItemContext:
        return ItemContext(case_id=self.id, item_id=effect.item, task=effect.task, attempt=effect.attempt,
                           idempotency_key=effect.key)

    def _outcome(self, effect: StartItem, value: object) -> Event:
        if value is None or isinstance(value, Mapping):
            try:
                output = _check_data(value, f"the result of handler for task {effect.task!r}")
            except InvalidEventError as exc:
                return ItemFailed(item=effect.item, error=str(exc), error_type="TypeError", at_ns=self._now())
            return ItemCompleted(item=effect.item, output=output, at_ns=self._now())
        return ItemFailed(
            item=effect.item, error_type="TypeError", at_ns=self._now(),
            error=f"the handler for task {effect.task!r} returned {type(value).__name__}; return a dict or None",
        )

    def _failure(self, effect: StartItem, exc: BaseException) -> Event:
        _log.warning(
            "case %s: item %s (%r) attempt %s failed: %s: %s", self.id, effect.item, effect.task, effect.attempt,
            type(exc).__name__, exc, extra={"case_id": self.id, "item_id": effect.item, "task": effect.task},
        )
        # a connector's verdict (ConnectorError.retryable), or any error that says so, stops the retries
        retryable = getattr(exc, "retryable", True) is not False
        return ItemFailed(item=effect.item, error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__,
                          retryable=retryable, at_ns=self._now())

    def _call_inline(self, entry: _Entry, effect: StartItem) -> Event:
        engine = self._engine
        engine._inline_started += 1
        t0 = time.perf_counter()
        try:
            value = entry.fn(effect.input, self._context(effect)) if entry.wants_ctx else entry.fn(effect.input)
        except Exception as exc:
            engine._inline_meter.record(False, time.perf_counter() - t0)
            return self._failure(effect, exc)
        engine._inline_meter.record(True, time.perf_counter() - t0)
        return self._outcome(effect, value)

    async def _call(self, entry: _Entry, effect: StartItem) -> object:
        engine = self._engine
        task = self._runner.net.tasks[self._runner.net.task_ids[effect.task]]
        strategy = task.strategy or engine.execution.strategy
        if strategy != "inline" and task.run is not None and task.run.handler is not None:
            # a pool (thread, process) or Ray runs it; across a process boundary the item
            # context travels as a plain dict (same keys)
            pool = engine._strategy(strategy)
            ctx: object = self._context(effect)
            if strategy != "thread":
                ctx = msgspec.structs.asdict(ctx)  # type: ignore[arg-type]
            job = Job(id=engine._next_job(), handler=task.run.handler, fn=entry.fn,
                      args=(effect.input, ctx) if entry.wants_ctx else (effect.input,), key=effect.key)
            if task.instances is not None:
                return await self._submit_instance(self._runner.net.task_ids[effect.task], pool, job)
            return await pool.submit(job)
        args: tuple[Any, ...] = (effect.input, self._context(effect)) if entry.wants_ctx else (effect.input,)
        engine._inline_started += 1  # metrics()["strategies"]["inline"]
        t0 = time.perf_counter()
        ok = False
        try:
            if entry.is_async:
                value = await entry.fn(*args)
            elif entry.quick:
                value = entry.fn(*args)
            else:  # a daemon thread of the engine's own: abandoned at the end of a drain, it cannot hold up exit
                handler = task.run.handler if task.run is not None and task.run.handler is not None else effect.task
                value = await engine._strategy("blocking").submit(Job(id=engine._next_job(), handler=handler,
                                                                      fn=entry.fn, args=args, key=effect.key))
            ok = True
            return value
        finally:
            engine._inline_meter.record(ok, time.perf_counter() - t0)

    async def _submit_instance(self, tid: int, pool: Strategy, job: Job) -> object:
        """Run one instance of the multiple-instance task ``tid`` on ``pool``, in a batch with its
        siblings (fork-join: a work-stealing pool spreads a batch over its workers).

        The first instance to get here waits one turn of the loop (a checkpoint, ~3 us, once per
        batch), so that the siblings started in the same step join it; then they are handed to
        the pool in one step (:meth:`Strategy.fork`). Each keeps its own outcome, cancel scope,
        timeout and retries; an instance that comes later (a retry, one added at run time, one
        that waited for a limit) makes a batch of its own.
        """
        forks = self._forks
        if forks is None:
            forks = self._forks = {}
        fork = forks.get(tid)
        if fork is None:
            fork = forks[tid] = _Fork()
            fork.jobs.append(job)
            try:
                await anyio.lowlevel.cancel_shielded_checkpoint()
            finally:
                del forks[tid]
                try:
                    fork.handles = {f.job.id: f for f in pool.fork(fork.jobs)}
                except Exception as exc:  # shut down, a handler a worker cannot import: every instance's
                    fork.error = exc
                fork.ready.set()
        else:
            fork.jobs.append(job)
            try:
                await fork.ready.wait()
            except BaseException:  # cancelled: before the hand-over it never goes; after, it is cancelled
                if fork.handles is None:
                    fork.jobs.remove(job)
                elif job.id in fork.handles:
                    fork.handles[job.id].cancel()
                raise
        if fork.error is not None:
            raise fork.error
        if fork.handles is None:
            raise YawlflowInternalError(f"case {self.id}: instance job {job.id} woke before its batch was handed over")
        return await fork.handles[job.id].result()

    async def _run_item(self, effect: StartItem, entry: _Entry, scope: anyio.CancelScope) -> None:
        task = self._runner.net.tasks[self._runner.net.task_ids[effect.task]]
        engine = self._engine
        gates = engine._gates.for_item(effect.task, self._root.tenant) if engine._gated else ()
        taken = 0
        try:
            with scope:
                if effect.attempt > 1 and task.retry is not None:
                    r = task.retry
                    ceiling = r.backoff_ns * 2 ** (effect.attempt - 2)
                    if r.max_backoff_ns is not None:
                        ceiling = min(ceiling, r.max_backoff_ns)
                    await engine.clock.sleep_until(self._now() + int(self._rng.random() * ceiling))
                for gate in gates:  # a limit reached queues the item (in arrival order), never drops it
                    await gate.acquire()
                    taken += 1
                if engine.hooks.wants("before_item_start"):
                    await engine.hooks.before(HookEvent(event="before_item_start", case=self.id,
                                                        tenant=self._root.tenant, task=effect.task, item=effect.item,
                                                        data=effect.input))
                outcome: Event
                timeout_ns = task.timeout_ns if task.timeout_ns is not None else engine.execution.timeout_ns
                try:
                    if timeout_ns is None:
                        value = await self._call(entry, effect)
                    else:
                        value = await self._with_timeout(entry, effect, timeout_ns)
                except Exception as exc:
                    outcome = self._failure(effect, exc)
                else:
                    outcome = self._outcome(effect, value)
                if self._scopes.get(effect.item) is scope:
                    del self._scopes[effect.item]
                self._post(outcome)
        finally:
            for gate in gates[:taken]:
                gate.release()
            if self._scopes.get(effect.item) is scope:
                del self._scopes[effect.item]
            self._notify()

    async def _with_timeout(self, entry: _Entry, effect: StartItem, timeout_ns: int) -> object:
        deadline = self._now() + timeout_ns
        timed_out = False
        value: object = None
        async with anyio.create_task_group() as tg:
            async def watchdog() -> None:
                nonlocal timed_out
                await self._engine.clock.sleep_until(deadline)
                timed_out = True
                tg.cancel_scope.cancel()

            tg.start_soon(watchdog)
            value = await self._call(entry, effect)
            tg.cancel_scope.cancel()
        if timed_out:
            raise TimeoutError(f"task {effect.task!r} timed out after {timeout_ns / 1e9:g}s")
        return value

    def _rearm_timers(self) -> None:
        """Arm the timers of a case folded back from the store, at their recorded deadlines.

        A deadline is never later than one full delay from now: the recorded one is on the clock
        of the engine that armed it, and a clock of another run (a monotonic clock after a
        reboot, a fresh FakeClock) may be far behind it.
        """
        if not self._timers:
            return
        now = self._now()
        net = self._runner.net
        for key, deadline in sorted(self._timers.items()):
            item = self._state.items.get(key[0])
            if item is None:
                del self._timers[key]
                continue
            spec = net.tasks[item.tid]
            delay = spec.timeout_ns if key[1] == "timeout" else (spec.timer.after_ns if spec.timer else None)
            if delay is not None:
                self._timers[key] = min(deadline, now + delay)
        if self._timers and not self._timer_loop_started:
            self._timer_loop_started = True
            self._spawn(self._timer_loop)
        self._poke_timers()

    def _poke_timers(self) -> None:
        if self._timer_scope is not None:
            self._timer_scope.cancel()
        elif self._timer_wakeup is not None:
            self._timer_wakeup.set()

    async def _timer_loop(self) -> None:
        """Sleep until the earliest deadline; fire what is due in (deadline, item) order.

        One sleeper per case, not one task per timer: timers due at the same instant then fire
        in a fixed order, whatever order the backend would have woken their tasks in.
        """
        clock = self._engine.clock
        while True:
            if not self._timers:
                self._timer_wakeup = anyio.Event()
                await self._timer_wakeup.wait()
                self._timer_wakeup = None
                continue
            with anyio.CancelScope() as scope:
                self._timer_scope = scope
                await clock.sleep_until(min(self._timers.values()))
            self._timer_scope = None
            if scope.cancelled_caught:
                continue  # the set of timers changed: look again
            now = self._now()
            for deadline, key in sorted((d, k) for k, d in self._timers.items() if d <= now):
                if self._timers.get(key) == deadline:
                    del self._timers[key]
                    fired = TimerFired(item=key[0], purpose=key[1], at_ns=now)
                    if not self._hold(fired):  # a suspended case's timers fire when it resumes
                        self._post(fired)

    async def _driver(self) -> None:
        """Seeded mode: run the tree's ready items one at a time, in a seed-chosen order."""
        while True:
            while not self._ready:
                self._ready_event = anyio.Event()
                self._notify()
                await self._ready_event.wait()
            ready = self._ready
            case, effect = ready.pop(self._rng.randrange(len(ready)))
            if case._finished or effect.item not in case._state.items:
                continue
            try:
                entry = self._engine._entry(case, case._runner.net.task_ids[effect.task])
            except YawlflowError as exc:
                case._post(ItemFailed(item=effect.item, error=str(exc), error_type=type(exc).__name__,
                                      retryable=False, at_ns=self._now()))
                continue
            scope = anyio.CancelScope()
            case._scopes[effect.item] = scope
            await case._run_item(effect, entry, scope)

    async def _host(self) -> None:
        """Own the case's task group until the case ends (started by the first ``_spawn``)."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                pending, self._pending = self._pending or (), None
                for fn, args in pending:
                    tg.start_soon(fn, *args)
                if not self._finished:
                    self._done = anyio.Event()
                    await self._done.wait()
                # _finish cancelled every item's scope, so those tasks end on their own; only the
                # timer loop, the driver and unfinished sub-cases' hosts would not. Cancel only
                # then: anyio's CancelScope.cancel() formats the current task's repr (35-60 us).
                if self._timer_loop_started or self._driving or any(not c._finished for c in self._children.values()):
                    tg.cancel_scope.cancel()
        finally:
            self._tg = None

    # -- internals: ending, waiting ------------------------------------------------------------
    def _finish(self, effect: CaseFinished) -> None:
        self._finished = True
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("case %s %s", self.id, effect.status, extra={"case_id": self.id, "status": effect.status})
        with contextlib.suppress(StoreError):  # recorded by the engine; the log says how the case ended
            self._set_status(effect.status)
        for scope in list(self._scopes.values()):
            scope.cancel()
        self._scopes.clear()
        self._timers.clear()
        if self._done is not None:
            self._done.set()
        parent = self._parent
        if parent is not None and not self._detached and not parent._finished:
            self._report(effect.status, effect.data, effect.error)

    def _report(self, status: str, data: Mapping[str, Any], error: str | None) -> None:
        """Tell the parent how this sub-case ended: its composite item completes or fails."""
        parent = self._parent
        item = self._parent_item
        if parent is None or item is None:  # pragma: no cover
            raise YawlflowInternalError("parent is unset: this is a bug; please report it")
        parent._children.pop(item, None)
        if status == "completed":
            parent._inbox.append(ItemCompleted(item=item, output=dict(data), at_ns=self._now()))
        else:
            parent._inbox.append(ItemFailed(item=item, error=f"sub-case {self.id!r} {status}: "
                                            f"{error or 'cancelled'}", error_type="SubcaseError",
                                            at_ns=self._now()))
        parent._drain()

    def _root_running(self) -> int:
        root = self._root
        return len(root._ready or ()) + root._running_in_tree()

    def _running_in_tree(self) -> int:
        return len(self._scopes) + len(self._inbox) + sum(c._running_in_tree() for c in self._children.values())

    def _notify(self) -> None:
        drain = self._engine._drain_event
        if drain is not None:
            drain.set()
        case: Case | None = self
        while case is not None:
            if case._waiters:
                waiters, case._waiters = case._waiters, None
                for w in waiters:
                    w.set()
            case = case._parent

    async def _wait_change(self) -> None:
        """Wait until something changes in the case (or its tree).

        Raises:
            StoreError: the engine's store failed: the case cannot go on in this engine.
        """
        if self._engine._broken is not None:
            raise self._engine._broken_error()
        event = anyio.Event()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(event)
        await event.wait()
        if self._engine._broken is not None:
            raise self._engine._broken_error()

    def _spec_keeps(self, name: str) -> bool:
        return any(
            t.trigger is not None and t.trigger.persistent and t.trigger.signal == name
            for net in self._spec.spec.nets for t in net.tasks
        )

    def _forward_signals(self) -> None:
        """Hand persistent signals kept by a case to a sub-case whose trigger task now waits (WCP-24)."""
        if self._forwarding:
            return
        self._forwarding = True
        try:
            moved = True
            while moved:
                moved = False
                for keeper in self._tree():
                    for name in sorted(keeper._state.signals):
                        taker = next((c for c in keeper._tree()[1:] if c._runner.waiting_for(c._state, name)[1]), None)
                        if taker is not None and not keeper._finished and not taker._finished:
                            keeper._api(SignalForwarded(signal=name, at_ns=self._now()))
                            taker._api(SignalReceived(signal=name, persistent=True, at_ns=self._now()))
                            moved = True
        finally:
            self._forwarding = False

    def _tree(self) -> list[Case]:
        out: list[Case] = [self]
        for child in list(self._children.values()):
            if not child._finished:
                out.extend(child._tree())
        return out

    def _has_timers(self) -> bool:
        return bool(self._timers) or any(c._has_timers() for c in self._children.values())

    def _result(self) -> Result:
        status = self._state.status
        offered: list[WorkItem] = []
        if status == "running":
            status = "waiting"
            offered = self._offered_in_tree()
        return Result(case_id=self.id, status=status, data=dict(self._state.data), trace=self.trace,
                      error=self._state.error, offered=offered)

    def _offered_in_tree(self) -> list[WorkItem]:
        out = self.work_items("offered")
        for child in self._children.values():
            out.extend(child._offered_in_tree())
        return out

    async def _settled(self) -> Result:
        """Wait until the case ends or only external work (or a trigger) could move it on."""
        while True:
            await self.idle()
            if self._finished or not self._has_timers():
                return self._result()
            await self._wait_change()



class _Fork:
    """The instances of one multiple-instance task that reached a pool in the same turn of the loop."""

    __slots__ = ("error", "handles", "jobs", "ready")

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.handles: dict[int, Forked] | None = None
        self.error: Exception | None = None
        self.ready = anyio.Event()


class _History:
    """The trace of a case tree folded back from a durable store, up to the moment it was loaded.

    Rebuilt on first use (``Case.trace``), by folding the tree's logs from seq 0
    (:func:`yawlflow._durable.tree_trace`); ``marks`` bounds each case's log to its length when
    it was loaded, so what the engine appends afterwards (in the live ``_trace``) is not counted
    twice. The engine resolves every history before it closes its store.
    """

    __slots__ = ("__weakref__", "_engine", "_net", "_root", "_spec", "_store", "_traces", "marks")

    def __init__(self, engine: Engine, store: Store, spec: CompiledSpec, root: str, net: str) -> None:
        self._engine = engine
        self._store: Store | None = store
        self._spec = spec
        self._root = root
        self._net = net
        self._traces: dict[str, list[TraceRecord]] | None = None
        self.marks: dict[str, int] = {}

    def prefix(self, case: str) -> list[TraceRecord]:
        """The records of ``case`` (its sub-cases' included) from before it was loaded."""
        return list(self.resolve().get(case, ()))

    def resolve(self) -> dict[str, list[TraceRecord]]:
        """Fold the tree's traces now (once), while the store is open.

        Raises:
            StoreError: the store was closed before the history was read.
        """
        if self._traces is None:
            from ._durable import tree_trace

            store = self._store
            if store is None:  # pragma: no cover - the engine resolves histories before closing
                raise StoreError(f"case {self._root!r}: its history is read from the store, which is closed")

            def load(case: str) -> list[Event] | None:
                try:
                    return store.events(case)
                except StoreError:
                    return None

            spec = self._spec
            self._traces = tree_trace(self._root, self._net, lambda net: self._engine._runner_for(spec, net),
                                      load, self.marks)
            self._store = None
        return self._traces
