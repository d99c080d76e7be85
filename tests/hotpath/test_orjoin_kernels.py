"""The OR-join kernels (``Coverability``, ``OrJoinScreen``): known answers over both twins, the
twins against each other on random nets, markings and goals (hypothesis), and the oracle against
its own code from before the kernels, kept below verbatim as the reference."""

from __future__ import annotations

import importlib
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import yawlflow._hotpath as hotpath
import yawlflow._orjoin as orjoin
from yawlflow._compiled import SPLIT_THREADS, SPLIT_XOR, CompiledNet, compile_spec
from yawlflow._hotpath import JOIN_AND, JOIN_OR, KernelNet, Marking
from yawlflow._spec import from_data, loads


def _twin(kind: str, name: str) -> ModuleType:
    """``yawlflow._hotpath._{kind}_{name}``; the compiled one is skipped, with the reason, when it
    is not built (unless ``YAWLFLOW_REQUIRE_CYTHON=1``, as in CI: then it fails)."""
    try:
        return importlib.import_module(f"yawlflow._hotpath._{kind}_{name}")
    except ImportError as exc:
        if name == "py" or os.environ.get("YAWLFLOW_REQUIRE_CYTHON") == "1":
            raise
        pytest.skip(
            f"compiled kernels not built ({exc}); testing the pure twin only "
            "(build them with: YAWLFLOW_CYTHON=1 pip install -e .)"
        )


@pytest.fixture(params=["py", "cy"], scope="module")
def oj(request: pytest.FixtureRequest) -> ModuleType:
    """The OR-join kernel module, once per twin."""
    return _twin("orjoin", request.param)


@pytest.fixture(scope="module")
def oj_py() -> ModuleType:
    return _twin("orjoin", "py")


@pytest.fixture(scope="module")
def oj_cy() -> ModuleType:
    return _twin("orjoin", "cy")


# -- building kernels from lists ------------------------------------------------------------------

Pairs = Sequence[tuple[int, int]]


def _csr(rows: Sequence[Sequence[Any]]) -> tuple[list[int], list[Any]]:
    ptr = [0]
    for row in rows:
        ptr.append(ptr[-1] + len(row))
    return ptr, [x for row in rows for x in row]


def coverability(mod: ModuleType, n_places: int, n_tasks: int,
                 transitions: Sequence[tuple[Pairs, Pairs, Sequence[int]]]) -> Any:
    """A Coverability over places ``0..n_places-1`` and tasks ``0..n_tasks-1`` from
    ``(pre, post, resets)`` transitions."""
    pre_ptr, pre = _csr([tr[0] for tr in transitions])
    post_ptr, post = _csr([tr[1] for tr in transitions])
    reset_ptr, resets = _csr([tr[2] for tr in transitions])
    return mod.Coverability(
        places=np.arange(n_places, dtype=np.int32), tasks=np.arange(n_tasks, dtype=np.int32),
        pre_ptr=pre_ptr, pre_idx=[i for i, _ in pre], pre_cnt=[k for _, k in pre],
        post_ptr=post_ptr, post_idx=[i for i, _ in post], post_cnt=[k for _, k in post],
        reset_ptr=reset_ptr, reset_idx=resets,
    )


def screen(mod: ModuleType, inputs: Sequence[int], regions: Sequence[int],
           cands: Sequence[Sequence[tuple[int, Sequence[int], Sequence[int]]]]) -> Any:
    """An OrJoinScreen from ``cands[slot] = [(task, takes slots, spoils slots), ...]``."""
    cand_ptr, flat = _csr(cands)
    takes_ptr, takes = _csr([c[1] for c in flat])
    spoils_ptr, spoils = _csr([c[2] for c in flat])
    return mod.OrJoinScreen(
        inputs=list(inputs), regions=list(regions), cand_ptr=cand_ptr, cand_task=[c[0] for c in flat],
        takes_ptr=takes_ptr, takes_slot=takes, spoils_ptr=spoils_ptr, spoils_slot=spoils,
    )


# -- the exact test: known answers ----------------------------------------------------------------

# The vector: q1, q2 (the join's inputs), p2 (upstream of q2), busy(C). C moves p2 to q2, or
# completes a busy item into q2.
Q1, Q2, P2, BUSY_C = range(4)
MOVE = (((P2, 1),), ((Q2, 1),), ())
FINISH = (((BUSY_C, 1),), ((Q2, 1),), ())
GOAL = [[1, 1, 0, 0]]  # q1 stays marked and q2 gets a token


