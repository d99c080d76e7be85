"""Durable cases: the snapshot encoding, folding a case back from its store, and its trace.

Theory of operation (ADR 0005, "Wiring the store into the engine").

* **Snapshots.** A case's state is a fold of its log (ADR 0001). Every ``snapshot_every`` events
  the engine keeps an *image* of the state after event ``seq`` (:func:`encode_image`): the
  :class:`~yawlflow._state.CaseState` fields as MessagePack (the marking as its token and busy
  counts, sparse) plus the engine's armed timers, which are not part of the runner's state
  (they are effects) but must survive a restart. ``state = image + fold(events after seq)``.
* **Folding a case back** (:func:`fold_case`): the latest snapshot that decodes (else the start
  of the log), then every later event through :meth:`NetRunner.handle`; the effects of those
  events keep the timers up to date (``ArmTimer`` at the event's time plus its delay). A log
  that does not fold (a record the runner refuses) is a poisoned case: :class:`StoreError`.
* **The trace of a resumed case** (:func:`tree_trace`) is rebuilt on demand by folding its whole
  tree from seq 0. Each case's own records come back exactly, in ``seq`` order. The interleaving
  of a sub-case's records with its parent's in the parent's trace is not stored (each case has
  its own log); it is rebuilt from causality — a sub-case starts inside the parent step that
  started it, a composite item completes after its sub-case ended, a withdrawn composite cancels
  its sub-case inside the withdrawing step — then by the events' time, and on a tie the case
  that applied the last event goes on (a drain loop empties its own inbox first). So it equals
  the live order except between records of different cases of one tree that happened at the
  same clock reading without a causal link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import msgspec

from ._effects import ArmTimer, CancelItem, CaseFinished, DisarmTimer, StartSubcase
from ._errors import InvalidEventError, StoreError, YawlflowError
from ._events import CaseCancelRequested, CaseStarted, Event, ItemCompleted, ItemFailed, TimerFired
from ._runner import NetRunner, TraceRecord
from ._state import CaseState, ItemRecord, JoinState, MIGroup
from ._store import CaseDamagedError, Store

__all__ = (
    "IMAGE_VERSION",
    "Folded",
    "ImageError",
    "UnstartedCaseError",
    "decode_image",
    "encode_image",
    "fold_case",
    "tree_trace",
)

_log = logging.getLogger(__name__)

IMAGE_VERSION: Final = 1
"""The version of the snapshot encoding; an image of another version is ignored (fold from 0)."""

TimerKey = tuple[int, str]  # (item, purpose)


class ImageError(Exception):
    """A snapshot image that cannot be used (another version, damaged, or another net's)."""


class UnstartedCaseError(StoreError):
    """The case is registered but its ``case_started`` record never reached the store: the engine
    stopped inside ``Engine.start`` (or while starting a sub-case), before acknowledging it."""


class _Item(msgspec.Struct, array_like=True, frozen=True):
    id: int
    tid: int
    task: str
    net: str
    state: str
    instance: int | None
    data: dict[str, Any] | None
    extra: dict[str, Any] | None
    attempt: int
    claimed: bool
    busy: bool
    first_at_ns: int


class _Group(msgspec.Struct, array_like=True, frozen=True):
    item: int
    created: int
    live: list[int]
    finished: int
    completed: int
    results: dict[int, dict[str, Any]]
    done: bool


class _Image(msgspec.Struct, kw_only=True, frozen=True):
    v: int
    case: str
    net: str
    tokens: dict[int, int]
    busy: dict[int, int]
    data: dict[str, Any]
    items: list[_Item]
    waiting: dict[int, list[int]]
    signals: dict[str, int]
    joins: dict[int, tuple[int, bool, int]]
    mi: dict[int, _Group]
    mutex: dict[str, int]
    status: str
    next_item: int
    seq: int
    seed: int | None
    flags: int
    error: str | None
    timers: list[tuple[int, str, int]]
    # added after IMAGE_VERSION 1 was released: defaults keep older images readable
    suspended: bool = False
    paused: list[int] = []
    keys: dict[str, str] = {}


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(_Image)


def encode_image(state: CaseState, timers: dict[TimerKey, int]) -> bytes:
    """The snapshot image of ``state`` and the case's armed ``timers`` ((item, purpose) -> deadline).

    Raises:
        ImageError: the state holds a value MessagePack cannot encode (the engine then keeps no
            snapshot of this case: its log alone is enough).
    """
    marking = state.marking
    image = _Image(
        v=IMAGE_VERSION, case=state.case, net=state.net,
        tokens={p: n for p, n in enumerate(marking.tokens()) if n},
        busy={t: n for t, n in enumerate(marking.busy_counts()) if n},
        data=state.data,
        items=[_Item(i.id, i.tid, i.task, i.net, i.state, i.instance, i.data, i.extra, i.attempt, i.claimed, i.busy,
                     i.first_at_ns) for i in state.items.values()],
        waiting={t: w for t, w in state.waiting.items() if w},
        signals=state.signals,
        joins={t: (j.arrived, j.fired, j.ready) for t, j in state.joins.items()},
        mi={t: _Group(g.item, g.created, g.live, g.finished, g.completed, g.results, g.done)
            for t, g in state.mi.items()},
        mutex=state.mutex, status=state.status, next_item=state.next_item, seq=state.seq, seed=state.seed,
        flags=state.flags, error=state.error,
        timers=sorted((item, purpose, deadline) for (item, purpose), deadline in timers.items()),
        suspended=state.suspended, paused=sorted(state.paused or ()), keys=state.keys or {},
    )
    try:
        return _ENCODER.encode(image)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ImageError(f"the state of case {state.case!r} cannot be encoded: {exc}") from None


def decode_image(blob: bytes, blank: CaseState) -> tuple[CaseState, dict[TimerKey, int]]:
    """The state and timers of a snapshot image; ``blank`` is a blank state of the case's net.

    Raises:
        ImageError: the image does not decode, is of another version, or does not fit the net.
    """
    try:
        image = _DECODER.decode(blob)
    except msgspec.DecodeError as exc:
        raise ImageError(f"the snapshot does not decode: {exc}") from None
    if image.v != IMAGE_VERSION:
        raise ImageError(f"the snapshot is of version {image.v}, this yawlflow writes {IMAGE_VERSION}")
    if image.net != blank.net:
        raise ImageError(f"the snapshot is of net {image.net!r}, the case runs {blank.net!r}")
    state = blank.fresh(image.case)
    marking = state.marking
    try:
        for p, n in image.tokens.items():
            marking.add(p, n)
        for t, n in image.busy.items():
            marking.busy_add(t, n)
    except (IndexError, ValueError) as exc:
        raise ImageError(f"the snapshot's marking does not fit net {blank.net!r}: {exc}") from None
    state.data = image.data
    for i in image.items:
        rec = ItemRecord(id=i.id, tid=i.tid, task=i.task, net=i.net, state=i.state,  # type: ignore[arg-type]
                         instance=i.instance)
        rec.data, rec.extra, rec.attempt = i.data, i.extra, i.attempt
        rec.claimed, rec.busy, rec.first_at_ns = i.claimed, i.busy, i.first_at_ns
        state.items[i.id] = rec
    state.waiting = {t: list(w) for t, w in image.waiting.items()}
    state.signals = dict(image.signals)
    for t, (arrived, fired, ready) in image.joins.items():
        join = JoinState()
        join.arrived, join.fired, join.ready = arrived, fired, ready
        state.joins[t] = join
    for t, g in image.mi.items():
        group = MIGroup(g.item)
        group.created, group.live, group.finished, group.completed = g.created, list(g.live), g.finished, g.completed
        group.results, group.done = dict(g.results), g.done
        state.mi[t] = group
    state.mutex = dict(image.mutex)
    state.status, state.next_item, state.seq = image.status, image.next_item, image.seq
    state.seed, state.flags, state.error = image.seed, image.flags, image.error
    state.suspended = image.suspended
    state.paused = set(image.paused) if image.paused else None
    state.keys = dict(image.keys) if image.keys else None
    return state, {(item, purpose): deadline for item, purpose, deadline in image.timers}


class Folded:
    """A case folded back from its store.

    Attributes:
        state: its state after its last stored event.
        timers: its armed timers, (item, purpose) -> deadline on the engine's clock.
        length: how many events its log holds (the next seq).
        from_snapshot: the seq the fold started after a snapshot, or -1 (folded from the start).
    """

    __slots__ = ("from_snapshot", "length", "state", "timers")

    def __init__(self, state: CaseState, timers: dict[TimerKey, int], length: int, from_snapshot: int) -> None:
        self.state = state
        self.timers = timers
        self.length = length
        self.from_snapshot = from_snapshot


def fold_case(store: Store, case: str, runner: NetRunner, blank: CaseState, *, use_snapshot: bool = True) -> Folded:
    """Rebuild ``case`` from ``store``: its latest usable snapshot, then every later event.

    Raises:
        UnstartedCaseError: the case's log is empty.
        StoreError: the case is missing, a record does not decode, or the log does not fold (a
            poisoned case: the message names the case and the record).
    """
    state: CaseState | None = None
    timers: dict[TimerKey, int] = {}
    start = 0
    snap = store.latest_snapshot(case) if use_snapshot else None
    if snap is not None:
        try:
            state, timers = decode_image(snap.state, blank)
            start = snap.upto_seq + 1
        except ImageError as exc:
            _log.warning("case %s: ignoring its snapshot after record %d (%s); folding its whole log",
                         case, snap.upto_seq, exc, extra={"case_id": case})
            state, timers, start = None, {}, 0
    events = store.events(case, start)
    if state is None:
        if not events:
            raise UnstartedCaseError(f"case {case!r} was registered but its start never reached the store")
        if not isinstance(events[0], CaseStarted):
            raise CaseDamagedError(f"case {case!r} cannot be loaded: its first record is a {type(events[0]).__name__}, "
                                   f"not a case_started record (check it with `yawlflow verify --store URL {case}`)")
        state = blank.fresh(case)
    for seq, event in enumerate(events, start=start):
        try:
            step = runner.handle(state, event)
        except (InvalidEventError, YawlflowError, KeyError, IndexError, ValueError) as exc:
            raise CaseDamagedError(
                f"case {case!r}, record {seq}: the record does not apply to the case's state ({exc}); the case "
                f"cannot be loaded (check it with `yawlflow verify --store URL {case}`)"
            ) from None
        if isinstance(event, TimerFired):
            timers.pop((event.item, event.purpose), None)
        for effect in step.effects:
            if isinstance(effect, ArmTimer):
                timers[(effect.item, effect.purpose)] = event.at_ns + effect.after_ns
            elif isinstance(effect, DisarmTimer):
                timers.pop((effect.item, effect.purpose), None)
            elif isinstance(effect, CaseFinished):
                timers.clear()
    live = state.items
    timers = {key: deadline for key, deadline in timers.items() if key[0] in live}
    return Folded(state, timers, start + len(events), start - 1 if start else -1)


RunnerFor = Callable[[str], tuple[NetRunner, CaseState]]
LoadEvents = Callable[[str], "list[Event] | None"]


class _Sim:
    __slots__ = ("children", "events", "finished", "id", "order", "parent", "pos", "runner", "state")

    def __init__(self, case: str, runner: NetRunner, state: CaseState, events: list[Event], parent: _Sim | None,
                 order: int) -> None:
        self.id = case
        self.runner = runner
        self.state = state
        self.events = events
        self.pos = 0
        self.parent = parent
        self.children: dict[int, _Sim] = {}
        self.finished = False
        self.order = order

    def gated(self) -> bool:
        """Whether its next event must wait for a sub-case to end first."""
        event = self.events[self.pos]
        if isinstance(event, (ItemCompleted, ItemFailed)):
            child = self.children.get(event.item)
            return child is not None and not child.finished
        return False


def tree_trace(root: str, net: str, runner_for: RunnerFor, load_events: LoadEvents,
               marks: dict[str, int]) -> dict[str, list[TraceRecord]]:
    """The traces of a case tree, folded from seq 0: case id -> its records and its sub-cases'.

    Args:
        root: the tree's root case.
        net: its net.
        runner_for: the runner and a blank state of a net of the tree's spec.
        load_events: a case's whole log, or ``None`` when the store has no such case.
        marks: how many events of a case to take (its length when it was resumed); cases not
            named are taken whole.

    A record the runner refuses ends that case's part of the trace (logged); the rest goes on.
    """
    out: dict[str, list[TraceRecord]] = {}
    sims: list[_Sim] = []
    last: list[_Sim | None] = [None]

    def open_sim(case: str, case_net: str, parent: _Sim | None) -> _Sim | None:
        events = load_events(case)
        if events is None:
            return None
        mark = marks.get(case)
        if mark is not None:
            events = events[:mark]
        if not events:
            return None
        runner, blank = runner_for(case_net)
        sim = _Sim(case, runner, blank.fresh(case), events, parent, len(sims))
        sims.append(sim)
        out[case] = []
        return sim

    def emit(sim: _Sim, records: list[TraceRecord]) -> None:
        node: _Sim | None = sim
        while node is not None:
            out[node.id].extend(records)
            node = node.parent

    def apply(sim: _Sim) -> None:
        event = sim.events[sim.pos]
        sim.pos += 1
        try:
            step = sim.runner.handle(sim.state, event)
        except (InvalidEventError, YawlflowError, KeyError, IndexError, ValueError) as exc:
            _log.warning("case %s: record %d does not apply (%s); its trace stops there", sim.id, sim.pos - 1, exc,
                         extra={"case_id": sim.id})
            sim.pos = len(sim.events)
            return
        done = 0
        for effect, position in zip(step.effects, step.positions, strict=True):
            if position > done:
                emit(sim, step.trace[done:position])
                done = position
            if isinstance(effect, StartSubcase):
                child = open_sim(effect.case, effect.net, sim)
                if child is not None:
                    sim.children[effect.item] = child
                    apply(child)
                    # its synchronous drain: what it applied at the same instant, inside this step
                    while (not child.finished and child.pos < len(child.events)
                           and child.events[child.pos].at_ns == event.at_ns and not child.gated()):
                        apply(child)
            elif isinstance(effect, CancelItem):
                child = sim.children.get(effect.item)
                if (child is not None and not child.finished and child.pos < len(child.events)
                        and isinstance(child.events[child.pos], CaseCancelRequested)):
                    apply(child)
            elif isinstance(effect, CaseFinished):
                sim.finished = True
        emit(sim, step.trace[done:])
        last[0] = sim

    top = open_sim(root, net, None)
    if top is None:
        return out
    while True:
        pending = [s for s in sims if s.pos < len(s.events)]
        if not pending:
            break
        ready = [s for s in pending if not s.gated()] or pending  # a missing sub-case's log: go on
        at = min(s.events[s.pos].at_ns for s in ready)
        tied = [s for s in ready if s.events[s.pos].at_ns == at]
        apply(last[0] if last[0] in tied else min(tied, key=lambda s: s.order))
    return out
