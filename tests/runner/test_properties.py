"""Properties of the net runner over random well-formed nets and random event sequences.

The nets: a few tasks in a random DAG (task i > 0 has a predecessor j < i, so every task is
reachable from the input condition; every task has a later successor or the output condition,
so the output is reachable from every task), plus optional back edges. A back edge leaves an
offered or auto task only, so every cycle passes a task that waits and no step loops for ever.
Joins are and/xor/or; splits are and, xor (``when`` over the int field ``x``, plus a default)
or or (the same); tasks are offered (``external``), auto (``run: h``) or routing; some have a
cancellation set.

The events: at each turn, pick among what the live items allow (complete an offered or started
item, with an output that sets ``x``; start an offered one; withdraw or halt one; fail an auto
one), or now and then cancel the case. Auto items are completed from the ``StartItem`` effects
the runner issued.

Properties: (a) determinism, (b) replay (``fold(events) == live``, also from a copy taken
mid-way), (c) token conservation on nets without OR parts and cancellation, (d) the runner
never invents work, (e) ``seq`` is 0, 1, 2, ... without gaps, (f) every step settles (nothing
left that should fire or be offered; a reported deadlock is one), (g) the OR-join oracle agrees
with a brute-force forward exploration of the same abstract reset net.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from yawlflow._compiled import KIND_AUTO, KIND_ROUTING, SPLIT_AND, SPLIT_XOR, CompiledNet, compile_spec
from yawlflow._effects import Effect, StartItem
from yawlflow._events import (
    CaseCancelRequested,
    CaseStarted,
    Event,
    ItemCancelRequested,
    ItemCompleted,
    ItemFailed,
    ItemStarted,
)
from yawlflow._hotpath import JOIN_AND, JOIN_OR
from yawlflow._orjoin import OrJoinOracle
from yawlflow._runner import NetRunner
from yawlflow._spec import from_data

END_EVENTS = ("case.completed", "case.failed", "case.cancelled")


# -- random nets ----------------------------------------------------------------------------------


@st.composite
def nets(draw: st.DrawFn, *, plain: bool = False, max_tasks: int = 6) -> dict[str, Any]:
    """A random well-formed spec (as data).

    ``plain``: AND/XOR joins and splits only, no cancellation sets, explicit termination.
    """
    n = draw(st.integers(2, max_tasks))
    names = [f"t{i}" for i in range(n)]
    kinds = [draw(st.sampled_from(["external", "auto", "routing"])) for _ in range(n)]
    succ: list[list[str]] = [[] for _ in range(n)]

    def link(i: int, target: str) -> None:
        if target not in succ[i]:
            succ[i].append(target)

    for i in range(1, n):  # every task has an earlier predecessor: reachable from t0
        link(draw(st.integers(0, i - 1)), names[i])
    for i in range(n):
        if not any(s != "o" and int(s[1:]) > i for s in succ[i]):  # a later successor, or o
            later = draw(st.integers(i + 1, n)) if i + 1 < n else n
            link(i, names[later] if later < n else "o")
        if i + 1 < n and draw(st.booleans()):  # an extra forward edge
            link(i, names[draw(st.integers(i + 1, n - 1))])
        if kinds[i] != "routing" and draw(st.integers(0, 3)) == 0:  # a back edge: a loop
            link(i, names[draw(st.integers(0, i))])
    # Some forward task->task flows go through an explicit condition, which may also feed
    # another later task: a deferred choice between them.
    conditions: dict[str, Any] = {}
    for i in range(n):
        for k, target in enumerate(succ[i]):
            if target == "o" or int(target[1:]) <= i or draw(st.integers(0, 3)):
                continue
            cond = f"p{len(conditions)}"
            outs = [target]
            other = names[draw(st.integers(i + 1, n - 1))]
            if other not in outs and draw(st.booleans()):
                outs.append(other)
            conditions[cond] = {"flows": outs}
            succ[i][k] = cond
    join_kinds = ["and", "xor"] if plain else ["and", "xor", "or", "or"]
    split_kinds = ["and", "xor"] if plain else ["and", "xor", "or"]
    tasks: dict[str, Any] = {}
    for i, name in enumerate(names):
        task: dict[str, Any] = {}
        if kinds[i] == "external":
            task["external"] = True
        elif kinds[i] == "auto":
            task["run"] = "h"
        task["join"] = draw(st.sampled_from(join_kinds))
        split = draw(st.sampled_from(split_kinds))
        flows = list(draw(st.permutations(succ[i])))
        task["split"] = split
        if split == "and" or len(flows) == 1:
            task["flows"] = flows
        else:
            out: list[Any] = []
            for target in flows[:-1]:
                op = draw(st.sampled_from(["<", ">", "==", ">="]))
                c = draw(st.integers(0, 6))
                out.append({"to": target, "when": f"x {op} {c}"})
            out.append({"to": flows[-1], "default": True})
            task["flows"] = out
        if not plain and draw(st.integers(0, 3)) == 0:
            victims = draw(
                st.lists(st.sampled_from(names + list(conditions)), min_size=1, max_size=3, unique=True)
            )
            task["cancels"] = victims
        tasks[name] = task
    net: dict[str, Any] = {"input": "i", "output": "o", "tasks": tasks}
    if conditions:
        net["conditions"] = conditions
    if not plain and draw(st.integers(0, 4)) == 0:
        net["termination"] = "implicit"
    return {"yawlflow": 1, "id": "random", "nets": {"main": net}}


# -- driving a case with random events ------------------------------------------------------------


@dataclass
class Run:
    """A live run: the events applied, and after each one the step's results."""

    net: CompiledNet
    events: list[Event] = field(default_factory=list)
    traces: list[list[dict[str, Any]]] = field(default_factory=list)
    effects: list[list[Effect]] = field(default_factory=list)
    snapshots: list[tuple[object, ...]] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)