def test_wait_when_an_empty_input_can_still_be_marked(oj: ModuleType) -> None:
    cov = coverability(oj, 3, 1, [MOVE, FINISH])
    assert cov.size == 4 and cov.n_transitions == 2
    assert cov.coverable([1, 0, 1, 0], GOAL, 1000) == oj.COVERABLE  # C can still fire: wait
    assert cov.coverable([1, 0, 0, 1], GOAL, 1000) == oj.COVERABLE  # C is busy: wait
    assert cov.coverable([1, 1, 0, 0], GOAL, 1000) == oj.COVERABLE  # covered already


def test_fire_when_no_empty_input_can_be_marked(oj: ModuleType) -> None:
    cov = coverability(oj, 3, 1, [MOVE, FINISH])
    assert cov.coverable([1, 0, 0, 0], GOAL, 1000) == oj.NOT_COVERABLE
    assert cov.coverable([5, 0, 0, 0], GOAL, 1000) == oj.NOT_COVERABLE
    assert cov.coverable([1, 0, 0, 0], [], 1000) == oj.NOT_COVERABLE  # no goal: nothing to cover


def test_a_reset_arc_that_empties_a_marked_input_lets_the_join_fire(oj: ModuleType) -> None:
    # C's cancellation set empties q1 as it marks q2: q1 and q2 are never marked together
    cov = coverability(oj, 3, 1, [(MOVE[0], MOVE[1], (Q1,)), (FINISH[0], FINISH[1], (Q1,))])
    assert cov.coverable([1, 0, 1, 0], GOAL, 1000) == oj.NOT_COVERABLE
    assert cov.coverable([1, 0, 0, 1], GOAL, 1000) == oj.NOT_COVERABLE
    # a reset of the place C itself marks spares what C puts there
    cov = coverability(oj, 3, 1, [(MOVE[0], MOVE[1], (Q2, Q2))])
    assert cov.coverable([1, 0, 1, 0], GOAL, 1000) == oj.COVERABLE


def test_a_chain_needs_the_whole_backward_search(oj: ModuleType) -> None:
    # p0 -> p1 -> ... -> p5 -> q2, one transition per hop, listed backwards and forwards
    hops = [(((i, 1),), ((i + 1, 1),), ()) for i in range(2, 7)] + [(((7, 1),), ((1, 1),), ())]
    goal = [[1, 1, 0, 0, 0, 0, 0, 0]]
    for order in (hops, hops[::-1]):
        cov = coverability(oj, 8, 0, order)
        assert cov.coverable([1, 0, 1, 0, 0, 0, 0, 0], goal, 1000) == oj.COVERABLE
        assert cov.coverable([0, 0, 1, 0, 0, 0, 0, 0], goal, 1000) == oj.NOT_COVERABLE
        assert cov.coverable([1, 0, 0, 0, 0, 0, 0, 0], goal, 1000) == oj.NOT_COVERABLE


def test_the_limit_counts_basis_insertions(oj: ModuleType) -> None:
    cov = coverability(oj, 3, 1, [MOVE, FINISH])
    # from the goal, two predecessors enter the basis (p2 and busy(C)); neither is covered
    assert cov.coverable([1, 0, 0, 0], GOAL, 0) == oj.LIMIT_REACHED
    assert cov.coverable([1, 0, 0, 0], GOAL, 1) == oj.LIMIT_REACHED
    assert cov.coverable([1, 0, 0, 0], GOAL, 2) == oj.NOT_COVERABLE
    assert cov.coverable([1, 0, 0, 0], GOAL, -5) == oj.LIMIT_REACHED
    assert cov.coverable([1, 0, 1, 0], GOAL, 0) == oj.COVERABLE  # found before the first insertion


def test_an_empty_vector(oj: ModuleType) -> None:
    cov = coverability(oj, 0, 0, [((), (), ())])
    assert cov.coverable([], [[]], 10) == oj.COVERABLE
    assert cov.coverable([], [], 10) == oj.NOT_COVERABLE


def test_vector_reads_the_marking(oj: ModuleType) -> None:
    net = _marking_net(6, 4)
    m = Marking(net, [0, 1, 2, 3, 4, 5], [0, 7, 0, 9])
    cov = oj.Coverability(places=[5, 1, 2], tasks=[3, 1], pre_ptr=[0], pre_idx=[], pre_cnt=[],
                          post_ptr=[0], post_idx=[], post_cnt=[], reset_ptr=[0], reset_idx=[])
    assert cov.vector(m) == [5, 1, 2, 9, 7]


