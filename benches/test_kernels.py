"""The hot-path kernels: compiled twin vs pure-Python twin, and CPU ticks per transition check.

Nets of 1,000 tasks: ``seq`` (a compiled routing sequence: one AND input per task), ``par`` (a
compiled split into 1,000 branches and an AND join of all of them) and ``mixed`` (random: 1 to 3
inputs per task, AND/XOR/thread/OR joins, 4-place cancellation sets, one OR-join region per
task). Every batch is driven by the C batch driver of ``yawlflow._ticks`` (one vectorcall per
operation, no Python loop), for both twins alike, so the ratios compare the kernels and the call
into them, not an interpreter loop around them.

The OR-join and MI kernels, compiled vs pure twin: ``Coverability.coverable`` (the exact OR-join
test: backward coverability on a join's restricted reset net; one call explores up to thousands
of vectors, so the loop is all C), ``OrJoinScreen.screen`` (the quick tests: a few calls into the
Marking's methods per input, each twin over its own Marking twin, so Python-level calls bound the
ratio) and ``MIPolicy`` (a handful of comparisons per call: the ratio is the cost of a Python
function vs a compiled method call, which no kernel can make 20x).

Ticks (run with ``--tick-certify``): ``Marking.capacity`` is the check the runner makes per
transition. ``Marking`` has no batch capacity kernel, so "amortised over a batch call" here means
one call into the C driver that checks all 1,000 tasks, each check a vectorcall into
``Marking.capacity``: the Python->C method protocol is paid per check and is measured alongside,
as the call floor (a compiled method that does nothing). These tests fail when the budget is not
met; they report by how much.
"""

from __future__ import annotations

import functools
import importlib
import random
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from _kit import Report, Row, compare, fmt_speedup, fmt_time, verdict_at_least, verdict_at_most
from _shapes import parallel, sequence

from yawlflow import _orjoin, _ticks
from yawlflow._compiled import CompiledNet, compile_spec
from yawlflow._hotpath import JOIN_AND, JOIN_OR, JOIN_THREADS, JOIN_XOR, KernelNet, Marking
from yawlflow._spec import from_data

N = 1_000
REPEAT = 20  # passes over the 1,000 tasks per timed round: a round lasts ~0.1-10 ms
TWIN_GOAL = 20.0  # compiled >= 20x its pure twin
TICK_GOAL = 8.0


def _twin(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"yawlflow._hotpath._marking_{name}")
    except ImportError as exc:
        pytest.skip(f"the compiled kernels are not built ({exc}): YAWLFLOW_CYTHON=1 pip install -e .")


# -- the nets ------------------------------------------------------------------------------------
def _compiled(data: dict[str, Any]) -> KernelNet:
    return compile_spec(from_data(data)).net("main").kernel


def _mixed(n: int = N, seed: int = 5) -> KernelNet:
    rng = random.Random(seed)
    n_places = n
    presets = [rng.sample(range(n_places), rng.randint(1, 3)) for _ in range(n)]
    cancels = [rng.sample(range(n_places), 4) for _ in range(n)]
    codes = [rng.choice((JOIN_AND, JOIN_AND, JOIN_XOR, JOIN_THREADS, JOIN_OR)) for _ in range(n)]
    words_p, words_t = (n_places + 63) // 64, (n + 63) // 64
    rp = np.zeros((n, words_p), dtype=np.uint64)
    rt = np.zeros((n, words_t), dtype=np.uint64)
    for r in range(n):
        for p in rng.sample(range(n_places), 12):
            rp[r, p >> 6] |= np.uint64(1) << np.uint64(p & 63)
        for t in rng.sample(range(n), 6):
            rt[r, t >> 6] |= np.uint64(1) << np.uint64(t & 63)

    def csr(rows: list[list[int]]) -> tuple[Any, Any]:
        ptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int32)
        return ptr, np.array([x for r in rows for x in r], dtype=np.int32)

    pre_ptr, pre_idx = csr(presets)
    can_ptr, can_idx = csr(cancels)
    return KernelNet(
        n_places=n_places, n_tasks=n, preset_ptr=pre_ptr, preset_idx=pre_idx,
        join_code=np.array(codes, dtype=np.int32), join_n=np.array([2 if c == JOIN_THREADS else 0 for c in codes],
                                                                   dtype=np.int32),
        cancel_ptr=can_ptr, cancel_idx=can_idx, region_places=rp, region_tasks=rt,
    )