def compile_net(spec_data: dict[str, Any]) -> CompiledNet:
    return compile_spec(from_data(spec_data)).net("main")


def choose(runner: NetRunner, state: Any, pick: int) -> Event:
    """The event ``pick`` selects among what the live items of ``state`` allow.

    Mostly completions (with an output setting ``x``), then starts of offered items, withdrawals
    and halts, failures of auto items, and rarely the cancellation of the whole case.
    """
    roll = (pick + 50) % 100  # hypothesis likes 0: let it mean "complete the first item"
    items = list(state.items.values())
    if roll < 3 or not items:
        return CaseCancelRequested()
    item = items[(pick // 100) % len(items)]
    x = (pick // 10_000) % 8
    if roll < 12:
        return ItemCancelRequested(item=item.id)
    if roll < 16 and item.state == "started" and runner.net.kind[item.tid] == KIND_AUTO:
        return ItemFailed(item=item.id, error="boom")
    if roll < 40 and item.state == "offered":
        return ItemStarted(item=item.id)
    return ItemCompleted(item=item.id, output={"x": x})


def live_run(
    spec_data: dict[str, Any], x0: int, picks: list[int], copy_at: int | None = None
) -> tuple[Run, Any, Any]:
    """Run a case, choosing each event from ``picks``; return the run, its final state, and a copy
    of the state taken after ``copy_at`` events (or ``None``)."""
    net = compile_net(spec_data)
    runner = NetRunner(net)
    run = Run(net)
    start = CaseStarted(case="c", net="main", data={"x": x0})
    step = runner.start(start)
    state = step.state
    copied = None
    for k, pick in enumerate([None, *picks]):
        if k:
            if state.status != "running":
                break
            event = choose(runner, state, pick)  # type: ignore[arg-type]
            step = runner.handle(state, event)
            state = step.state
        else:
            event = start
        run.events.append(event)
        run.traces.append(step.trace)
        run.effects.append(step.effects)
        run.snapshots.append(frozen(state))
        run.totals.append(state.marking.total())
        if copy_at is not None and k == copy_at:
            copied = state.copy()
    return run, state, copied


def fold(net: CompiledNet, events: list[Event]) -> tuple[Run, Any]:
    """Feed a recorded event log into a fresh runner."""
    runner = NetRunner(net)
    run = Run(net)
    first = events[0]
    assert isinstance(first, CaseStarted)
    state = runner.initial_state(first)
    for event in events:
        step = runner.handle(state, event)
        state = step.state
        run.events.append(event)
        run.traces.append(step.trace)
        run.effects.append(step.effects)
        run.snapshots.append(frozen(state))
    return run, state


def frozen(state: Any) -> tuple[object, ...]:
    """``state.snapshot()``, deep-copied so that it cannot change as the case goes on (see
    ``test_snapshot_does_not_change_as_the_case_goes_on``)."""
    return copy.deepcopy(state.snapshot())


PICKS = st.lists(st.integers(0, 10**6), min_size=4, max_size=30)
X0 = st.integers(0, 7)


# -- (a) determinism ------------------------------------------------------------------------------


@settings(max_examples=60)
@given(spec=nets(), x0=X0, picks=PICKS)
def test_determinism_same_events_same_everything(spec: dict[str, Any], x0: int, picks: list[int]) -> None:
    first, _, _ = live_run(spec, x0, picks)
    second, _, _ = live_run(spec, x0, picks)
    assert second.events == first.events
    assert second.traces == first.traces
    assert second.effects == first.effects
    assert second.snapshots == first.snapshots
    again, _ = fold(compile_net(spec), first.events)  # a fresh compile and a fresh runner
    assert again.traces == first.traces
    assert again.effects == first.effects
    assert again.snapshots == first.snapshots


# -- (b) replay -------------------------------------------------------------------------------------


@settings(max_examples=60)
@given(spec=nets(), x0=X0, picks=PICKS, cut=st.integers(0, 30))
def test_replay_fold_equals_live_also_from_a_midway_copy(
    spec: dict[str, Any], x0: int, picks: list[int], cut: int
) -> None:
    live, final, copied = live_run(spec, x0, picks, copy_at=cut)
    replayed, state = fold(live.net, live.events)
    assert state.snapshot() == final.snapshot()
    assert state == final
    assert replayed.traces == live.traces
    assert [r for t in replayed.traces for r in t] == [r for t in live.traces for r in t]
    if copied is not None:
        # The copy is independent: the live run went on, the copy still is the state after
        # `cut` events; fed the rest of the log, it reaches the live final state.
        assert copied.snapshot() == live.snapshots[cut]
        runner = NetRunner(live.net)
        state = copied
        for event, trace in zip(live.events[cut + 1 :], live.traces[cut + 1 :], strict=True):
            step = runner.handle(state, event)
            state = step.state
            assert step.trace == trace
        assert state.snapshot() == final.snapshot()


# -- (c) token conservation -----------------------------------------------------------------------


def produced(net: CompiledNet, t: int) -> int:
    return len(net.flows[t]) if net.split[t] == SPLIT_AND else 1


def consumed(net: CompiledNet, t: int) -> int:
    return len(net.preset[t]) if net.join[t] == JOIN_AND else 1


@settings(max_examples=60)
@given(spec=nets(plain=True), x0=X0, picks=PICKS)
def test_tokens_move_as_joins_and_splits_say(spec: dict[str, Any], x0: int, picks: list[int]) -> None:
    # AND/XOR joins and splits, no cancellation sets, no OR parts: every place has exactly one
    # consumer, so no offer is ever withdrawn for lack of tokens. Each firing consumes |preset|
    # (AND) or 1 (XOR) tokens when it starts (a routing task: when it completes), each completion
    # produces |postset| (AND) or 1 (XOR). Withdrawing an offered item takes its tokens too.
    live, _, _ = live_run(spec, x0, picks)
    net = live.net
    tid = net.task_ids
    unclaimed: set[int] = set()
    for k in range(len(live.events)):
        event = live.events[k]
        trace = live.traces[k]
        delta = live.totals[k] - (live.totals[k - 1] if k else 0)
        expect = 1 if isinstance(event, CaseStarted) else 0  # the input condition's token
        started = {r["item"] for r in trace if r["event"] == "item.started"}
        for r in trace:
            if r["event"] == "item.started":
                expect -= consumed(net, tid[r["task"]])
            elif r["event"] == "item.completed":
                t = tid[r["task"]]
                if net.kind[t] == KIND_ROUTING:
                    expect -= consumed(net, t)
                expect += produced(net, t)
        if isinstance(event, ItemCancelRequested) and event.item in unclaimed and event.item not in started:
            expect -= consumed(net, tid[_task_of(live, event.item)])
        assert delta == expect, (k, event, trace)
        # offered (unclaimed) items after this step
        for r in trace:
            if r["event"] == "item.offered":
                unclaimed.add(r["item"])
            elif r["event"] in ("item.started", "item.cancelled", "item.completed"):
                unclaimed.discard(r["item"])


def _task_of(run: Run, item: int) -> str:
    for trace in run.traces:
        for r in trace:
            if r["item"] == item:
                return str(r["task"])
    raise AssertionError(f"item {item} never appeared")


# -- (d) no invented work, (e) seq without gaps ---------------------------------------------------


@settings(max_examples=60)
@given(spec=nets(), x0=X0, picks=PICKS)
def test_never_invents_work_and_seq_has_no_gaps(spec: dict[str, Any], x0: int, picks: list[int]) -> None:
    live, final, _ = live_run(spec, x0, picks)
    net = live.net
    trace = [r for t in live.traces for r in t]
    # (e)
    assert [r["seq"] for r in trace] == list(range(len(trace)))
    assert trace[0]["event"] == "case.started"
    assert all(r["case"] == "c" and r["net"] == "main" for r in trace)
    # (d) nothing after the end, and the end only once
    ends = [i for i, r in enumerate(trace) if r["event"] in END_EVENTS]
    assert len(ends) <= 1
    if ends:
        assert ends[0] == len(trace) - 1
        assert final.status == trace[-1]["event"].split(".")[1]
        assert not final.items
    else:
        assert final.status == "running"
    completed: set[int] = set()
    enabled: set[int] = set()
    finished: set[int] = set()
    for r in trace:
        item = r["item"]
        if r["event"] == "item.enabled":
            assert item not in enabled, f"item {item} enabled twice"
            enabled.add(item)
        elif r["event"] == "item.started":
            task = net.task_ids[r["task"]]
            assert item in enabled, f"item {item} ({r['task']}) started without item.enabled"
            assert net.kind[task] != KIND_ROUTING
        elif r["event"] == "item.completed":
            assert item not in completed, f"item {item} completed twice"
            completed.add(item)
        if r["event"] in ("item.completed", "item.cancelled", "item.failed"):
            assert item not in finished, f"item {item} finished twice: {r['event']}"
            finished.add(item)
        if r["event"] in ("item.offered", "item.started"):
            assert item not in finished, f"item {item} {r['event']} after it finished"
    # Every StartItem names an auto item started in the same step; every auto start has one.
    for step_trace, effects in zip(live.traces, live.effects, strict=True):
        starts = {e.item for e in effects if isinstance(e, StartItem)}
        auto_started = {
            r["item"]
            for r in step_trace
            if r["event"] == "item.started" and net.kind[net.task_ids[r["task"]]] == KIND_AUTO
        }
        assert starts == auto_started
    # Item ids are dense: 0, 1, 2, ... in order of creation.
    created = [
        r["item"]
        for r in trace
        if r["item"] is not None
        and (r["event"] == "item.enabled" or (r["event"] == "item.completed" and r["item"] not in enabled))
    ]
    assert created == list(range(len(created)))
    # The live items of the final state are exactly those created and not finished.
    assert set(final.items) == (set(created) - finished)


def test_snapshot_does_not_change_as_the_case_goes_on() -> None:
    # A snapshot is "a comparable value of the whole state": taken now, compared later (replay
    # checks, differential tests). It must not alias the live state's mutable parts.
    net = compile_net(
        {
            "yawlflow": 1,
            "id": "s",
            "nets": {
                "main": {
                    "input": "i",
                    "output": "o",
                    "tasks": {
                        "a": {"external": True, "flows": ["b"]},
                        "b": {"external": True, "flows": ["o"]},
                    },
                }
            },
        }
    )
    runner = NetRunner(net)
    state = runner.start(CaseStarted(case="c", net="main", data={"x": 0})).state
    before = state.snapshot()
    kept = copy.deepcopy(before)
    item = next(iter(state.items))
    state = runner.handle(state, ItemCompleted(item=item, output={"x": 1})).state
    assert state.snapshot() != kept
    assert before == kept, "the snapshot taken before the event changed with the state"


# -- (f) the step settles: nothing left that should have fired or been offered -------------------


def fresh_capacity(net: CompiledNet, oracle: OrJoinOracle, marking: Any, t: int) -> int:
    """Capacity of task ``t`` by the rules of ADR 0001 §2, with a fresh OR-join oracle (no memo)."""
    if net.join[t] == JOIN_OR:
        return 1 if oracle.may_fire(marking, t) else 0
    return int(marking.capacity(t))


@settings(max_examples=60)
@given(spec=nets(), x0=X0, picks=PICKS)
def test_every_step_settles(spec: dict[str, Any], x0: int, picks: list[int]) -> None:
    # After each step of a running case: routing and auto tasks have nothing left to fire; an
    # offered task has exactly `capacity` unclaimed items, all offered; the output condition of
    # an explicit net is unmarked. When the case fails with a deadlock, nothing could fire.
    net = compile_net(spec)
    runner = NetRunner(net)
    state = runner.start(CaseStarted(case="c", net="main", data={"x": x0})).state
    for pick in [None, *picks]:
        if pick is not None:
            if state.status != "running":
                break
            state = runner.handle(state, choose(runner, state, pick)).state
        oracle = OrJoinOracle(net)  # fresh: no memo carried over from the runner's own
        m = state.marking
        if state.status == "running":
            for t in range(net.n_tasks):
                cap = fresh_capacity(net, oracle, m, t)
                if net.kind[t] in (KIND_ROUTING, KIND_AUTO):
                    assert cap == 0, f"{net.task_names[t]} could still fire: {m}"
                else:
                    waiting = state.waiting.get(t, [])
                    assert len(waiting) == cap, (net.task_names[t], waiting, cap, m)
                    assert all(
                        state.items[i].state == "offered" and not state.items[i].claimed for i in waiting
                    )
            if net.spec.termination == "explicit":
                assert m.get(1) == 0
        elif state.status == "failed" and state.error and state.error.startswith("deadlock"):
            assert not any(fresh_capacity(net, oracle, m, t) for t in range(net.n_tasks)), m


# -- (g) the OR-join oracle against brute force ---------------------------------------------------


def brute_may_fire(
    net: CompiledNet, tokens: list[int], busy: list[int], t: int, limit: int = 4000
) -> bool | None:
    """The OR-join rule by forward exploration of the same abstract reset net the oracle reads
    (ADR 0001 §4): any XOR-split flow; all flows of AND/OR splits; other joins but AND fire on any
    one input; a busy item completes; cancellation sets are resets. ``None``: too big to tell."""
    pre_t = net.preset[t]
    marked = [p for p in pre_t if tokens[p]]
    if not marked:
        return False
    empty = [p for p in pre_t if not tokens[p]]
    if not empty:
        return True

    def covers(state: tuple[int, ...]) -> bool:
        return all(state[p] for p in marked) and any(state[p] for p in empty)

    n_places = net.n_places
    start = tuple(tokens) + tuple(busy)
    seen = {start}
    frontier = [start]
    while frontier:
        state = frontier.pop()
        if covers(state):
            return False
        for u in range(net.n_tasks):
            if u == t:
                continue
            pres: list[list[int]] = []
            if net.join[u] == JOIN_AND:
                if all(state[p] for p in net.preset[u]):
                    pres.append(list(net.preset[u]))
            else:
                pres.extend([p] for p in net.preset[u] if state[p])
            sources: list[tuple[list[int], int | None]] = [(pre, None) for pre in pres]
            if state[n_places + u]:
                sources.append(([], n_places + u))
            if not sources:
                continue
            resets = set(net.cancel_places[u])
            for v in net.cancel_tasks[u]:
                resets.update(net.preset[v])
                resets.add(n_places + v)
            if net.split[u] == SPLIT_XOR:
                posts = [[(f.place, 1)] for f in net.flows[u]]
            else:
                posts = [[(f.place, net.split_n[u]) for f in net.flows[u]]]
            for pre, busy_slot in sources:
                for post in posts:
                    nxt = list(state)
                    for p in pre:
                        nxt[p] -= 1
                    if busy_slot is not None:
                        nxt[busy_slot] -= 1
                    for r in resets:
                        nxt[r] = 0
                    for p, k in post:
                        nxt[p] += k
                    key = tuple(nxt)
                    if key not in seen:
                        seen.add(key)
                        frontier.append(key)
                        if len(seen) > limit:
                            return None
    return True


@settings(max_examples=60)
@given(spec=nets(max_tasks=5), x0=X0, picks=PICKS)
def test_orjoin_oracle_agrees_with_brute_force(spec: dict[str, Any], x0: int, picks: list[int]) -> None:
    # At every marking a random run passes through, for every OR-join of the net: the oracle's
    # answer (with the runner's memo, and fresh) equals forward exploration's, where it finishes.
    net = compile_net(spec)
    runner = NetRunner(net)
    state = runner.start(CaseStarted(case="c", net="main", data={"x": x0})).state
    joins = [t for t in range(net.n_tasks) if net.join[t] == JOIN_OR]
    shared = OrJoinOracle(net)
    for pick in [None, *picks]:
        if pick is not None:
            if state.status != "running":
                break
            state = runner.handle(state, choose(runner, state, pick)).state
        m = state.marking
        for t in joins:
            expect = brute_may_fire(net, m.tokens(), m.busy_counts(), t)
            if expect is None:
                continue
            assert OrJoinOracle(net).may_fire(m, t) is expect, (net.task_names[t], m)
            assert shared.may_fire(m, t) is expect, (net.task_names[t], m)