@pytest.mark.parametrize(
    ("current", "goals", "message"),
    [
        ([1, 0, 0], GOAL, r"^current has 3 entries; the vector has 4$"),
        ([1, 0, 0, 0], [[1, 1, 0, 0], [1]], r"^goals\[1\] has 1 entries; the vector has 4$"),
    ],
)
def test_vectors_of_the_wrong_size_are_rejected(oj: ModuleType, current: list[int], goals: list[list[int]],
                                                message: str) -> None:
    with pytest.raises(ValueError, match=message):
        coverability(oj, 3, 1, [MOVE]).coverable(current, goals, 10)


_GOOD: dict[str, Any] = {
    "places": [0, 1], "tasks": [0], "pre_ptr": [0, 1], "pre_idx": [0], "pre_cnt": [1],
    "post_ptr": [0, 1], "post_idx": [1], "post_cnt": [1], "reset_ptr": [0, 1], "reset_idx": [2],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pre_idx": [3]}, r"^pre_idx\[0\] is 3, not an index of a vector below 3$"),
        ({"reset_idx": [-1]}, r"^reset_idx\[0\] is -1, not an index of a vector below 3$"),
        ({"post_cnt": [-1]}, r"^post_cnt: counts must not be negative$"),
        ({"pre_cnt": [1, 1]}, r"^pre_cnt: expected a 1-D array of 1 entries, got shape \(2,\)$"),
        ({"post_ptr": [0, 1, 1]}, r"^post_ptr: expected a 1-D array of 2 entries"),
        ({"reset_ptr": [1, 1]}, r"^reset_ptr\[0\] is 1, not 0$"),
        ({"pre_ptr": [0, 2]}, r"^pre_ptr\[1\] is 2, but pre_idx has 1 entries$"),
        ({"places": [[0, 1]]}, r"^places: expected a 1-D array, got shape \(1, 2\)$"),
        ({"tasks": [-4]}, r"^tasks: ids must not be negative$"),
        ({"pre_ptr": []}, r"^pre_ptr: expected at least 1 entry$"),
        ({"pre_idx": ["x"]}, r"^pre_idx: expected a 1-D array of integers"),
    ],
)
def test_both_twins_reject_a_malformed_net_alike(oj: ModuleType, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        oj.Coverability(**{**_GOOD, **change})


def test_screen_rejects_a_malformed_join(oj: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"^takes_slot\[0\] is 2, not an input slot below 2$"):
        screen(oj, [0, 1], [0, 1], [[(3, [2], [])], []])
    with pytest.raises(ValueError, match=r"^regions: expected a 1-D array of 2 entries"):
        screen(oj, [0, 1], [0], [[], []])
    with pytest.raises(ValueError, match=r"^cand_task: ids must not be negative$"):
        screen(oj, [0, 1], [0, 1], [[(-1, [], [])], []])


# -- the quick tests: known answers ---------------------------------------------------------------


def _bits(rows: Sequence[Sequence[int]], n: int) -> np.ndarray[Any, Any]:
    out = np.zeros((len(rows), max(1, (n + 63) // 64)), dtype=np.uint64)
    for r, bits in enumerate(rows):
        for b in bits:
            out[r, b // 64] |= np.uint64(1) << np.uint64(b % 64)
    return out


def _marking_net(n_places: int, n_tasks: int, presets: Sequence[Sequence[int]] | None = None,
                 joins: Sequence[int] | None = None,
                 regions: Sequence[tuple[Sequence[int], Sequence[int]]] = ()) -> KernelNet:
    presets = presets if presets is not None else [[] for _ in range(n_tasks)]
    pre_ptr, pre_idx = _csr(presets)
    return KernelNet(
        n_places=n_places, n_tasks=n_tasks,
        preset_ptr=np.array(pre_ptr, dtype=np.int32), preset_idx=np.array(pre_idx, dtype=np.int32),
        join_code=np.array(joins if joins is not None else [JOIN_AND] * n_tasks, dtype=np.int32),
        join_n=np.zeros(n_tasks, dtype=np.int32),
        cancel_ptr=np.zeros(n_tasks + 1, dtype=np.int32), cancel_idx=np.zeros(0, dtype=np.int32),
        region_places=_bits([r[0] for r in regions], n_places), region_tasks=_bits([r[1] for r in regions], n_tasks),
    )


# places q1 0, q2 1, p2 2, p3 3; tasks: B (p3 -> q1) 0, C (p2 -> q2) 1, J (q1, q2) 2
# regions: of q1 {q1, p3} and {B}; of q2 {q2, p2} and {C}
SCREEN_NET = _marking_net(4, 3, presets=[[3], [2], [0, 1]], joins=[JOIN_AND, JOIN_AND, JOIN_OR],
                          regions=[([0, 3], [0]), ([1, 2], [1])])


@pytest.mark.parametrize(
    ("tokens", "busy", "spoils", "expect"),
    [
        ([0, 0, 1, 0], [0, 0, 0], [], "SCREEN_WAIT"),  # no input marked
        ([1, 1, 0, 0], [0, 0, 0], [], "SCREEN_FIRE"),  # every input marked
        ([1, 0, 0, 0], [0, 0, 0], [], "SCREEN_FIRE"),  # nothing upstream of q2
        ([1, 0, 0, 0], [1, 0, 0], [], "SCREEN_FIRE"),  # busy B lies upstream of q1, not of q2
        ([1, 0, 1, 0], [0, 0, 0], [], "SCREEN_WAIT"),  # C is enabled and feeds q2
        ([1, 0, 0, 0], [0, 1, 0], [], "SCREEN_WAIT"),  # C is busy and feeds q2
        ([1, 0, 1, 0], [0, 0, 0], [0], "SCREEN_EXACT"),  # C would empty q1: the exact test decides
    ],
)
def test_screen_known_answers(oj: ModuleType, tokens: list[int], busy: list[int], spoils: list[int],
                              expect: str) -> None:
    s = screen(oj, [0, 1], [0, 1], [[(0, [], [])], [(1, [], spoils)]])
    assert s.n_inputs == 2
    assert s.screen(Marking(SCREEN_NET, tokens, busy)) == getattr(oj, expect)


def test_screen_a_feeder_that_takes_a_marked_input_is_left_to_the_exact_test(oj: ModuleType) -> None:
    # C consumes from q1 and p2: enabled, it could take the token the join counts on
    net = _marking_net(4, 3, presets=[[3], [2, 0], [0, 1]], joins=[JOIN_AND, JOIN_AND, JOIN_OR],
                       regions=[([0, 3], [0]), ([1, 2, 0], [1])])
    s = screen(oj, [0, 1], [0, 1], [[(0, [], [])], [(1, [0], [])]])
    assert s.screen(Marking(net, [1, 0, 1, 0], [0, 0, 0])) == oj.SCREEN_EXACT
    assert s.screen(Marking(net, [1, 0, 1, 0], [0, 1, 0])) == oj.SCREEN_WAIT  # busy: its input is taken


def test_screen_with_more_than_64_inputs(oj: ModuleType) -> None:
    n = 70
    net = _marking_net(n + 1, 1, regions=[([p, n], [0]) for p in range(n)])
    s = screen(oj, range(n), range(n), [[(0, [], [])] for _ in range(n)])
    tokens = [1] * n + [0]
    assert s.screen(Marking(net, tokens, [0])) == oj.SCREEN_FIRE
    tokens[69] = 0
    assert s.screen(Marking(net, tokens, [0])) == oj.SCREEN_FIRE  # nothing upstream
    assert s.screen(Marking(net, tokens, [1])) == oj.SCREEN_WAIT  # busy task 0 feeds place 69
    assert s.screen(Marking(net, [0] * (n + 1), [1])) == oj.SCREEN_WAIT  # nothing marked


# -- the oracle, end to end: known answers --------------------------------------------------------

SPEC = """
yawlflow: 1
id: orjoin
nets:
  main:
    input: i
    output: o
    conditions:
      q1: {flows: [j]}
    tasks:
      a: {external: true, flows: [b, c]}
      b: {external: true, flows: [q1]}
      c: {external: true, flows: [j]%s}
      j: {join: or, external: true, flows: [o]}
"""


def _oracle_case(cancels: bool) -> tuple[CompiledNet, dict[str, int], dict[str, int]]:
    net = compile_spec(loads(textwrap.dedent(SPEC % (", cancels: [q1]" if cancels else "")))).net("main")
    return net, dict(net.place_ids), {name: t for t, name in enumerate(net.task_names)}


def test_oracle_waits_while_a_branch_can_still_arrive() -> None:
    net, p, t = _oracle_case(cancels=False)
    m = Marking(net.kernel)
    m.add(p["q1"])
    m.add(p["c{a_c}"])
    assert orjoin.OrJoinOracle(net).may_fire(m, t["j"]) is False
    m.take(p["c{a_c}"])
    assert orjoin.OrJoinOracle(net).may_fire(m, t["j"]) is True
    m.busy_add(t["c"], 1)
    assert orjoin.OrJoinOracle(net).may_fire(m, t["j"]) is False


def test_oracle_fires_when_the_other_branch_would_cancel_the_marked_input() -> None:
    net, p, t = _oracle_case(cancels=True)
    m = Marking(net.kernel)
    m.add(p["q1"])
    m.add(p["c{a_c}"])
    oracle = orjoin.OrJoinOracle(net)
    assert oracle.may_fire(m, t["j"]) is True  # c empties q1 as it marks j's other input
    assert oracle.may_fire(m, t["j"]) is True  # from the memo
    m.add(p["c{a_b}"])  # but b can put a token back in q1 after c
    assert oracle.may_fire(m, t["j"]) is False


# -- the twins against each other and against the code before the kernels ------------------------


def test_twins_export_the_same_names(oj_py: ModuleType, oj_cy: ModuleType) -> None:
    assert oj_cy.__all__ == oj_py.__all__
    for name in oj_py.__all__:
        assert hasattr(oj_cy, name), name
        if name.isupper():
            assert getattr(oj_cy, name) == getattr(oj_py, name), name
    for cls in ("Coverability", "OrJoinScreen"):
        public = {n for n in dir(getattr(oj_py, cls)) if not n.startswith("_")}
        assert public <= set(dir(getattr(oj_cy, cls))), cls


def test_hotpath_loads_the_twin_of_the_marking_kernel() -> None:
    want = "_cy" if hotpath.IMPLEMENTATION == "cython" else "_py"
    assert hotpath.Coverability.__module__ == f"yawlflow._hotpath._orjoin{want}"
    assert hotpath.OrJoinScreen.__module__ == f"yawlflow._hotpath._orjoin{want}"


@pytest.mark.parametrize("kind", ["orjoin", "mi"])
def test_compiled_twin_is_not_stale(kind: str) -> None:
    """An editable install does not rebuild the extension when the .pyx changes: say so."""
    built = Path(str(_twin(kind, "cy").__file__))
    source = Path(__file__).resolve().parents[2] / "_hotpath" / f"_{kind}_cy.pyx"
    if not source.parent.samefile(built.parent):
        pytest.skip(f"the compiled twin is not built in place in this checkout ({built})")
    assert built.stat().st_mtime >= source.stat().st_mtime, (
        f"{built.name} is older than {source.name}: rebuild it with YAWLFLOW_CYTHON=1 pip install -e ."
    )


# The reference: engine/_orjoin.py's search before the kernels, verbatim but for its inputs
# (transitions, current and goals here instead of a marking and a join) and its answer (the
# kernels' codes instead of True for "coverable or too large").
RefVec = tuple[int, ...]
RefTransition = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], frozenset[int]]


def _ref_leq(a: RefVec, b: RefVec) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True))


def _ref_predecessor(m: RefVec, tr: RefTransition) -> RefVec | None:
    pre, post, resets = tr
    post_d = dict(post)
    if not any(m[i] > 0 and post_d.get(i, 0) > 0 for i in post_d):
        return None  # the transition adds nothing m needs: its predecessor would be >= m
    out = list(m)
    for r in resets:
        if m[r] > post_d.get(r, 0):
            return None  # after the reset r holds only what t puts there: m(r) cannot be covered
        out[r] = 0
    for i, k in post:
        if i not in resets:
            out[i] = max(out[i] - k, 0)
    for i, k in pre:
        out[i] = max(out[i], k) if i in resets else out[i] + k
    return tuple(out)


def ref_coverable(transitions: Sequence[RefTransition], current: RefVec, goals: Sequence[RefVec], limit: int) -> int:
    basis: list[RefVec] = list(goals)
    frontier = list(basis)
    inserted = 0
    while frontier:
        m = frontier.pop()
        if _ref_leq(m, current):
            return 1
        for tr in transitions:
            prev = _ref_predecessor(m, tr)
            if prev is None or any(_ref_leq(b, prev) for b in basis):
                continue
            if _ref_leq(prev, current):
                return 1
            basis = [b for b in basis if not _ref_leq(prev, b)]
            basis.append(prev)
            frontier.append(prev)
            inserted += 1
            if inserted > limit:
                return 2  # too large to decide: waiting is the safe answer
    return 0


class CoverCase(NamedTuple):
    n_places: int
    n_tasks: int
    transitions: list[tuple[list[tuple[int, int]], list[tuple[int, int]], list[int]]]
    current: list[int]
    goals: list[list[int]]
    limit: int


@st.composite
def st_cover_cases(draw: st.DrawFn) -> CoverCase:
    """Small restricted nets (duplicate entries, zero counts and resets of produced places
    included) and vectors near the goals, so that both answers come up."""
    n_places = draw(st.integers(0, 6))
    n_tasks = draw(st.integers(0, 2))
    size = n_places + n_tasks
    if size:
        entry = st.tuples(st.integers(0, size - 1), st.integers(0, 2))
        pairs = st.lists(entry, max_size=3)
        resets = st.lists(st.integers(0, size - 1), max_size=2)
        transitions = draw(st.lists(st.tuples(pairs, pairs, resets), max_size=8))
    else:
        transitions = draw(st.lists(st.just(([], [], [])), max_size=2))
    vec = st.lists(st.integers(0, 2), min_size=size, max_size=size)
    goals = draw(st.lists(vec, max_size=3))
    current = draw(vec)
    limit = draw(st.one_of(st.integers(-1, 12), st.just(2_000)))
    return CoverCase(n_places, n_tasks, transitions, current, goals, limit)


@pytest.mark.timeout(600)
@settings(deadline=None, max_examples=300)
@given(case=st_cover_cases())
def test_coverable_agrees_with_the_code_before_the_kernels(oj: ModuleType, case: CoverCase) -> None:
    ref = [(tuple(pre), tuple(post), frozenset(resets)) for pre, post, resets in case.transitions]
    expect = ref_coverable(ref, tuple(case.current), [tuple(g) for g in case.goals], case.limit)
    cov = coverability(oj, case.n_places, case.n_tasks, case.transitions)
    assert cov.coverable(case.current, case.goals, case.limit) == expect


@pytest.mark.timeout(600)
@settings(deadline=None, max_examples=300)
@given(case=st_cover_cases())
def test_coverable_twins_agree(oj_py: ModuleType, oj_cy: ModuleType, case: CoverCase) -> None:
    got = [coverability(mod, case.n_places, case.n_tasks, case.transitions).coverable(
        case.current, case.goals, case.limit) for mod in (oj_py, oj_cy)]
    assert got[0] == got[1]


class ScreenCase(NamedTuple):
    n_places: int
    n_tasks: int
    presets: list[list[int]]
    joins: list[int]
    regions: list[tuple[list[int], list[int]]]
    tokens: list[int]
    busy: list[int]
    inputs: list[int]
    slots: list[int]  # region of each input
    cands: list[list[tuple[int, list[int], list[int]]]]


@st.composite
def st_screen_cases(draw: st.DrawFn) -> ScreenCase:
    n_places = draw(st.integers(1, 8))
    n_tasks = draw(st.integers(1, 5))
    place, task = st.integers(0, n_places - 1), st.integers(0, n_tasks - 1)
    presets = draw(st.lists(st.lists(place, max_size=3), min_size=n_tasks, max_size=n_tasks))
    joins = draw(st.lists(st.integers(0, 4).filter(lambda j: j != 3), min_size=n_tasks, max_size=n_tasks))
    n_regions = draw(st.integers(1, 4))
    regions = draw(st.lists(st.tuples(st.lists(place, max_size=4), st.lists(task, max_size=3)),
                            min_size=n_regions, max_size=n_regions))
    tokens = draw(st.lists(st.integers(0, 2), min_size=n_places, max_size=n_places))
    busy = draw(st.lists(st.integers(0, 1), min_size=n_tasks, max_size=n_tasks))
    inputs = draw(st.lists(place, min_size=1, max_size=4))
    slot = st.integers(0, len(inputs) - 1)
    slots = draw(st.lists(st.integers(0, n_regions - 1), min_size=len(inputs), max_size=len(inputs)))
    cand = st.tuples(task, st.lists(slot, max_size=2), st.lists(slot, max_size=2))
    cands = draw(st.lists(st.lists(cand, max_size=3), min_size=len(inputs), max_size=len(inputs)))
    return ScreenCase(n_places, n_tasks, presets, joins, regions, tokens, busy, inputs, slots, cands)


@pytest.mark.timeout(600)
@settings(deadline=None, max_examples=200)
@given(case=st_screen_cases())
def test_screen_twins_agree_over_both_marking_twins(oj_py: ModuleType, oj_cy: ModuleType, case: ScreenCase) -> None:
    net = _marking_net(case.n_places, case.n_tasks, case.presets, case.joins, case.regions)
    answers = set()
    for marking_twin in ("py", "cy"):
        m = _twin("marking", marking_twin).Marking(net, case.tokens, case.busy)
        for mod in (oj_py, oj_cy):
            answers.add(screen(mod, case.inputs, case.slots, case.cands).screen(m))
    assert len(answers) == 1, answers


# The oracle before the kernels, verbatim but for its names (Ref*), on random compiled nets and
# random markings (reachable or not): the new oracle must give the same answer every time.


class RefRestricted:
    def __init__(self, net: CompiledNet, join_task: int) -> None:
        tasks: set[int] = set()
        places: set[int] = set(net.preset[join_task])
        for _p, r in net.orjoin_regions[join_task]:
            tasks.update(net.region_tasks_of[r])
        for u in tasks:
            places.update(net.preset[u])
            places.update(f.place for f in net.flows[u])
        self.places = tuple(sorted(places))
        self.tasks = tuple(sorted(tasks))
        index = {p: i for i, p in enumerate(self.places)}
        busy_index = {u: len(self.places) + i for i, u in enumerate(self.tasks)}
        self.index = index
        self.busy_index = busy_index
        self.size = len(self.places) + len(self.tasks)
        transitions: list[RefTransition] = []
        for u in self.tasks:
            resets = {index[p] for p in net.cancel_places[u] if p in index}
            for v in net.cancel_tasks[u]:
                resets.update(index[p] for p in net.preset[v] if p in index)
                if v in busy_index:
                    resets.add(busy_index[v])
            reset_set = frozenset(resets)
            posts = self._posts(net, u)
            if net.join[u] == JOIN_AND:
                pres = [tuple((index[p], 1) for p in net.preset[u])]
            else:  # XOR, OR (optimistic), threads, partial: any one input may fire it
                pres = [((index[p], 1),) for p in net.preset[u]]
            for post in posts:
                for pre in pres:
                    transitions.append((pre, post, reset_set))
                transitions.append((((busy_index[u], 1),), post, reset_set))
        self.transitions = tuple(transitions)

    def _posts(self, net: CompiledNet, u: int) -> list[tuple[tuple[int, int], ...]]:
        flows = net.flows[u]
        idx = self.index
        split = net.split[u]
        if split == SPLIT_XOR:
            return [((idx[f.place], 1),) for f in flows] or [()]
        n = net.split_n[u] if split == SPLIT_THREADS else 1
        return [tuple((idx[f.place], n) for f in flows)]

    def vector(self, marking: Any) -> RefVec:
        vec = [marking.get(p) for p in self.places]
        vec.extend(marking.busy(u) for u in self.tasks)
        return tuple(vec)


class RefOracle:
    def __init__(self, net: CompiledNet, limit: int) -> None:
        self._net = net
        self._limit = limit
        self._restricted: dict[int, RefRestricted] = {}
        self._memo: dict[tuple[object, ...], bool] = {}

    def may_fire(self, marking: Any, task: int) -> bool:
        net = self._net
        pre = net.preset[task]
        marked = [p for p in pre if marking.get(p)]
        if not marked:
            return False
        regions = net.orjoin_regions[task]
        empty_regions = [r for p, r in regions if not marking.get(p)]
        if not empty_regions:
            return True
        if not any(marking.region_live(r) for r in empty_regions):
            return True  # structural: no token or busy item upstream of an empty input
        if self._feeder(marking, task, marked):
            return False  # one step away: a busy or enabled task feeds an empty input
        key = (task, tuple(marked), tuple(marking.region_key(r) for _p, r in regions))
        hit = self._memo.get(key)
        if hit is None:
            hit = not self._coverable(marking, task, marked)
            if len(self._memo) > 65_536:
                self._memo.clear()
            self._memo[key] = hit
        return hit

    def _feeder(self, marking: Any, task: int, marked: list[int]) -> bool:
        net = self._net
        for p in net.preset[task]:
            if marking.get(p):
                continue
            for u in net.producers[p]:
                if u == task or not (marking.busy(u) or marking.capacity(u)):
                    continue
                if not marking.busy(u) and any(q in net.preset[u] for q in marked):
                    continue  # firing u could take a token the join counts on: leave it to the exact test
                if not any(q in net.cancel_places[u] for q in marked) and not any(
                    q in net.preset[v] for v in net.cancel_tasks[u] for q in marked
                ):
                    return True
        return False

    def _coverable(self, marking: Any, task: int, marked: list[int]) -> bool:
        rn = self._restricted.get(task)
        if rn is None:
            rn = self._restricted[task] = RefRestricted(self._net, task)
        current = rn.vector(marking)
        base = [0] * rn.size
        for p in marked:
            base[rn.index[p]] = 1
        basis: list[RefVec] = []
        for p in self._net.preset[task]:
            if p not in marked:
                goal = list(base)
                goal[rn.index[p]] = 1
                basis.append(tuple(goal))
        return ref_coverable(rn.transitions, current, basis, self._limit) != 0


@st.composite
def st_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A random net with OR-joins: external tasks (none ever runs), random flows (loops
    included), any join and split, some through explicit conditions, some cancellation sets."""
    n = draw(st.integers(2, 6))
    names = [f"t{i}" for i in range(n)]
    conditions = [f"p{i}" for i in range(draw(st.integers(0, 2)))]
    targets = names + conditions
    succ: list[list[str]] = [[] for _ in range(n)]
    for i in range(1, n):  # every task has an earlier predecessor: reachable from t0
        succ[draw(st.integers(0, i - 1))].append(names[i])
    for c in conditions:  # and so has every condition
        succ[draw(st.integers(0, n - 1))].append(c)
    for i in range(n):
        succ[i].extend(draw(st.lists(st.sampled_from(targets), max_size=2)))
        later = draw(st.integers(i + 1, n))  # a later task, or o: the output is reachable
        succ[i].append(names[later] if later < n else "o")
        succ[i] = list(dict.fromkeys(succ[i]))
    tasks: dict[str, Any] = {}
    for i, name in enumerate(names):
        join = draw(st.sampled_from(["or", "or", "and", "xor", {"threads": 2}, {"partial": 1}]))
        split = draw(st.sampled_from(["and", "xor", "or", {"threads": 2}]))
        task: dict[str, Any] = {"external": True, "join": join, "split": split}
        if split in ("xor", "or") and len(succ[i]) > 1:
            task["flows"] = [{"to": x, "when": "x > 0"} for x in succ[i][:-1]] + [{"to": succ[i][-1], "default": True}]
        else:
            task["flows"] = succ[i]
        if draw(st.integers(0, 3)) == 0:
            task["cancels"] = draw(st.lists(st.sampled_from(targets), min_size=1, max_size=2, unique=True))
        tasks[name] = task
    net: dict[str, Any] = {"input": "i", "output": "o", "tasks": tasks, "termination": "implicit"}
    if conditions:
        net["conditions"] = {c: {"flows": [draw(st.sampled_from(names))]} for c in conditions}
    return {"yawlflow": 1, "id": "random", "nets": {"main": net}}


@pytest.mark.timeout(600)
@settings(deadline=None, max_examples=200)
@given(spec=st_specs(), data=st.data(), limit=st.sampled_from([0, 3, 200_000]))
def test_oracle_agrees_with_the_code_before_the_kernels(spec: dict[str, Any], data: st.DataObject,
                                                        limit: int) -> None:
    net = compile_spec(from_data(spec)).net("main")
    joins = [t for t in range(net.n_tasks) if net.join[t] == JOIN_OR]
    new = orjoin.OrJoinOracle(net)
    old = RefOracle(net, limit)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(orjoin, "_LIMIT", limit)
        for _ in range(4):
            tokens = data.draw(st.lists(st.integers(0, 2), min_size=net.n_places, max_size=net.n_places))
            busy = data.draw(st.lists(st.integers(0, 1), min_size=net.n_tasks, max_size=net.n_tasks))
            m = Marking(net.kernel, tokens, busy)
            for t in joins:
                assert new.may_fire(m, t) is old.may_fire(m, t), (net.task_names[t], m)
