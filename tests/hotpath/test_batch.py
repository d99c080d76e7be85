"""The batch kernel: Marking.fire_routing fires a run of routing tasks in one call.

It must do exactly what the runner's own loop does for those tasks (pop in FIFO order, fire
while the join can, queue the watchers of every place that changed, stop at the first task it
does not fire, at the end place, or at the budget), and both twins must agree on it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yawlflow._hotpath import JOIN_AND, JOIN_OR, JOIN_THREADS, JOIN_XOR, KernelNet


def _net(n_places: int, presets: list[list[int]], joins: list[tuple[int, int]]) -> KernelNet:
    ptr = np.zeros(len(presets) + 1, dtype=np.int32)
    ptr[1:] = np.cumsum([len(p) for p in presets])
    return KernelNet(
        n_places=n_places, n_tasks=len(presets), preset_ptr=ptr,
        preset_idx=np.array([x for p in presets for x in p], dtype=np.int32),
        join_code=np.array([j for j, _ in joins], dtype=np.int32),
        join_n=np.array([n for _, n in joins], dtype=np.int32),
        cancel_ptr=np.zeros(len(presets) + 1, dtype=np.int32), cancel_idx=np.zeros(0, dtype=np.int32),
        region_places=np.zeros((0, 1), dtype=np.uint64), region_tasks=np.zeros((0, 1), dtype=np.uint64),
    )


def _csr(rows: list[list[Any]]) -> tuple[list[int], list[Any]]:
    ptr = [0]
    for row in rows:
        ptr.append(ptr[-1] + len(row))
    return ptr, [x for row in rows for x in row]


def _program(kernels: ModuleType, net: KernelNet, simple: list[bool], posts: list[list[tuple[int, int]]],
             watch: list[list[int]], end: int = -1) -> Any:
    post_ptr, post = _csr(posts)
    watch_ptr, watch_idx = _csr(watch)
    return kernels.RoutingProgram(
        net, simple=simple, post_ptr=post_ptr, post_idx=[p for p, _ in post], post_n=[n for _, n in post],
        watch_ptr=watch_ptr, watch_idx=watch_idx, end_place=end,
    )


def _consumers(net: KernelNet) -> list[list[int]]:
    watch: list[list[int]] = [[] for _ in range(net.n_places)]
    ptr, idx = net.preset_ptr.tolist(), net.preset_idx.tolist()
    for t in range(net.n_tasks):
        for p in idx[ptr[t]:ptr[t + 1]]:
            watch[p].append(t)
    return watch


def test_a_sequence_fires_in_one_call(kernels: ModuleType) -> None:
    # p0 -> t0 -> p1 -> t1 -> p2 -> t2 -> p3 (the end)
    net = _net(4, [[0], [1], [2]], [(JOIN_AND, 0)] * 3)
    prog = _program(kernels, net, [True] * 3, [[(1, 1)], [(2, 1)], [(3, 1)]], _consumers(net), end=3)
    m = kernels.Marking(net, [1, 0, 0, 0])
    wl = kernels.Worklist(3)
    wl.touch(0)
    fired, why, task = m.fire_routing(prog, wl, 100)
    assert (list(fired), why, task) == ([0, 1, 2], kernels.FIRE_END, 2)
    assert m.tokens() == [0, 0, 0, 1]
    assert fired.typecode == "i"


def test_it_hands_off_the_first_task_it_does_not_fire(kernels: ModuleType) -> None:
    net = _net(3, [[0], [1]], [(JOIN_AND, 0), (JOIN_OR, 0)])
    prog = _program(kernels, net, [True, False], [[(1, 1)], []], _consumers(net))
    m = kernels.Marking(net, [1, 0, 0])
    wl = kernels.Worklist(2)
    wl.touch(0)
    fired, why, task = m.fire_routing(prog, wl, 100)
    assert (list(fired), why, task) == ([0], kernels.FIRE_HANDOFF, 1)
    assert len(wl) == 0  # the handed-off task was popped
    assert m.fire_routing(prog, wl, 100)[1:] == (kernels.FIRE_EMPTY, -1)


def test_the_budget_stops_a_loop_of_routing_tasks(kernels: ModuleType) -> None:
    net = _net(1, [[0]], [(JOIN_XOR, 0)])  # t0 takes from p0 and puts back: a livelock
    prog = _program(kernels, net, [True], [[(0, 1)]], _consumers(net))
    m = kernels.Marking(net, [1])
    wl = kernels.Worklist(1)
    wl.touch(0)
    fired, why, task = m.fire_routing(prog, wl, 5)
    assert (len(fired), why, task) == (5, kernels.FIRE_BUDGET, 0)


def test_a_thread_merge_fires_once_per_n_tokens(kernels: ModuleType) -> None:
    net = _net(3, [[0, 1]], [(JOIN_THREADS, 2)])
    prog = _program(kernels, net, [True], [[(2, 3)]], _consumers(net))
    m = kernels.Marking(net, [3, 2, 0])
    wl = kernels.Worklist(1)
    wl.touch(0)
    fired, why, _ = m.fire_routing(prog, wl, 100)
    assert (list(fired), why) == ([0, 0], kernels.FIRE_EMPTY)
    assert m.tokens() == [0, 1, 6]


def test_the_worklist_queues_a_task_once(kernels: ModuleType) -> None:
    wl = kernels.Worklist(4)
    for t in (2, 0, 2, 3, 0):
        wl.touch(t)
    assert wl.tasks() == [2, 0, 3]
    assert [wl.pop(), wl.pop()] == [2, 0]
    wl.touch(2)
    assert wl.tasks() == [3, 2]
    wl.clear()
    assert (len(wl), wl.pop()) == (0, -1)


@pytest.mark.parametrize("bad", [
    {"simple": [True, True]},  # task 1 is an OR-join: not for the batch
    {"post_idx": [7]},  # no place 7
    {"post_n": [-1]},
    {"end_place": 9},
    {"watch_idx": [5, 0]},  # no task 5
])
def test_a_malformed_program_is_refused(kernels: ModuleType, bad: dict[str, Any]) -> None:
    net = _net(2, [[0], [1]], [(JOIN_AND, 0), (JOIN_OR, 0)])
    args: dict[str, Any] = {"simple": [True, False], "post_ptr": [0, 1, 1], "post_idx": [1], "post_n": [1],
                            "watch_ptr": [0, 1, 2], "watch_idx": [0, 1], "end_place": -1}
    args.update(bad)
    with pytest.raises(ValueError, match="RoutingProgram"):
        kernels.RoutingProgram(net, **args)


def test_completed_records_match_the_runners(kernels: ModuleType) -> None:
    out: list[dict[str, Any]] = []
    kernels.completed_records(out, [2, 0], ("a", "b", "c"), "case-1", "main", 10, 4)
    assert out == [
        {"seq": 10, "case": "case-1", "event": "item.completed", "task": "c", "item": 4, "instance": None,
         "net": "main", "data": None},
        {"seq": 11, "case": "case-1", "event": "item.completed", "task": "a", "item": 5, "instance": None,
         "net": "main", "data": None},
    ]
    assert list(out[0]) == ["seq", "case", "event", "task", "item", "instance", "net", "data"]


@st.composite
def programs(draw: st.DrawFn) -> dict[str, Any]:
    n_places = draw(st.integers(1, 24))
    n_tasks = draw(st.integers(1, 24))
    place = st.integers(0, n_places - 1)
    presets = [draw(st.lists(place, min_size=1, max_size=3, unique=True)) for _ in range(n_tasks)]
    joins = [draw(st.sampled_from([(JOIN_AND, 0), (JOIN_XOR, 0), (JOIN_THREADS, 1), (JOIN_THREADS, 2),
                                   (JOIN_OR, 0)])) for _ in range(n_tasks)]
    simple = [j != JOIN_OR and draw(st.booleans()) for j, _ in joins]
    posts = [draw(st.lists(st.tuples(place, st.integers(0, 2)), max_size=3)) for _ in range(n_tasks)]
    watch = [draw(st.lists(st.integers(0, n_tasks - 1), max_size=3)) for _ in range(n_places)]
    return {
        "net": _net(n_places, presets, joins), "simple": simple, "posts": posts, "watch": watch,
        "end": draw(st.one_of(st.just(-1), place)),
        "tokens": draw(st.lists(st.integers(0, 3), min_size=n_places, max_size=n_places)),
        "queue": draw(st.lists(st.integers(0, n_tasks - 1), min_size=1, max_size=6)),
        "budget": draw(st.integers(0, 40)),
    }


def _run(kernels: ModuleType, case: dict[str, Any]) -> list[Any]:
    """Call fire_routing until it stops for good (a handed-off task is skipped), as a runner would."""
    net = case["net"]
    prog = _program(kernels, net, case["simple"], case["posts"], case["watch"], case["end"])
    m = kernels.Marking(net, case["tokens"])
    wl = kernels.Worklist(net.n_tasks)
    for t in case["queue"]:
        wl.touch(t)
    calls = []
    budget = case["budget"]
    for _ in range(50):
        fired, why, task = m.fire_routing(prog, wl, budget)
        budget -= len(fired)
        calls.append((list(fired), why, task, m.tokens(), wl.tasks()))
        if why != kernels.FIRE_HANDOFF:
            break
    return calls


@settings(max_examples=300, deadline=None)
@given(case=programs())
def test_the_twins_agree_on_random_programs(py: ModuleType, cy: ModuleType, case: dict[str, Any]) -> None:
    assert _run(cy, case) == _run(py, case)


@settings(max_examples=200, deadline=None)
@given(case=programs())
def test_fire_routing_is_the_runners_loop(py: ModuleType, case: dict[str, Any]) -> None:
    """The pure twin against a plain restatement of the runner's settle loop for simple tasks."""
    net = case["net"]
    m = py.Marking(net, case["tokens"])
    queue = list(dict.fromkeys(case["queue"]))
    budget = case["budget"]
    fired: list[int] = []
    stop = None
    while queue and stop is None:
        t = queue.pop(0)
        if not case["simple"][t]:
            continue  # handed off: the runner would handle it; here it does nothing
        ended = False
        while m.capacity(t) > 0:
            if budget <= 0:
                stop = "budget"
                break
            budget -= 1
            touched = [u for p in m.consume(t) for u in case["watch"][p]]
            fired.append(t)
            for p, n in case["posts"][t]:
                m.add(p, n)
                touched.extend(case["watch"][p])
                ended = ended or p == case["end"]
            for u in touched:
                if u not in queue:
                    queue.append(u)
        if ended and stop is None:
            stop = "end"
    got = [t for call in _run(py, case) for t in call[0]]
    assert got == fired