NETS: dict[str, Callable[[], KernelNet]] = {
    "seq": lambda: _compiled(sequence(N)),
    "par": lambda: _compiled(parallel(N)),
    "mixed": _mixed,
}
_CACHE: dict[str, KernelNet] = {}


def net(name: str) -> KernelNet:
    if name not in _CACHE:
        _CACHE[name] = NETS[name]()
    return _CACHE[name]


def marking(twin: Any, kernel: KernelNet, *, tokens: int = 1, seed: int = 11) -> Any:
    """A marking with ``tokens`` in about half the places (a fixed random half)."""
    rng = random.Random(seed)
    toks = [tokens if rng.random() < 0.5 else 0 for _ in range(kernel.n_places)]
    return twin.Marking(kernel, toks)


# -- compiled vs pure twin ---------------------------------------------------------------------
def _ops(kind: str, twin: Any, kernel: KernelNet) -> tuple[Callable[[Any], object], tuple[int, ...], str]:
    """(bound method, one pass of arguments, what it does) for the kernel ``kind``."""
    tasks = tuple(range(kernel.n_tasks))
    if kind == "capacity":
        return marking(twin, kernel).capacity, tasks, "capacity of every task"
    if kind == "consume":  # one AND firing per task: every input holds plenty of tokens
        m = twin.Marking(kernel, [10**12] * kernel.n_places)
        return m.consume, tasks, "consume one firing of every task"
    if kind == "produce":
        return marking(twin, kernel).add, tuple(range(kernel.n_places)), "add a token to every place"
    if kind == "cancel":
        return marking(twin, kernel).cancel, tasks, "cancellation set (4 places, emptied by the first pass)"
    if kind == "region_live":
        return marking(twin, kernel).region_live, tasks, "OR-join region live? (marked and busy bitsets)"
    raise AssertionError(kind)


CASES = [
    ("capacity", "seq"), ("capacity", "par"), ("capacity", "mixed"),
    ("consume", "seq"), ("produce", "seq"), ("cancel", "mixed"), ("region_live", "mixed"),
]


