"""NetRunner: the sans-I/O heart of yawlflow. Events in; state, effects and trace out.

Theory of operation (ADR 0001 has the why).

* ``handle(state, event)`` applies one event and then *settles* the case: a FIFO worklist of
  tasks whose inputs changed is drained until nothing more can fire. Routing tasks fire and
  complete inside the loop; auto and composite tasks start (their tokens are consumed and a
  ``StartItem`` / ``StartSubcase`` effect is issued); offered, timed and trigger-waiting tasks keep
  exactly ``capacity`` unclaimed items alive (created or withdrawn as the marking moves). Nothing
  recurses and nothing awaits, so a 10,000-task routing sequence is one loop of 10,000 turns.
* Capacity is the kernel's join count (AND: min, XOR: sum — one firing per token, threads: sum//N),
  times the milestone factor; an OR-join asks the :class:`OrJoinOracle`.
* Completion: output mapping into the case data, then the cancellation set (before the task's own
  output tokens), then the split over the updated data, then the new tokens.
* Termination: explicit — the output condition marked ends the case and withdraws the rest; no
  live item and no such token is a deadlock, reported with the stuck tokens. Implicit — no live
  item ends the case, listing the tokens left.
* Determinism: the only inputs are ``state`` and ``event``; iteration is in id order; item ids
  and the trace's ``seq`` are counters in the state. Same events, same states, effects and trace.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import _gates, _mi
from ._cel import CelError, evaluate
from ._compiled import (
    KIND_AUTO,
    KIND_COMPOSITE,
    KIND_EXTERNAL,
    KIND_ROUTING,
    KIND_TIMER,
    SPLIT_AND,
    SPLIT_OR,
    SPLIT_THREADS,
    CompiledNet,
)
from ._effects import ArmTimer, CancelItem, CaseFinished, DisarmTimer, Effect, StartItem, StartSubcase
from ._errors import InvalidEventError, YawlflowInternalError
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
from ._hotpath import (
    FIRE_BUDGET,
    FIRE_EMPTY,
    FIRE_END,
    JOIN_AND,
    JOIN_OR,
    JOIN_PARTIAL,
    JOIN_THREADS,
    JOIN_XOR,
    Marking,
    RoutingProgram,
    Worklist,
    completed_records,
)
from ._orjoin import OrJoinOracle
from ._state import CaseState, ItemRecord

__all__ = ("MAX_FIRINGS_PER_STEP", "NetRunner", "Step", "TraceRecord")

TraceRecord = dict[str, Any]
MAX_FIRINGS_PER_STEP = 5_000_000  # a livelock of routing tasks fails the case instead of hanging


class Step(msgspec.Struct, kw_only=True):
    """The result of one ``handle``: the successor state, the effects, the new trace records.

    ``positions[i]`` is how many of this step's trace records precede ``effects[i]``, so the
    engine can interleave what an effect causes (a sub-case's events) at the right place.
    """

    state: CaseState
    effects: list[Effect]
    trace: list[TraceRecord]
    positions: list[int] = msgspec.field(default_factory=list)


class _Effects(list[Effect]):
    """The step's effects; each append also notes how many trace records precede it."""

    __slots__ = ("_runner",)

    def __init__(self, runner: NetRunner) -> None:
        super().__init__()
        self._runner = runner

    def append(self, effect: Effect) -> None:
        self._runner._positions.append(len(self._runner._trace))
        super().append(effect)


class _CaseEnded(Exception):
    """Unwinds the settle loop once the case has ended."""


class NetRunner:
    """Runs one compiled net: a pure function from (state, event) to the next step.

    Args:
        net: the compiled net.
    """

    def __init__(self, net: CompiledNet) -> None:
        self.net = net
        self._oracle = OrJoinOracle(net)
        n_places = net.n_places
        watch_place: list[set[int]] = [set(net.consumers[p]) for p in range(n_places)]
        watch_busy: list[set[int]] = [set() for _ in range(net.n_tasks)]
        for t, places in enumerate(net.milestone):
            for p in places:
                watch_place[p].add(t)
        for t, regions in net.orjoin_regions.items():
            for _p, r in regions:
                for p in net.region_places_of[r]:
                    watch_place[p].add(t)
                for u in net.region_tasks_of[r]:
                    watch_busy[u].add(t)
        self._watch_busy = tuple(tuple(sorted(w)) for w in watch_busy)
        self._triggered = {t for t, spec in enumerate(net.tasks) if spec.trigger is not None}
        self._explicit = net.spec.termination == "explicit"
        self._cancels = tuple(bool(net.cancel_places[t] or net.cancel_tasks[t]) for t in range(net.n_tasks))
        self._at_once = tuple(
            (k in (KIND_ROUTING, KIND_AUTO, KIND_COMPOSITE) or net.tasks[t].instances is not None)
            and t not in self._triggered
            for t, k in enumerate(net.kind)
        )
        # Mutex regions: a region's internal places (all producers and consumers inside it) hold
        # threads that are inside; a task with no internal input *enters* the region.
        self._internal: dict[tuple[str, int], tuple[int, ...]] = {}
        entering: set[tuple[int, str, int]] = set()
        for mname, mregions in net.mutex_regions.items():
            for ri, region in enumerate(mregions):
                members = set(region)
                internal = tuple(
                    p for p in range(n_places)
                    if net.producers[p] and set(net.producers[p]) <= members and set(net.consumers[p]) <= members
                )
                self._internal[(mname, ri)] = internal
                for u in region:
                    if not any(p in internal for p in net.preset[u]):
                        entering.add((u, mname, ri))
                for p in internal:
                    for other in net.mutex_regions[mname]:
                        watch_place[p].update(other)
        self._entering = frozenset(entering)
        self._watch_place = tuple(tuple(sorted(w)) for w in watch_place)
        # Plain routing tasks skip the work-item machinery: no loop, instances, output mapping,
        # trigger or mutex to honour, so firing is consume, record, route.
        self._plain = tuple(
            k == KIND_ROUTING and t not in self._triggered and not net.mutex_of[t]
            and (spec := net.tasks[t]).loop is None and spec.instances is None and spec.output is None
            for t, k in enumerate(net.kind)
        )
        # Plain auto tasks start without the general machinery too: no instances, loop, mutex,
        # trigger, timer, timeout or input mapping; and "quiet" tasks have nobody watching their
        # busy count (no OR-join region, no mutex peer), so starting one touches no other task.
        self._plain_auto = tuple(
            k == KIND_AUTO and t not in self._triggered and not net.mutex_of[t]
            and (spec := net.tasks[t]).loop is None and spec.instances is None and spec.input is None
            and spec.timer is None and spec.timeout_ns is None and net.join[t] != JOIN_PARTIAL
            for t, k in enumerate(net.kind)
        )
        self._mutex_peers = tuple(
            tuple(sorted({u for name, _r in net.mutex_of[t] for region in net.mutex_regions[name] for u in region}))
            for t in range(net.n_tasks)
        )
        self._quiet = tuple(not self._watch_busy[t] and not self._mutex_peers[t] for t in range(net.n_tasks))
        self._reached_end = False
        # Per-step scratch, reset by ``handle``; kept on self so the hot loop avoids closures.
        self._s: CaseState
        self._effects: list[Effect] = []
        self._trace: list[TraceRecord] = []
        self._positions: list[int] = []
        self._worklist = Worklist(net.n_tasks)
        self._touch = self._worklist.touch  # queue a task to look at again (at most once)
        self._program = self._routing_program()
        self._mi_opening: set[int] = set()

    def _routing_program(self) -> RoutingProgram:
        """The tasks the batch kernel fires on its own, and what each produces.

        A task qualifies when firing it is nothing but its join and a fixed production: a plain
        routing task (no trigger, mutex, loop, instances or output mapping) with an AND, XOR or
        thread-merge join on distinct inputs, no milestone, no cancellation set and nothing to
        force-complete, whose split does not depend on the data (an AND or thread split; an XOR
        split whose first non-default flow has no condition; an OR split without conditions).
        """
        net = self.net
        simple: list[bool] = []
        posts: list[list[tuple[int, int]]] = []
        for t in range(net.n_tasks):
            post = self._static_post(t)
            ok = (
                post is not None and self._plain[t] and not net.milestone[t] and not self._cancels[t]
                and not net.cancel_case[t] and not net.tasks[t].completes
                and len(set(net.preset[t])) == len(net.preset[t])
                and (net.join[t] in (JOIN_AND, JOIN_XOR) or (net.join[t] == JOIN_THREADS and net.join_n[t] >= 1))
            )
            simple.append(ok)
            posts.append(post if ok and post is not None else [])
        post_ptr = [0]
        for post in posts:
            post_ptr.append(post_ptr[-1] + len(post))
        watch_ptr = [0]
        for watchers in self._watch_place:
            watch_ptr.append(watch_ptr[-1] + len(watchers))
        return RoutingProgram(
            net.kernel, simple=simple, post_ptr=post_ptr,
            post_idx=[p for post in posts for p, _n in post], post_n=[n for post in posts for _p, n in post],
            watch_ptr=watch_ptr, watch_idx=[u for watchers in self._watch_place for u in watchers],
            end_place=1 if self._explicit else -1,
        )

    def _static_post(self, t: int) -> list[tuple[int, int]] | None:
        """The tokens task ``t``'s split produces whatever the data, as ``_route`` would put them;
        ``None`` if a condition decides (or the split has no flow to take)."""
        net = self.net
        split = net.split[t]
        flows = net.flows[t]
        if split in (SPLIT_AND, SPLIT_THREADS):
            return [(f.place, net.split_n[t]) for f in flows]
        conditional = [f for f in flows if not f.default]
        default = next((f for f in flows if f.default), None)
        if split == SPLIT_OR:
            if any(f.when is not None for f in conditional):
                return None
            chosen = conditional or ([default] if default is not None else [])
        elif conditional:
            chosen = [conditional[0]] if conditional[0].when is None else []
            if not chosen:
                return None
        else:
            chosen = [default] if default is not None else []
        return [(f.place, 1) for f in chosen] or None

    # -- public --------------------------------------------------------------------------------
    def initial_state(self, event: CaseStarted) -> CaseState:
        """A fresh state for ``event`` (not yet handled)."""
        return CaseState(
            case=event.case, net=self.net.name, marking=Marking(self.net.kernel), data={},
            seed=event.seed, flags=event.flags, n_tasks=self.net.n_tasks,
        )

    def start(self, event: CaseStarted) -> Step:
        """Start a case: ``handle(initial_state(event), event)``."""
        return self.handle(self.initial_state(event), event)

    def handle(self, state: CaseState, event: Event) -> Step:
        """Apply ``event`` to ``state`` and settle the case.

        Pure: no await, no clock, no randomness. The same (state, event) gives the same Step.
        ``state`` is consumed (mutated into the successor, which is returned).

        Raises:
            InvalidEventError: the event does not fit the state (e.g. completing a withdrawn
                item); the state is left unchanged.
        """
        self._s = state
        self._effects = _Effects(self)
        self._trace = []
        self._positions = []
        self._reached_end = False
        if state.status != "running" and not isinstance(event, CaseStarted):
            raise InvalidEventError(f"case {state.case!r} is {state.status}: it takes no more events")
        self._check(state, event)
        try:
            self._apply(state, event)
            self._settle(state)
        except _CaseEnded:
            self._worklist.clear()
        step = Step(state=state, effects=self._effects, trace=self._trace, positions=self._positions)
        return step

    # -- validation of API events (before anything changes) ------------------------------------
    def _live(self, state: CaseState, item_id: int) -> ItemRecord:
        item = state.items.get(item_id)
        if item is None:
            raise InvalidEventError(
                f"case {state.case!r}: no live item {item_id} (it was never created, or it is already "
                f"completed, withdrawn or failed): list live items with case.work_items()"
            )
        return item

    def _check(self, state: CaseState, event: Event) -> None:
        if isinstance(event, ItemStarted):
            item = self._live(state, event.item)
            self._not_suspended(state, item)
            if item.state != "offered":
                raise InvalidEventError(
                    f"case {state.case!r}: item {item.id} ({item.task!r}) is {item.state}, not offered: "
                    "only offered items can be started"
                )
        elif isinstance(event, ItemCompleted):
            item = self._live(state, event.item)
            if self.net.kind[item.tid] == KIND_EXTERNAL:  # a person's or system's call, not a handler's
                self._not_suspended(state, item)
            if item.state == "enabled":
                raise InvalidEventError(
                    f"case {state.case!r}: item {item.id} ({item.task!r}) is enabled, not offered or started: "
                    "it waits for its trigger or timer"
                )
        elif isinstance(event, ItemFailed):
            item = self._live(state, event.item)
            if not item.busy:
                raise InvalidEventError(
                    f"case {state.case!r}: item {item.id} ({item.task!r}) is {item.state}, not running: "
                    "only a started item can fail"
                )
        elif isinstance(event, ItemCancelRequested):
            self._live(state, event.item)
        elif isinstance(event, (InstanceAdded, ForceCompleteRequested)):
            _mi.check(self, state, event)
        elif isinstance(event, SignalForwarded) and not state.signals.get(event.signal):
            raise InvalidEventError(f"case {state.case!r} keeps no signal {event.signal!r} to forward")
        elif isinstance(event, TimerFired):
            self._live(state, event.item)
        elif isinstance(event, (SignalReceived, InstanceAdded, ForceCompleteRequested)) and state.suspended:
            self._not_suspended(state, None)
        elif isinstance(event, CaseSuspended) and state.suspended:
            raise InvalidEventError(f"case {state.case!r} is already suspended")
        elif isinstance(event, CaseResumed) and not state.suspended:
            raise InvalidEventError(f"case {state.case!r} is not suspended: there is nothing to resume")
        elif isinstance(event, ItemSuspended):
            item = self._live(state, event.item)
            if state.paused is not None and item.id in state.paused:
                raise InvalidEventError(f"case {state.case!r}: item {item.id} ({item.task!r}) is already suspended")
            if item.busy and self.net.kind[item.tid] != KIND_EXTERNAL:
                raise InvalidEventError(
                    f"case {state.case!r}: item {item.id} ({item.task!r}) is running its "
                    f"{'sub-case' if self.net.kind[item.tid] == KIND_COMPOSITE else 'handler'}: it cannot be "
                    "suspended (suspend the whole case, or halt the item with cancel_item)"
                )
        elif isinstance(event, ItemResumed):
            item = self._live(state, event.item)
            if state.paused is None or item.id not in state.paused:
                raise InvalidEventError(f"case {state.case!r}: item {item.id} ({item.task!r}) is not suspended")

    @staticmethod
    def _not_suspended(state: CaseState, item: ItemRecord | None) -> None:
        if state.suspended:
            raise InvalidEventError(f"case {state.case!r} is suspended: it takes this call once resumed "
                                    "(case.resume())")
        if item is not None and state.paused is not None and item.id in state.paused:
            raise InvalidEventError(f"case {state.case!r}: item {item.id} ({item.task!r}) is suspended: "
                                    f"resume it first (case.resume_item({item.id}))")

    # -- events --------------------------------------------------------------------------------
    def _apply(self, s: CaseState, event: Event) -> None:
        key = getattr(event, "key", None)
        if key is not None:  # an API call with an idempotency key: a repeat is answered from here
            if s.keys is None:
                s.keys = {}
            s.keys[key] = fingerprint(event)
        if isinstance(event, ItemCompleted):
            item = s.items[event.item]
            if item.state == "offered":
                self._start_offered(s, item, event.at_ns)
            self._complete_item(s, item, event.output)
        elif isinstance(event, ItemStarted):
            self._start_offered(s, s.items[event.item], event.at_ns)
        elif isinstance(event, CaseStarted):
            s.case, s.seed, s.flags = event.case, event.seed, event.flags
            s.data = dict(event.data)
            self._record("case.started", data=dict(event.data))
            self._mark(0, 1)
        elif isinstance(event, ItemFailed):
            self._fail_item(s, s.items[event.item], event)
        elif isinstance(event, ItemCancelRequested):
            self._cancel_request(s, s.items[event.item])
        elif isinstance(event, SignalReceived):
            self._signal(s, event)
        elif isinstance(event, SignalForwarded):
            s.signals[event.signal] -= 1
            if not s.signals[event.signal]:
                del s.signals[event.signal]
        elif isinstance(event, TimerFired):
            if event.purpose == "timeout":
                self._timed_out(s, s.items[event.item], event.at_ns)
            else:
                self._timer(s, s.items[event.item], event.at_ns)
        elif isinstance(event, InstanceAdded):
            _mi.add_instance(self, s, event)
        elif isinstance(event, ForceCompleteRequested):
            _mi.force_complete(self, s, self.net.task_ids[event.task])
        elif isinstance(event, CaseCancelRequested):
            self._withdraw_all(s)
            self._finish(s, "cancelled", None)
        elif isinstance(event, (CaseSuspended, CaseResumed)):
            s.suspended = isinstance(event, CaseSuspended)  # the engine holds what would start meanwhile
        elif isinstance(event, ItemSuspended):
            if s.paused is None:
                s.paused = set()
            s.paused.add(event.item)
        elif isinstance(event, ItemResumed):
            if s.paused is not None:
                s.paused.discard(event.item)
                if not s.paused:
                    s.paused = None
        else:  # pragma: no cover
            raise YawlflowInternalError(f"unknown event {event!r}: this is a bug; please report it")

    # -- trace and bookkeeping -----------------------------------------------------------------
    def _record(self, kind: str, *, task: str | None = None, item: int | None = None,
                instance: int | None = None, data: Any = None) -> None:
        s = self._s
        self._trace.append({
            "seq": s.seq, "case": s.case, "event": kind, "task": task, "item": item,
            "instance": instance, "net": s.net, "data": data,
        })
        s.seq += 1

    def _rec(self, kind: str, item: ItemRecord, data: Any = None) -> None:
        s = self._s
        self._trace.append({
            "seq": s.seq, "case": s.case, "event": kind, "task": item.task, "item": item.id,
            "instance": item.instance, "net": s.net, "data": data,
        })
        s.seq += 1

    def _mark(self, p: int, n: int) -> None:
        s = self._s
        s.marking.add(p, n)
        for t in self._watch_place[p]:
            self._touch(t)
        if p == 1 and self._explicit:
            self._reached_end = True

    def _changed(self, places: list[int]) -> None:
        for p in places:
            for t in self._watch_place[p]:
                self._touch(t)

    def _lost(self, places: list[int]) -> None:
        """Tokens left ``places``: withdraw now the unclaimed items they stood for.

        Done at once, not in the settle loop, so a deferred choice's losers and a cancellation's
        victims are withdrawn in the trace right after their cause (WCP-16, WCP-25).
        """
        s = self._s
        self._changed(places)
        for p in places:
            for u in self.net.consumers[p]:
                waiting = s.waiting.get(u)
                if waiting and len(waiting) > self._capacity(s, u):
                    while len(waiting) > self._capacity(s, u):
                        self._withdraw(s, s.items[waiting[-1]])

    def _busy(self, t: int, n: int) -> None:
        s = self._s
        s.marking.busy_add(t, n)
        for u in self._watch_busy[t]:
            self._touch(u)
        for u in self._mutex_peers[t]:  # a thread left or entered a region: its peers look again
            self._touch(u)

    def _new_item(self, s: CaseState, t: int, state: str) -> ItemRecord:
        item = ItemRecord(id=s.next_item, tid=t, task=self.net.task_names[t], net=s.net, state=state)  # type: ignore[arg-type]
        s.next_item += 1
        return item

    # -- settling ------------------------------------------------------------------------------
    def _capacity(self, s: CaseState, t: int) -> int:
        """How many times task ``t`` may fire now: its join, times its milestone and mutexes."""
        net = self.net
        for p in net.milestone[t]:  # WCP-18: only *while* the milestone holds
            if not s.marking.get(p):
                return 0
        if s.mi and t in s.mi:  # an MI task is not enabled again until its instances finish
            return 0
        if net.mutex_of[t] and _gates.mutex_blocked(self, s, t):
            return 0
        join = net.join[t]
        if join == JOIN_OR:
            return 1 if self._oracle.may_fire(s.marking, t) else 0
        if join == JOIN_PARTIAL:
            js = s.joins.get(t)
            return js.ready if js is not None else 0
        return s.marking.capacity(t)

    def _consume(self, s: CaseState, t: int) -> list[int]:
        """Take the tokens of one firing of ``t``; return the places that changed."""
        if self.net.join[t] == JOIN_PARTIAL:
            js = s.joins[t]
            js.ready -= 1
            if not (js.ready or js.arrived or js.fired):
                del s.joins[t]
            return []
        return s.marking.consume(t)

    def _settle(self, s: CaseState) -> None:
        worklist = self._worklist
        program = self._program
        fire_routing = s.marking.fire_routing
        budget = MAX_FIRINGS_PER_STEP
        at_once = self._at_once
        plain = self._plain
        plain_auto = self._plain_auto
        names = self.net.task_names
        joins = self.net.join
        while True:
            while True:
                # The batch kernel fires the run of simple routing tasks at the head of the
                # worklist and hands back the first task it does not fire itself.
                fired, why, t = fire_routing(program, worklist, budget)
                if fired:
                    n = len(fired)
                    budget -= n
                    completed_records(self._trace, fired, names, s.case, s.net, s.seq, s.next_item)
                    s.seq += n
                    s.next_item += n
                if why == FIRE_EMPTY:
                    break
                if why == FIRE_END:
                    self._reached_end = True
                    break
                if why == FIRE_BUDGET:
                    self._over_budget(s, t)
                if joins[t] == JOIN_PARTIAL:
                    _gates.absorb(self, s, t)
                if at_once[t]:
                    while self._capacity(s, t) > 0:
                        budget -= 1
                        if budget < 0:
                            self._over_budget(s, t)
                        if plain[t]:  # a plain routing task: fire and complete, nothing else to set up
                            self._changed(self._consume(s, t))
                            item_id = s.next_item
                            s.next_item = item_id + 1
                            self._record("item.completed", task=names[t], item=item_id)
                            self._route(s, t, None, None)
                        elif plain_auto[t]:
                            self._start_auto(s, t)
                        else:
                            self._fire(s, t, self._consume(s, t))
                else:
                    self._mirror(s, t)
                if self._reached_end:
                    break
            if self._reached_end or not s.mutex or not _gates.release_mutexes(self, s):
                break
        if self._reached_end:  # WCP-43: the output condition ends the case; the rest is withdrawn
            self._withdraw_all(s)
            self._finish(s, "completed", None)
        self._check_end(s)

    def _over_budget(self, s: CaseState, t: int) -> None:
        self._fail_case(s, f"task {self.net.task_names[t]!r} fired {MAX_FIRINGS_PER_STEP} times in one step: a loop "
                        "of routing tasks never waits (add a condition that becomes false, or an external task)")

    def _mirror(self, s: CaseState, t: int) -> None:
        """Keep exactly ``capacity`` unclaimed items of task ``t`` alive."""
        cap = self._capacity(s, t)
        waiting = s.waiting.get(t)
        if waiting is None:
            if not cap:
                return
            waiting = s.waiting[t] = []
        while len(waiting) < cap:
            kind = self.net.kind[t]
            spec = self.net.tasks[t]
            if spec.loop is not None and self._loop_skips(s, t):
                self._fire(s, t, self._consume(s, t))  # `while` false at the start: like routing
                cap = self._capacity(s, t)
                continue
            waits = t in self._triggered or kind == KIND_TIMER
            item = self._new_item(s, t, "enabled" if waits else "offered")
            s.items[item.id] = item
            waiting.append(item.id)
            self._rec("item.enabled", item)
            if not waits:
                self._rec("item.offered", item)
            if spec.timer is not None:
                self._effects.append(ArmTimer(item=item.id, after_ns=spec.timer.after_ns))
            trig = spec.trigger
            if trig is not None and trig.persistent and s.signals.get(trig.signal, 0) > 0:
                s.signals[trig.signal] -= 1
                if not s.signals[trig.signal]:
                    del s.signals[trig.signal]
                self._trigger(s, item)
                return  # the trigger consumed tokens: re-evaluate from scratch
        while len(waiting) > cap:
            item = s.items[waiting[-1]]
            self._withdraw(s, item)

    def _check_end(self, s: CaseState) -> None:
        if s.status != "running" or s.items:
            return
        if self.net.spec.termination == "implicit":
            self._finish(s, "completed", None)
            return
        stuck = ", ".join(f"{self.net.place_names[p]} ({s.marking.get(p)})" for p in s.marking.marked())
        self._fail_case(
            s,
            f"deadlock in net {s.net!r}: nothing is enabled or running and the output condition is not "
            f"marked; tokens are stuck in: {stuck or 'no place (every token was consumed or cancelled)'}",
        )

    # -- firing and completing -----------------------------------------------------------------
    def _input_for(self, s: CaseState, t: int) -> dict[str, Any]:
        mapping = self.net.tasks[t].input
        if mapping is None:
            return dict(s.data)
        out: dict[str, Any] = {}
        for key, expr in mapping.items():
            out[key] = self._eval(s, expr, s.data, f"tasks.{self.net.task_names[t]}.input.{key}")
        return out

    def _start_auto(self, s: CaseState, t: int) -> None:
        """Fire a plain auto task once and start its item: what ``_fire`` and ``_begin`` do for
        it, in one call (the runner's most frequent step after routing)."""
        watch = self._watch_place
        touch = self._touch
        for p in s.marking.consume(t):
            for u in watch[p]:
                touch(u)
        item_id = s.next_item
        s.next_item = item_id + 1
        name = self.net.task_names[t]
        item = ItemRecord(id=item_id, tid=t, task=name, net=s.net, state="started")
        item.claimed = True
        item.busy = True
        s.items[item_id] = item
        trace = self._trace
        seq = s.seq
        case, net = s.case, s.net
        trace.append({"seq": seq, "case": case, "event": "item.enabled", "task": name, "item": item_id,
                      "instance": None, "net": net, "data": None})
        trace.append({"seq": seq + 1, "case": case, "event": "item.started", "task": name, "item": item_id,
                      "instance": None, "net": net, "data": None})
        s.seq = seq + 2
        data = item.data = dict(s.data)
        if self._quiet[t]:
            s.marking.busy_add(t, 1)
        else:
            self._busy(t, 1)
        self._effects.append(
            StartItem(item=item_id, task=name, net=net, input=data, attempt=1, key=f"{case}/{item_id}")
        )

    def _fire(self, s: CaseState, t: int, consumed: list[int]) -> None:
        """Fire task ``t`` once; its tokens are already consumed (``consumed`` places changed)."""
        self._changed(consumed)
        if self.net.mutex_of[t]:
            _gates.enter(self, s, t)
        item = self._new_item(s, t, "started")
        item.claimed = True
        spec = self.net.tasks[t]
        if spec.instances is not None:
            _mi.start(self, s, t, item)
            return
        if spec.loop is not None and self._loop_skips(s, t):
            self._rec("item.completed", item)  # WCP-21: zero iterations
            self._route(s, t, item, None)
            return
        self._begin(s, item, announced=False)

    def _begin(self, s: CaseState, item: ItemRecord, *, announced: bool,
               extra: dict[str, Any] | None = None) -> None:
        """Begin a claimed item (or a loop's next iteration).

        Routing completes at once; auto and composite items start (``StartItem``/``StartSubcase``);
        an offered or timed task's later loop iteration is offered (or armed) again.
        """
        t = item.tid
        spec = self.net.tasks[t]
        kind = self.net.kind[t]
        if kind == KIND_ROUTING:
            if spec.output is not None:
                self._merge_output(s, t, None)  # a routing task may still map case data
            self._rec("item.completed", item)
            self._route(s, t, item, None)
            return
        s.items[item.id] = item
        if not announced:
            self._rec("item.enabled", item)
        if kind == KIND_EXTERNAL:
            item.state = "offered"
            item.extra = extra or None
            self._rec("item.offered", item)
            return
        if kind == KIND_TIMER:
            item.state = "enabled"
            if spec.timer is None:  # pragma: no cover
                raise YawlflowInternalError("spec.timer is unset: this is a bug; please report it")
            self._effects.append(ArmTimer(item=item.id, after_ns=spec.timer.after_ns))
            return
        item.state = "started"
        item.data = self._input_for(s, t)
        if extra:
            item.data.update(extra)
        item.busy = True
        self._busy(t, 1)
        self._rec("item.started", item)
        if kind == KIND_AUTO:
            self._effects.append(StartItem(item=item.id, task=item.task, net=s.net, input=item.data,
                                           attempt=item.attempt, key=f"{s.case}/{item.id}"))
        else:
            self._arm_timeout(item)
            if spec.net is None:  # pragma: no cover
                raise YawlflowInternalError("spec.net is unset: this is a bug; please report it")
            self._effects.append(StartSubcase(item=item.id, task=item.task, net=spec.net,
                                              case=f"{s.case}/{item.id}", data=item.data))

    def _claim(self, s: CaseState, item: ItemRecord) -> list[int]:
        """Consume the tokens an unclaimed item stands for; return the places that lost tokens.

        The caller records the item's own event, then passes the places to :meth:`_lost`, so a
        deferred choice's losers are withdrawn right after the winner's start (WCP-16).
        """
        if item.claimed:
            return []
        s.waiting[item.tid].remove(item.id)
        item.claimed = True
        if self.net.mutex_of[item.tid]:
            _gates.enter(self, s, item.tid)
        return self._consume(s, item.tid)

    def _start_offered(self, s: CaseState, item: ItemRecord, at_ns: int) -> None:
        """An offered item is started through the API."""
        lost = self._claim(s, item)
        item.state = "started"
        item.first_at_ns = at_ns
        item.data = self._input_for(s, item.tid)
        if item.extra:
            item.data.update(item.extra)  # an instance's `item` (and add_instance data)
        self._arm_timeout(item)
        item.busy = True
        self._busy(item.tid, 1)
        self._rec("item.started", item)
        self._lost(lost)

    def _trigger(self, s: CaseState, item: ItemRecord) -> None:
        """The trigger of a waiting item arrived: claim it and let it run as its kind says."""
        lost = self._claim(s, item)
        kind = self.net.kind[item.tid]
        if kind == KIND_EXTERNAL:
            item.state = "offered"
            self._rec("item.offered", item)
        elif kind != KIND_TIMER:  # a timed task with a trigger: its timer still decides
            del s.items[item.id]
            self._begin(s, item, announced=True)
        self._lost(lost)

    def _loop_skips(self, s: CaseState, t: int) -> bool:
        loop = self.net.tasks[t].loop
        return loop is not None and loop.while_ is not None and not self._truthy(
            s, loop.while_, f"tasks.{self.net.task_names[t]}.loop.while"
        )

    def _complete_item(self, s: CaseState, item: ItemRecord, output: dict[str, Any] | None) -> None:
        t = item.tid
        if self._plain_auto[t] and item.instance is None and self.net.tasks[t].output is None:
            if output:
                s.data.update(output)
            del s.items[item.id]
            if item.busy:
                item.busy = False
                if self._quiet[t]:
                    s.marking.busy_add(t, -1)
                else:
                    self._busy(t, -1)
            item.state = "completed"
            self._rec("item.completed", item, data=output)
            self._route(s, t, item, output)
            return
        spec = self.net.tasks[t]
        if spec.timer is not None:
            self._effects.append(DisarmTimer(item=item.id))
        self._disarm_timeout(item)
        if item.instance is not None:
            _mi.instance_completed(self, s, item, output)
            return
        self._merge_output(s, t, output)
        del s.items[item.id]
        if item.busy:
            item.busy = False
            self._busy(t, -1)
        item.state = "completed"
        self._rec("item.completed", item, data=output)
        loop = spec.loop
        if loop is not None:
            where = f"tasks.{spec.name}.loop"
            again = (self._truthy(s, loop.while_, where + ".while") if loop.while_ is not None
                     else not self._truthy(s, loop.until or "true", where + ".until"))
            if again:
                nxt = self._new_item(s, t, "started")
                nxt.claimed = True
                self._begin(s, nxt, announced=False)
                return
        self._route(s, t, item, output)

    def _merge_output(self, s: CaseState, t: int, output: dict[str, Any] | None) -> None:
        spec = self.net.tasks[t]
        if spec.output is None:
            if output:
                s.data.update(output)
            return
        scope = {**s.data, **(output or {})}
        for key, expr in spec.output.items():
            s.data[key] = self._eval(s, expr, scope, f"tasks.{spec.name}.output.{key}")

    def _route(self, s: CaseState, t: int, item: ItemRecord | None, output: dict[str, Any] | None) -> None:
        """The task completed: apply its cancellation set, then its split."""
        net = self.net
        if net.cancel_case[t]:
            self._withdraw_all(s)
            self._finish(s, "cancelled", None)
        for u in net.cancel_tasks[t]:
            if u in s.mi:  # WCP-26: the MI task is withdrawn, not completed
                _mi.withdraw_group(self, s, u)
            for other in [s.items[i] for i in list(s.items) if s.items[i].tid == u]:
                self._withdraw(s, other)
        for name in net.tasks[t].completes:  # WCP-27: force-complete these MI tasks
            _mi.force_complete(self, s, net.task_ids[name])
        if self._cancels[t]:
            self._lost(s.marking.cancel(t))
        split = net.split[t]
        flows = net.flows[t]
        if split in (SPLIT_AND, SPLIT_THREADS):
            n = net.split_n[t]
            for f in flows:
                self._mark(f.place, n)
            return
        taken = False
        default = None
        for f in flows:
            if f.default:
                default = f
                continue
            if f.when is None or self._truthy(s, f.when, f"tasks.{net.task_names[t]}.flows[to={f.to}].when"):
                self._mark(f.place, 1)
                taken = True
                if split != SPLIT_OR:
                    return
        if not taken:
            if default is not None:
                self._mark(default.place, 1)
                return
            self._fail_case(
                s,
                f"$.nets.{s.net}.tasks.{net.task_names[t]}: no flow of its {'or' if split == SPLIT_OR else 'xor'} "
                "split was true and it has no default flow (add `default: true` to one flow)",
            )

    # -- withdrawing, failing, cancelling ------------------------------------------------------
    def _withdraw(self, s: CaseState, item: ItemRecord) -> None:
        """Withdraw a live item: unclaimed ones just vanish; started ones are halted."""
        t = item.tid
        del s.items[item.id]
        if not item.claimed:
            s.waiting[t].remove(item.id)
        spec = self.net.tasks[t]
        if spec.timer is not None:
            self._effects.append(DisarmTimer(item=item.id))
        self._disarm_timeout(item)
        if item.busy:
            item.busy = False
            self._busy(t, -1)
            if self.net.kind[t] in (KIND_AUTO, KIND_COMPOSITE):
                self._effects.append(CancelItem(item=item.id))
        item.state = "cancelled"
        self._rec("item.cancelled", item)
        if item.instance is not None:
            _mi.instance_ended(self, s, item, None, ok=False)

    def _withdraw_all(self, s: CaseState) -> None:
        for t in sorted(s.mi):
            _mi.withdraw_group(self, s, t)
        for item_id in list(s.items):
            item = s.items.get(item_id)
            if item is not None:
                self._withdraw(s, item)

    def _cancel_request(self, s: CaseState, item: ItemRecord) -> None:
        # Withdrawing an offered item removes the token it stands for (in a deferred choice,
        # every alternative goes with it, since they share it).
        lost = self._claim(s, item)
        self._withdraw(s, item)
        self._lost(lost)

    def _fail_item(self, s: CaseState, item: ItemRecord, event: ItemFailed) -> None:
        t = item.tid
        spec = self.net.tasks[t]
        retry = spec.retry
        info = {"attempt": item.attempt, "error": event.error}
        if retry is not None and self.net.kind[t] == KIND_AUTO and item.attempt < retry.attempts and (
            (event.retryable and not retry.on) or event.error_type in retry.on
        ) and (retry.deadline_ns is None or event.at_ns - item.first_at_ns < retry.deadline_ns):
            self._rec("item.retried", item, data=info)
            item.attempt += 1
            if item.data is None:  # pragma: no cover
                raise YawlflowInternalError("item.data is unset: this is a bug; please report it")
            self._effects.append(StartItem(item=item.id, task=item.task, net=s.net, input=item.data,
                                           attempt=item.attempt, key=f"{s.case}/{item.id}"))
            return
        del s.items[item.id]
        self._disarm_timeout(item)
        if item.busy:
            item.busy = False
            self._busy(t, -1)
            if self.net.kind[t] == KIND_COMPOSITE:
                self._effects.append(CancelItem(item=item.id))  # a timed-out sub-case is halted
        item.state = "failed"
        self._rec("item.failed", item, data=info)
        if item.instance is not None and not spec.critical:
            _mi.instance_ended(self, s, item, None, ok=False)
            return
        if not spec.critical:
            self._route(s, t, item, None)
            return
        self._fail_case(s, f"task {item.task!r} (item {item.id}) failed: {event.error}")

    def _signal(self, s: CaseState, event: SignalReceived) -> None:
        """WCP-23/24: a transient signal reaches every task waiting now, else is lost; a persistent
        one is consumed by the first task waiting (in id order), else kept until one waits."""
        if event.data:
            s.data.update(event.data)
        self._record("signal.received", data={"signal": event.signal, "data": event.data})
        transient, persistent = self._waiters(s, event.signal)
        if event.persistent:
            if persistent:
                self._trigger(s, persistent[0])
            elif event.keep or self.keeps(event.signal):
                s.signals[event.signal] = s.signals.get(event.signal, 0) + 1
        for item in transient:
            if item.id in s.items and not item.claimed and self._capacity(s, item.tid) > 0:
                self._trigger(s, item)

    def _waiters(self, s: CaseState, signal: str) -> tuple[list[ItemRecord], list[ItemRecord]]:
        transient: list[ItemRecord] = []
        persistent: list[ItemRecord] = []
        for t in sorted(self._triggered):
            trig = self.net.tasks[t].trigger
            if trig is None:  # pragma: no cover
                raise YawlflowInternalError("trig is unset: this is a bug; please report it")
            if trig.signal == signal and s.waiting.get(t):
                (persistent if trig.persistent else transient).append(s.items[s.waiting[t][0]])
        return transient, persistent

    def waiting_for(self, state: CaseState, signal: str) -> tuple[bool, bool]:
        """Whether a transient, and whether a persistent, trigger task waits for ``signal`` now."""
        transient, persistent = self._waiters(state, signal)
        return bool(transient), bool(persistent)

    def keeps(self, signal: str) -> bool:
        """Whether this net has a persistent trigger for ``signal`` (so it may keep one)."""
        return any(
            (trig := self.net.tasks[t].trigger) is not None and trig.persistent and trig.signal == signal
            for t in self._triggered
        )

    def _arm_timeout(self, item: ItemRecord) -> None:
        timeout = self.net.tasks[item.tid].timeout_ns
        if timeout is not None:
            self._effects.append(ArmTimer(item=item.id, after_ns=timeout, purpose="timeout"))

    def _disarm_timeout(self, item: ItemRecord) -> None:
        if self.net.tasks[item.tid].timeout_ns is not None and item.busy and self.net.kind[item.tid] != KIND_AUTO:
            self._effects.append(DisarmTimer(item=item.id, purpose="timeout"))

    def _timed_out(self, s: CaseState, item: ItemRecord, at_ns: int) -> None:
        """An external or composite item ran past its task's ``timeout``: it fails."""
        timeout = self.net.tasks[item.tid].timeout_ns or 0
        error = f"TimeoutError: task {item.task!r} timed out after {timeout / 1e9:g}s"
        self._fail_item(s, item, ItemFailed(item=item.id, error=error, error_type="TimeoutError", at_ns=at_ns))

    def _timer(self, s: CaseState, item: ItemRecord, at_ns: int) -> None:
        """The item's timer expired: it completes now (a deferred choice against the timeout)."""
        lost = self._claim(s, item)
        if item.state != "started":
            item.state = "started"
            item.first_at_ns = at_ns
            self._rec("item.started", item)
        elif item.busy and self.net.kind[item.tid] in (KIND_AUTO, KIND_COMPOSITE):
            self._effects.append(CancelItem(item=item.id))
        self._lost(lost)
        self._complete_item(s, item, None)

    def _fail_case(self, s: CaseState, error: str) -> None:
        self._withdraw_all(s)
        s.error = error
        self._finish(s, "failed", error)

    def _finish(self, s: CaseState, status: str, error: str | None) -> None:
        s.status = status
        if status == "completed":
            data: Any = dict(s.data)
            left = {self.net.place_names[p]: s.marking.get(p) for p in s.marking.marked() if p != 1}
            if self.net.spec.termination == "implicit" and left:
                data["_tokens"] = left
            self._record("case.completed", data=data)
        elif status == "failed":
            self._record("case.failed", data={"error": error})
        else:
            self._record("case.cancelled")
        self._effects.append(CaseFinished(status=status, data=dict(s.data), error=error))
        raise _CaseEnded

    # -- expressions -----------------------------------------------------------------------------
    def _eval(self, s: CaseState, expr: str, scope: dict[str, Any], where: str) -> Any:
        try:
            return evaluate(expr, scope)
        except CelError as exc:
            self._fail_case(s, f"$.nets.{s.net}.{where}: CEL expression {expr!r} failed: {exc}")
            raise YawlflowInternalError("unreachable") from None  # pragma: no cover

    def _truthy(self, s: CaseState, expr: str, where: str) -> bool:
        return self._truthy_in(s, expr, s.data, where)

    def _truthy_in(self, s: CaseState, expr: str, scope: dict[str, Any], where: str) -> bool:
        value = self._eval(s, expr, scope, where)
        if not isinstance(value, bool):
            self._fail_case(s, f"$.nets.{s.net}.{where}: CEL expression {expr!r} gave {value!r}, not a bool")
        return bool(value)