@pytest.mark.parametrize(("kind", "shape"), CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_compiled_vs_pure_twin(benchmark: Any, report: Report, rounds: int, kind: str, shape: str) -> None:
    cy, py = _twin("cy"), _twin("py")
    kernel = net(shape)
    run_each = _ticks.driver.run_each
    clock = time.perf_counter_ns
    fn_cy, args, what = _ops(kind, cy, kernel)
    fn_py, _, _ = _ops(kind, py, kernel)
    batch = args * REPEAT
    ops = len(batch)
    subject, base = compare(benchmark, lambda: run_each(fn_cy, batch, clock),
                            {"pure": lambda: run_each(fn_py, batch, clock)}, rounds * 4)
    subject, pure = subject / ops, base["pure"] / ops
    ratio = pure / subject
    report.add(benchmark, Row(
        group="kernels", name=f"Marking.{kind}, {shape} {kernel.n_tasks:,} tasks (compiled)",
        measured=f"{fmt_time(subject)}/op", baseline=f"pure twin {fmt_time(pure)}/op",
        ratio=fmt_speedup(ratio), goal=f">= {TWIN_GOAL:g}x", verdict=verdict_at_least(ratio, TWIN_GOAL),
        numbers={"compiled_s_per_op": subject, "pure_s_per_op": pure, "speedup": ratio, "what": what},
    ))


def test_marking_copy_compiled_vs_pure_twin(benchmark: Any, report: Report, rounds: int) -> None:
    cy, py = _twin("cy"), _twin("py")
    kernel = net("seq")
    m_cy, m_py = marking(cy, kernel), marking(py, kernel)
    run_repeat = _ticks.driver.run_repeat
    clock = time.perf_counter_ns
    k = 200
    subject, base = compare(benchmark, lambda: run_repeat(m_cy.copy, k, clock),
                            {"pure": lambda: run_repeat(m_py.copy, k, clock)}, rounds * 4)
    subject, pure = subject / k, base["pure"] / k
    ratio = pure / subject
    report.add(benchmark, Row(
        group="kernels", name=f"Marking.copy, {kernel.n_places:,} places (compiled)",
        measured=f"{fmt_time(subject)}/op", baseline=f"pure twin {fmt_time(pure)}/op",
        ratio=fmt_speedup(ratio), goal=f">= {TWIN_GOAL:g}x", verdict=verdict_at_least(ratio, TWIN_GOAL),
        numbers={"compiled_s_per_op": subject, "pure_s_per_op": pure, "speedup": ratio},
    ))


# -- the OR-join and MI kernels: compiled vs pure twin ----------------------------------------------
def _kernel_twin(kind: str, name: str) -> ModuleType:
    try:
        return importlib.import_module(f"yawlflow._hotpath._{kind}_{name}")
    except ImportError as exc:
        pytest.skip(f"the compiled kernels are not built ({exc}): YAWLFLOW_CYTHON=1 pip install -e .")


def _branches(k: int, length: int) -> dict[str, Any]:
    """An AND split into ``k`` chains of ``length`` routing tasks, and an OR-join of the chains."""
    tasks: dict[str, Any] = {"split": {"split": "and", "flows": [f"b{i}_0" for i in range(k)]}}
    for i in range(k):
        for j in range(length):
            tasks[f"b{i}_{j}"] = {"flows": [f"b{i}_{j + 1}" if j + 1 < length else "join"]}
    tasks["join"] = {"join": "or", "flows": ["end"]}
    return {"yawlflow": 1, "id": f"or{k}x{length}", "nets": {"main": {"input": "start", "output": "end",
                                                                         "tasks": tasks}}}


def _join(k: int, length: int) -> tuple[CompiledNet, int]:
    net = compile_spec(from_data(_branches(k, length))).net("main")
    return net, next(t for t in range(net.n_tasks) if net.join[t] == JOIN_OR)


def _coverability_case(twin: ModuleType, case: str) -> tuple[Callable[[], object], str]:
    """(one exact OR-join test, what it is) on the restricted net of a 3 x 4 branches OR-join:
    the join's first input is marked; the goals are it and one other input each."""
    net, t = _join(3, 4)
    rn = _orjoin._Restricted(net, t)
    pre = [x for tr in rn.transitions for x in tr[0]]
    post = [x for tr in rn.transitions for x in tr[1]]
    resets = [sorted(tr[2]) for tr in rn.transitions]
    cov = twin.Coverability(
        places=list(rn.places), tasks=list(rn.tasks),
        pre_ptr=np.cumsum([0] + [len(tr[0]) for tr in rn.transitions]), pre_idx=[i for i, _ in pre],
        pre_cnt=[n for _, n in pre],
        post_ptr=np.cumsum([0] + [len(tr[1]) for tr in rn.transitions]), post_idx=[i for i, _ in post],
        post_cnt=[n for _, n in post],
        reset_ptr=np.cumsum([0] + [len(r) for r in resets]), reset_idx=[x for r in resets for x in r],
    )
    first, *others = net.preset[t]
    current = [0] * rn.size
    current[rn.index[first]] = 1
    goals = []
    for p in others:
        goal = list(current)
        goal[rn.index[p]] = 1
        goals.append(goal)
    if case == "found":  # a token at the head of the branch the search reaches last
        current[rn.index[net.place_ids["c{split_b1_0}"]]] = 1
        what = f"coverable, found after a search ({rn.size} counts, {len(rn.transitions)} transitions)"
    else:
        what = f"not coverable: the whole fixpoint ({rn.size} counts, {len(rn.transitions)} transitions)"
    return functools.partial(cov.coverable, current, goals, _orjoin._LIMIT), what


@pytest.mark.parametrize("case", ["fixpoint", "found"])
def test_orjoin_exact_compiled_vs_pure_twin(benchmark: Any, report: Report, rounds: int, case: str) -> None:
    cy, py = _kernel_twin("orjoin", "cy"), _kernel_twin("orjoin", "py")
    fn_cy, what = _coverability_case(cy, case)
    fn_py, _ = _coverability_case(py, case)
    assert fn_cy() == fn_py()
    run_repeat = _ticks.driver.run_repeat
    clock = time.perf_counter_ns
    k = 2
    subject, base = compare(benchmark, lambda: run_repeat(fn_cy, k, clock),
                            {"pure": lambda: run_repeat(fn_py, k, clock)}, rounds * 2)
    subject, pure = subject / k, base["pure"] / k
    ratio = pure / subject
    report.add(benchmark, Row(
        group="kernels", name=f"Coverability.coverable, OR-join of 3x4 branches, {case} (compiled)",
        measured=f"{fmt_time(subject)}/op", baseline=f"pure twin {fmt_time(pure)}/op",
        ratio=fmt_speedup(ratio), goal=f">= {TWIN_GOAL:g}x", verdict=verdict_at_least(ratio, TWIN_GOAL),
        numbers={"compiled_s_per_op": subject, "pure_s_per_op": pure, "speedup": ratio, "what": what},
    ))


def _screen_case(twin: ModuleType, marking_twin: ModuleType, outcome: str) -> Callable[[], object]:
    """The quick tests of the OR-join of 8 x 4 branches, first input marked, at a marking where
    they answer ``outcome``."""
    net, t = _join(8, 4)
    captured: dict[str, Any] = {}

    def capture(**arrays: Any) -> None:
        captured.update(arrays)

    with pytest.MonkeyPatch.context() as mp:  # the arrays the oracle builds for this join
        mp.setattr(_orjoin, "OrJoinScreen", capture)
        _orjoin._screen(net, t)
    screen = twin.OrJoinScreen(**captured)
    tokens = [0] * net.n_places
    tokens[net.preset[t][0]] = 1
    if outcome == "exact":  # a token at the head of every other branch: no feeder, so undecided
        for i in range(1, 8):
            tokens[net.place_ids[f"c{{split_b{i}_0}}"]] = 1
    elif outcome == "wait":  # the last task of the last branch is enabled: a feeder
        tokens[net.place_ids["c{b7_2_b7_3}"]] = 1
    m = marking_twin.Marking(net.kernel, tokens)
    assert screen.screen(m) == getattr(twin, f"SCREEN_{outcome.upper()}")
    return functools.partial(screen.screen, m)


@pytest.mark.parametrize("outcome", ["exact", "wait", "fire"])
def test_orjoin_screen_compiled_vs_pure_twin(benchmark: Any, report: Report, rounds: int, outcome: str) -> None:
    """Each twin over its own Marking twin (what each build runs): the screen calls the marking's
    methods (get, busy, capacity, region_live), so the Marking twins weigh in the ratio."""
    fn_cy = _screen_case(_kernel_twin("orjoin", "cy"), _twin("cy"), outcome)
    fn_py = _screen_case(_kernel_twin("orjoin", "py"), _twin("py"), outcome)
    run_repeat = _ticks.driver.run_repeat
    clock = time.perf_counter_ns
    k = 2_000
    subject, base = compare(benchmark, lambda: run_repeat(fn_cy, k, clock),
                            {"pure": lambda: run_repeat(fn_py, k, clock)}, rounds * 4)
    subject, pure = subject / k, base["pure"] / k
    ratio = pure / subject
    report.add(benchmark, Row(
        group="kernels", name=f"OrJoinScreen.screen, OR-join of 8x4 branches, {outcome} (compiled)",
        measured=f"{fmt_time(subject)}/op", baseline=f"pure twin {fmt_time(pure)}/op",
        ratio=fmt_speedup(ratio), goal=f">= {TWIN_GOAL:g}x", verdict=verdict_at_least(ratio, TWIN_GOAL),
        numbers={"compiled_s_per_op": subject, "pure_s_per_op": pure, "speedup": ratio},
    ))


def _mi_call(twin: ModuleType, question: str) -> Callable[[], object]:
    policy = twin.MIPolicy(join=twin.MI_JOIN_THRESHOLD, threshold=5, min=1, max=10, dynamic=True)
    if question == "join_status":  # 6 created, 3 ended and completed, 3 live: running
        return functools.partial(policy.join_status, 6, 3, 3, 3, False)
    if question == "add_status":
        return functools.partial(policy.add_status, 6)
    return functools.partial(policy.count_ok, 6)


@pytest.mark.parametrize("question", ["join_status", "add_status", "count_ok"])
def test_mi_status_compiled_vs_pure_twin(benchmark: Any, report: Report, rounds: int, question: str) -> None:
    fn_cy = _mi_call(_kernel_twin("mi", "cy"), question)
    fn_py = _mi_call(_kernel_twin("mi", "py"), question)
    assert fn_cy() == fn_py()
    run_repeat = _ticks.driver.run_repeat
    clock = time.perf_counter_ns
    k = 20_000
    subject, base = compare(benchmark, lambda: run_repeat(fn_cy, k, clock),
                            {"pure": lambda: run_repeat(fn_py, k, clock)}, rounds * 4)
    subject, pure = subject / k, base["pure"] / k
    ratio = pure / subject
    report.add(benchmark, Row(
        group="kernels", name=f"MIPolicy.{question} (compiled)",
        measured=f"{fmt_time(subject)}/op", baseline=f"pure twin {fmt_time(pure)}/op",
        ratio=fmt_speedup(ratio), goal=f">= {TWIN_GOAL:g}x", verdict=verdict_at_least(ratio, TWIN_GOAL),
        numbers={"compiled_s_per_op": subject, "pure_s_per_op": pure, "speedup": ratio},
    ))


# -- ticks per transition check ------------------------------------------------------------------
def _floor(tasks: tuple[int, ...]) -> _ticks.TickStats:
    """What a call into a compiled method that does nothing costs through the same driver."""
    return _ticks.measure(_ticks.driver.CallFloor().op, args=tasks, rounds=21, name="call floor")


def _tick_row(report: Report, stats: _ticks.TickStats, floor: _ticks.TickStats, how: str) -> None:
    report.add(None, Row(
        group="ticks", name=f"{stats.name} [{how}]",
        measured=f"{stats.median:.1f} {stats.unit}s/op", baseline=f"no-op compiled call {floor.median:.1f}",
        ratio=f"{stats.median / floor.median:.2g}x the floor", goal=f"<= {TICK_GOAL:g} ticks/op",
        verdict=verdict_at_most(stats.median, TICK_GOAL),
        numbers={"ticks_per_op": stats.median, "floor_ticks": floor.median, "p10": stats.p10, "p90": stats.p90},
    ))


@pytest.mark.tick_budget(TICK_GOAL)
@pytest.mark.parametrize("shape", ["seq", "par", "mixed"])
def test_enabled_set_ticks_per_transition(ticks: Any, report: Report, shape: str) -> None:
    """The issue's budget: the enabled-set check, amortised per transition, in one kernel call."""
    kernel = net(shape)
    tasks = tuple(range(kernel.n_tasks))
    m = Marking(kernel, [1 if i % 2 == 0 else 0 for i in range(kernel.n_places)])
    floor = _floor(tasks)
    note = ("Marking.enabled(): one call checks every transition (the loop runs in the kernel); "
            f"ticks are per transition over {len(tasks):,} transitions")
    stats = ticks(m.enabled, ops=len(tasks), name=f"Marking.enabled, {shape} {len(tasks):,} tasks", note=note)
    _tick_row(report, stats, floor, "per transition, one call")


@pytest.mark.parametrize("shape", ["seq", "par", "mixed"])
def test_capacity_ticks_amortised_over_a_batch_call(ticks: Any, report: Report, shape: str) -> None:
    kernel = net(shape)
    tasks = tuple(range(kernel.n_tasks))
    m = Marking(kernel, [1 if i % 2 == 0 else 0 for i in range(kernel.n_places)])
    floor = _floor(tasks)
    if _ticks.counter().driver == "compiled":
        note = (
            f"Marking has no batch capacity kernel: this is one call into the C batch driver, which makes "
            f"{len(tasks):,} vectorcalls into Marking.capacity; a compiled method that does nothing costs "
            f"{floor.median:.1f} ticks through the same driver, so <= {TICK_GOAL:g} ticks needs the loop over "
            f"tasks inside the kernel module"
        )
    else:
        note = "pure-Python build: the pure twin's Marking.capacity, called from the interpreter's batch loop"
    stats = ticks(m.capacity, args=tasks, name=f"Marking.capacity, {shape} {len(tasks):,} tasks", note=note)
    _tick_row(report, stats, floor, "batch call")


def test_capacity_ticks_per_call_from_python(ticks: Any, report: Report) -> None:
    kernel = net("seq")
    tasks = tuple(range(kernel.n_tasks))
    cap = Marking(kernel, [1 if i % 2 == 0 else 0 for i in range(kernel.n_places)]).capacity

    def sweep() -> None:  # what the runner's loop does: one Python-level call per task
        for t in tasks:
            cap(t)

    floor = _floor(tasks)
    stats = ticks(sweep, ops=len(tasks), name=f"Marking.capacity, seq {len(tasks):,} tasks, Python loop",
                  note="a Python for loop calling Marking.capacity once per task")
    _tick_row(report, stats, floor, "per call from Python")


def test_region_live_ticks(ticks: Any, report: Report) -> None:
    kernel = net("mixed")
    regions = tuple(range(kernel.n_tasks))
    m = Marking(kernel, [1 if i % 5 == 0 else 0 for i in range(kernel.n_places)])
    floor = _floor(regions)
    stats = ticks(m.region_live, args=regions, name=f"Marking.region_live, mixed {len(regions):,} regions")
    _tick_row(report, stats, floor, "batch call")
