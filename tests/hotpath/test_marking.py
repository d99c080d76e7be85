"""The marking kernel, over both twins (``kernels`` fixture), and the twins against each other."""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import yawlflow._hotpath as hotpath
from yawlflow._hotpath import JOIN_AND, JOIN_OR, JOIN_PARTIAL, JOIN_THREADS, JOIN_XOR, KernelNet

# -- building nets by hand ---------------------------------------------------------------------


def _csr(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    ptr = np.zeros(len(rows) + 1, dtype=np.int32)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    idx = np.array([p for r in rows for p in r], dtype=np.int32)
    return ptr, idx


def _bitset_rows(rows: Sequence[Sequence[int]], n_bits: int) -> np.ndarray[Any, Any]:
    words = (n_bits + 63) // 64
    out = np.zeros((len(rows), words), dtype=np.uint64)
    for r, bits in enumerate(rows):
        for b in bits:
            out[r, b // 64] |= np.uint64(1) << np.uint64(b % 64)
    return out


def make_net(
    n_places: int,
    presets: Sequence[Sequence[int]],
    joins: Sequence[int | tuple[int, int]],
    *,
    cancels: Sequence[Sequence[int]] | None = None,
    regions: Sequence[tuple[Sequence[int], Sequence[int]]] = (),
) -> KernelNet:
    """A KernelNet from lists: ``joins[t]`` is a code, or ``(code, n)`` for threads/partial."""
    n_tasks = len(presets)
    pre_ptr, pre_idx = _csr(presets)
    can_ptr, can_idx = _csr(cancels if cancels is not None else [[] for _ in range(n_tasks)])
    codes = [j if isinstance(j, int) else j[0] for j in joins]
    ns = [0 if isinstance(j, int) else j[1] for j in joins]
    return KernelNet(
        n_places=n_places,
        n_tasks=n_tasks,
        preset_ptr=pre_ptr,
        preset_idx=pre_idx,
        join_code=np.array(codes, dtype=np.int32),
        join_n=np.array(ns, dtype=np.int32),
        cancel_ptr=can_ptr,
        cancel_idx=can_idx,
        region_places=_bitset_rows([r[0] for r in regions], n_places),
        region_tasks=_bitset_rows([r[1] for r in regions], n_tasks),
    )


# p0..p4; every join kind over the same places
T_AND, T_XOR, T_AND2, T_THREADS, T_OR, T_PARTIAL, T_EMPTY = range(7)
NET = make_net(
    5,
    presets=[[0], [1, 2], [1, 2], [1, 2], [1, 2, 3], [0, 3], []],
    joins=[JOIN_AND, JOIN_XOR, JOIN_AND, (JOIN_THREADS, 3), JOIN_OR, (JOIN_PARTIAL, 2), JOIN_AND],
    cancels=[[2, 3], [], [], [], [], [4, 0], []],
    regions=[([1, 2], [T_XOR]), ([3], [T_OR, T_PARTIAL])],
)

# more than one 64-bit word of places and of tasks
WIDE = make_net(
    130,
    presets=[[t, t + 64] for t in range(66)] + [[129]],
    joins=[JOIN_AND] * 66 + [JOIN_XOR],
    cancels=[[]] * 66 + [[0, 64, 128, 129]],
    regions=[([0, 63, 64, 127, 128, 129], [0, 65, 66]), ([], [])],
)


# -- tokens ------------------------------------------------------------------------------------


def test_a_new_marking_is_empty(kernels: ModuleType) -> None:
    m = kernels.Marking(NET)
    assert m.tokens() == [0] * 5
    assert m.busy_counts() == [0] * 7
    assert m.marked() == []
    assert m.total() == 0
    assert repr(m) == "Marking(tokens={}, busy={})"


def test_initial_tokens_and_busy_counts(kernels: ModuleType) -> None:
    m = kernels.Marking(NET, tokens=[1, 0, 2, 0, 0], busy=(0, 3, 0, 0, 0, 0, 0))
    assert m.tokens() == [1, 0, 2, 0, 0]
    assert m.busy_counts() == [0, 3, 0, 0, 0, 0, 0]
    assert m.marked() == [0, 2]
    assert m.total() == 3
    assert m.busy(1) == 3
    assert repr(m) == "Marking(tokens={0: 1, 2: 2}, busy={1: 3})"


@pytest.mark.parametrize(
    ("tokens", "busy", "message"),
    [
        ([0] * 4, None, "tokens/busy length does not match the net"),
        (None, [0] * 8, "tokens/busy length does not match the net"),
        ([0, 0, -1, 0, 0], None, "negative token or busy count"),
        (None, [0, 0, 0, 0, 0, 0, -2], "negative token or busy count"),
    ],
)
def test_initial_counts_are_checked(
    kernels: ModuleType, tokens: list[int] | None, busy: list[int] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        kernels.Marking(NET, tokens=tokens, busy=busy)


def test_add_take_clear(kernels: ModuleType) -> None:
    m = kernels.Marking(NET)
    m.add(3)
    m.add(3, 4)
    m.add(1, 0)  # adding nothing marks nothing
    assert (m.get(3), m.marked()) == (5, [3])
    m.take(3, 2)
    assert m.get(3) == 3
    m.take(3, 3)
    assert (m.get(3), m.marked()) == (0, [])
    m.add(4, 2)
    assert m.clear(4) == 2
    assert m.clear(4) == 0
    assert m.marked() == []


def test_add_negative_and_take_too_many_raise_and_change_nothing(kernels: ModuleType) -> None:
    m = kernels.Marking(NET, tokens=[0, 1, 0, 0, 0])
    with pytest.raises(ValueError, match=r"^cannot add a negative number of tokens$"):
        m.add(1, -1)
    with pytest.raises(ValueError, match=r"^place 1 holds 1 tokens, cannot take 2$"):
        m.take(1, 2)
    with pytest.raises(ValueError, match=r"^place 1 holds 1 tokens, cannot take -1$"):
        m.take(1, -1)
    assert m.tokens() == [0, 1, 0, 0, 0]
    assert m.marked() == [1]


def test_busy_counts(kernels: ModuleType) -> None:
    m = kernels.Marking(NET)
    m.busy_add(T_OR, 2)
    m.busy_add(T_OR, -1)
    assert m.busy(T_OR) == 1
    with pytest.raises(ValueError, match=r"^task 4 would have -1 busy items$"):
        m.busy_add(T_OR, -2)
    assert m.busy_counts() == [0, 0, 0, 0, 1, 0, 0]
    m.busy_add(T_OR, -1)
    assert m.busy_counts() == [0] * 7


@pytest.mark.parametrize("bad", [5, 6, 1000])
def test_indices_outside_the_net_raise_index_error(kernels: ModuleType, bad: int) -> None:
    m = kernels.Marking(NET)
    for call in (m.get, m.clear, m.take, lambda p: m.add(p, 1)):
        with pytest.raises(IndexError):
            call(bad)
    m.add(bad, 0)  # adding nothing does not look at the place, in both twins
    for call in (m.busy, m.capacity, m.marked_inputs, m.consume, m.clear_inputs, m.cancel):
        with pytest.raises(IndexError):
            call(bad + 2)
    with pytest.raises(IndexError):
        m.busy_add(bad + 2, 1)
    for call in (m.region_live, m.region_key):
        with pytest.raises(IndexError):
            call(bad - 3)
    assert m.tokens() == [0] * 5


# -- joins -------------------------------------------------------------------------------------


def test_capacity_by_join_kind(kernels: ModuleType) -> None:
    m = kernels.Marking(NET, tokens=[0, 3, 4, 0, 0])
    assert m.capacity(T_AND) == 0
    assert m.capacity(T_XOR) == 7  # one firing per token (multi-merge)
    assert m.capacity(T_AND2) == 3  # the minimum over the inputs
    assert m.capacity(T_THREADS) == 2  # 7 // 3
    assert m.capacity(T_OR) == 1
    assert m.capacity(T_PARTIAL) == 0
    assert m.capacity(T_EMPTY) == 0  # an AND-join without inputs never fires
    m.add(3)
    assert m.capacity(T_PARTIAL) == 1
    assert [m.marked_inputs(t) for t in range(7)] == [0, 2, 2, 2, 3, 1, 0]


def test_consume_and_join(kernels: ModuleType) -> None:
    m = kernels.Marking(NET, tokens=[0, 2, 1, 0, 0])
    assert m.consume(T_AND2) == [1, 2]
    assert m.tokens() == [0, 1, 0, 0, 0]
    with pytest.raises(ValueError, match=r"^task 2: AND-join not enabled$"):
        m.consume(T_AND2)
    with pytest.raises(ValueError, match=r"^task 6: AND-join not enabled$"):
        m.consume(T_EMPTY)
    assert m.tokens() == [0, 1, 0, 0, 0]


def test_consume_xor_join_takes_the_first_marked_input(kernels: ModuleType) -> None:
    m = kernels.Marking(NET, tokens=[0, 0, 2, 0, 0])
    assert m.consume(T_XOR) == [2]
    m.add(1)
    assert m.consume(T_XOR) == [1]
    assert m.consume(T_XOR) == [2]
    with pytest.raises(ValueError, match=r"^task 1: XOR-join not enabled$"):
        m.consume(T_XOR)


def test_consume_thread_merge_takes_n_tokens_in_input_order(kernels: ModuleType) -> None:
    m = kernels.Marking(NET, tokens=[0, 2, 2, 0, 0])
    assert m.consume(T_THREADS) == [1, 2]
    assert m.tokens() == [0, 0, 1, 0, 0]
    with pytest.raises(ValueError, match=r"^task 3: thread merge not enabled$"):
        m.consume(T_THREADS)
    m.add(2, 5)
    assert m.consume(T_THREADS) == [2]
    assert m.tokens() == [0, 0, 3, 0, 0]


def test_consume_or_and_partial_joins_take_one_from_each_marked_input(kernels: ModuleType) -> None:
    m = kernels.Marking(NET, tokens=[1, 2, 0, 1, 0])
    assert m.consume(T_OR) == [1, 3]
    assert m.tokens() == [1, 1, 0, 0, 0]
    assert m.consume(T_PARTIAL) == [0]
    with pytest.raises(ValueError, match=r"^task 5: join not enabled$"):
        m.consume(T_PARTIAL)


def test_consume_failing_part_way_leaves_the_same_state_in_both_twins(kernels: ModuleType) -> None:
    # an AND-join that lists its input twice: the check passes, the second take fails
    net = make_net(2, presets=[[0, 0, 1]], joins=[JOIN_AND])
    m = kernels.Marking(net, tokens=[1, 1])
    with pytest.raises(ValueError, match=r"^place 0 holds 0 tokens, cannot take 1$"):
        m.consume(0)
    assert m.tokens() == [0, 1]
    assert m.marked() == [1]


def test_thread_merge_with_n_zero(kernels: ModuleType) -> None:
    net = make_net(1, presets=[[0]], joins=[(JOIN_THREADS, 0)])
    m = kernels.Marking(net, tokens=[2])
    with pytest.raises(ZeroDivisionError):
        m.capacity(0)
    assert m.consume(0) == []


def test_clear_inputs_and_cancel(kernels: ModuleType) -> None:
    m = kernels.Marking(NET, tokens=[1, 1, 0, 2, 5])
    assert m.clear_inputs(T_OR) == [1, 3]
    assert m.tokens() == [1, 0, 0, 0, 5]
    assert m.cancel(T_PARTIAL) == [4, 0]  # in the order the cancellation set is written
    assert m.tokens() == [0] * 5
    assert m.marked() == []
    assert m.cancel(T_AND) == []
    assert m.cancel(T_XOR) == []


# -- OR-join regions -----------------------------------------------------------------------------


def test_region_live_sees_tokens_and_busy_tasks(kernels: ModuleType) -> None:
    m = kernels.Marking(NET)
    assert (m.region_live(0), m.region_live(1)) == (False, False)
    m.add(2)
    assert (m.region_live(0), m.region_live(1)) == (True, False)
    m.take(2)
    m.busy_add(T_PARTIAL, 1)
    assert (m.region_live(0), m.region_live(1)) == (False, True)
    m.add(4)  # outside every region
    m.busy_add(T_AND, 1)
    m.busy_add(T_PARTIAL, -1)
    assert (m.region_live(0), m.region_live(1)) == (False, False)


def test_region_key_restricts_the_marking_to_the_region(kernels: ModuleType) -> None:
    m = kernels.Marking(NET, tokens=[1, 2, 3, 4, 5], busy=[1, 1, 1, 1, 2, 1, 1])
    assert m.region_key(0) == (1, 2, 2, 3, -1, T_XOR, 1)
    assert m.region_key(1) == (3, 4, -1, T_OR, 2, T_PARTIAL, 1)
    assert kernels.Marking(NET).region_key(0) == (-1,)
    assert type(m.region_key(0)) is tuple


def test_bitsets_past_one_word(kernels: ModuleType) -> None:
    m = kernels.Marking(WIDE)
    assert not m.region_live(0)
    m.add(128)
    assert m.region_live(0)
    assert m.marked() == [128]
    m.add(64, 2)
    m.add(1)
    assert m.marked() == [1, 64, 128]
    assert m.region_key(0) == (64, 2, 128, 1, -1)
    assert m.capacity(0) == 0
    assert m.capacity(1) == 0
    m.add(0)
    assert m.capacity(0) == 1
    assert m.consume(0) == [0, 64]
    m.clear(128)
    m.busy_add(66, 3)
    m.busy_add(65, 1)
    assert m.region_key(0) == (64, 1, -1, 65, 1, 66, 3)
    m.add(129)
    assert m.cancel(66) == [64, 129]
    assert m.marked() == [1]
    assert m.region_key(1) == (-1,)
    assert not m.region_live(1)


# -- copies, equality, repr ----------------------------------------------------------------------


def test_copy_is_independent(kernels: ModuleType) -> None:
    m = kernels.Marking(WIDE, busy=[0] * 66 + [1])
    m.add(100, 3)
    c = m.copy()
    assert type(c) is type(m)
    assert c == m
    c.take(100)
    c.busy_add(66, -1)
    c.add(5)
    assert m.get(100) == 3
    assert m.busy(66) == 1
    assert m.marked() == [100]
    assert m.region_key(0) == (-1, 66, 1)
    assert c.region_key(0) == (-1,)
    assert c != m


def test_equality_compares_tokens_and_busy_counts(kernels: ModuleType) -> None:
    a = kernels.Marking(NET, tokens=[0, 1, 0, 0, 0])
    b = kernels.Marking(NET)
    assert a != b
    b.add(1)
    assert a == b
    b.busy_add(0, 1)
    assert a != b
    assert a != object()
    assert (a == 1) is False
    with pytest.raises(TypeError):
        hash(a)


def test_markings_of_nets_of_different_sizes_differ(kernels: ModuleType) -> None:
    small = make_net(1, presets=[[0], [0]], joins=[JOIN_AND, JOIN_AND])
    other = make_net(2, presets=[[0]], joins=[JOIN_AND])
    assert kernels.Marking(small) != kernels.Marking(other)


# -- the twins -----------------------------------------------------------------------------------


def test_twins_export_the_same_names(py: ModuleType, cy: ModuleType) -> None:
    assert cy.__all__ == py.__all__
    for name in py.__all__:
        assert hasattr(cy, name), name
    for name in ("JOIN_AND", "JOIN_XOR", "JOIN_OR", "JOIN_THREADS", "JOIN_PARTIAL", "KernelNet"):
        assert getattr(cy, name) == getattr(py, name)
    public = {n for n in dir(py.Marking) if not n.startswith("_")}
    assert public <= set(dir(cy.Marking))


def test_twins_do_not_compare_equal_to_each_other(py: ModuleType, cy: ModuleType) -> None:
    assert py.Marking(NET) != cy.Marking(NET)


def test_compiled_docstrings_carry_the_signature(cy: ModuleType) -> None:
    assert "take(self, Py_ssize_t place, int64_t n=1)" in cy.Marking.take.__doc__


def _malformed(**change: Any) -> KernelNet:
    net = make_net(2, presets=[[0], [1]], joins=[JOIN_AND, JOIN_AND])
    for name, value in change.items():
        setattr(net, name, np.asarray(value))
    return net


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"preset_idx": [0, 9]}, r"preset_idx\[1\] is 9, not a place of a net of 2 places"),
        ({"cancel_idx": [-1], "cancel_ptr": [0, 1, 1]}, r"cancel_idx\[0\] is -1"),
        ({"preset_ptr": [0, 2, 1]}, r"preset_ptr decreases at task 1"),
        ({"preset_ptr": [0, 1, 5]}, r"preset_ptr\[2\] is 5, past the end of preset_idx"),
        ({"preset_ptr": [0, 1]}, r"preset_ptr: expected a 1-D array of at least 3 entries"),
        ({"join_code": [0]}, r"join_code: expected a 1-D array of at least 2 entries"),
        ({"region_places": [1, 2]}, r"region_places: expected a 2-D array"),
    ],
)
def test_compiled_twin_rejects_a_malformed_net(cy: ModuleType, change: dict[str, Any], message: str) -> None:
    """The compiled twin reads the net's arrays unchecked, so it checks them once, up front."""
    with pytest.raises(ValueError, match=message):
        cy.Marking(_malformed(**change))


def test_compiled_twin_is_not_stale(cy: ModuleType) -> None:
    """An editable install does not rebuild the extension when the .pyx changes: say so."""
    built = Path(str(cy.__file__))
    source = Path(__file__).resolve().parents[2] / "_hotpath" / "_marking_cy.pyx"
    if not source.parent.samefile(built.parent):
        pytest.skip(f"the compiled twin is not built in place in this checkout ({built})")
    assert built.stat().st_mtime >= source.stat().st_mtime, (
        f"{built.name} is older than {source.name}: rebuild it with YAWLFLOW_CYTHON=1 pip install -e ."
    )


def test_cython_loaded() -> None:
    """``yawlflow._hotpath`` loaded the twin this run was told to expect (yarl's habit)."""
    try:
        importlib.import_module("yawlflow._hotpath._marking_cy")
        built = True
    except ImportError:
        built = False
    if os.environ.get("YAWLFLOW_PURE_PYTHON") == "1":
        assert hotpath.IMPLEMENTATION == "python"
    elif os.environ.get("YAWLFLOW_REQUIRE_CYTHON") == "1":
        assert built, "YAWLFLOW_REQUIRE_CYTHON=1 but the compiled kernels are not built"
        assert hotpath.IMPLEMENTATION == "cython"
    else:
        assert hotpath.IMPLEMENTATION in ("cython", "python")
        assert (hotpath.IMPLEMENTATION == "cython") is built
    expected = "_marking_cy" if hotpath.IMPLEMENTATION == "cython" else "_marking_py"
    assert hotpath.Marking.__module__ == f"yawlflow._hotpath.{expected}"


# -- the twins agree on random nets and random calls (hypothesis) --------------------------------

Op = tuple[str, int, int]
OPS = ("get", "add", "take", "clear", "busy_add", "consume", "clear_inputs", "cancel", "copy", "eq")


@functools.cache
def _id(n: int) -> st.SearchStrategy[int]:
    """An index below ``n``, often one next to a word boundary, so that draws collide."""
    edges = sorted({i for i in (0, 1, 62, 63, 64, 65, 127, 128, n - 2, n - 1) if 0 <= i < n})
    return st.one_of(st.sampled_from(edges), st.integers(0, n - 1))


@functools.cache
def _ids(n: int, max_size: int) -> st.SearchStrategy[list[int]]:
    return st.lists(_id(n), max_size=max_size) if n else st.just([])


def _keyed(n: int, values: st.SearchStrategy[Any], max_size: int) -> st.SearchStrategy[dict[int, Any]]:
    return st.dictionaries(_id(n), values, max_size=max_size) if n else st.just({})


class Case(NamedTuple):
    """A random net (its sparse parts only, so that a falsifying example reads well) and calls."""

    n_places: int
    n_tasks: int
    presets: dict[int, list[int]]
    cancels: dict[int, list[int]]
    joins: dict[int, tuple[int, int]]  # the rest: (JOIN_XOR, 0)
    regions: list[tuple[list[int], list[int]]]
    tokens: dict[int, int]
    busy: dict[int, int]
    ops: list[Op]

    def build(self) -> tuple[KernelNet, list[int], list[int]]:
        net = make_net(
            self.n_places,
            [self.presets.get(t, []) for t in range(self.n_tasks)],
            [self.joins.get(t, (JOIN_XOR, 0)) for t in range(self.n_tasks)],
            cancels=[self.cancels.get(t, []) for t in range(self.n_tasks)],
            regions=self.regions,
        )
        tokens = [self.tokens.get(p, 0) for p in range(self.n_places)]
        return net, tokens, [self.busy.get(t, 0) for t in range(self.n_tasks)]


@st.composite
def st_cases(draw: st.DrawFn) -> Case:
    """Small nets, and large ones (past one 64-bit word of places and of tasks) but sparse: only
    a few tasks have inputs or cancellation sets, so that a failure shrinks quickly."""
    n_places = draw(st.one_of(st.integers(0, 6), st.integers(60, 135)))
    n_tasks = draw(st.one_of(st.integers(0, 6), st.integers(60, 70)))
    presets = draw(_keyed(n_tasks, _ids(n_places, 4), 8))
    cancels = draw(_keyed(n_tasks, _ids(n_places, 4), 4))
    # join codes: the five kinds, and 5, which no twin knows (both treat it like OR)
    joins = draw(_keyed(n_tasks, st.tuples(st.integers(0, 5), st.integers(0, 4)), 8))
    n_regions = draw(st.integers(0, 3))
    regions = [(draw(_ids(n_places, 8)), draw(_ids(n_tasks, 8))) for _ in range(n_regions)]
    tokens = draw(_keyed(n_places, st.integers(1, 3), 10))
    busy = draw(_keyed(n_tasks, st.integers(1, 2), 6))
    # indices: mostly the places and tasks that matter, now and then one past the end
    hot = {n_places, n_tasks, n_regions, *tokens, *busy, *presets, *cancels}
    hot.update(p for row in [*presets.values(), *cancels.values()] for p in row)
    index = st.one_of(st.sampled_from(sorted(hot)), st.integers(0, max(hot)))
    ops = draw(st.lists(st.tuples(st.sampled_from(OPS), index, st.integers(-2, 4)), max_size=25))
    return Case(n_places, n_tasks, presets, cancels, joins, regions, tokens, busy, ops)


def _outcome(call: Callable[..., Any], *args: int) -> tuple[Any, ...]:
    try:
        return ("ok", call(*args))
    except (ValueError, ZeroDivisionError) as exc:
        return ("raised", type(exc), str(exc))
    except IndexError:  # the messages differ (list index vs net size); the type must not
        return ("raised", IndexError)


def _observe(m: Any, net: KernelNet, tasks: Sequence[int] | None = None) -> dict[str, Any]:
    """What the caller can see of a marking (capacities of ``tasks``, default all)."""
    n_regions = net.region_places.shape[0]
    seen = range(net.n_tasks) if tasks is None else [t for t in tasks if t < net.n_tasks]
    return {
        "tokens": m.tokens(),
        "busy_counts": m.busy_counts(),
        "marked": m.marked(),
        "total": m.total(),
        "repr": repr(m),
        "capacity": {t: _outcome(m.capacity, t) for t in seen},
        "marked_inputs": {t: m.marked_inputs(t) for t in seen},
        "region_live": [m.region_live(r) for r in range(n_regions)],
        "region_key": [m.region_key(r) for r in range(n_regions)],
    }


def _step(m: Any, op: Op) -> tuple[Any, ...]:
    name, i, n = op
    if name in ("add", "take", "busy_add"):
        return _outcome(getattr(m, name), i, n)
    return _outcome(getattr(m, name), i)


@pytest.mark.timeout(600)  # passing takes seconds; shrinking a failure can take minutes
@settings(deadline=None)
@given(case=st_cases())
def test_twins_agree(py: ModuleType, cy: ModuleType, case: Case) -> None:
    net, tokens, busy = case.build()
    m_py, m_cy = py.Marking(net, tokens, busy), cy.Marking(net, tokens, busy)
    assert _observe(m_cy, net) == _observe(m_py, net)
    saved: list[tuple[Any, Any, dict[str, Any]]] = []
    for op in case.ops:
        name, i, _ = op
        if name == "copy":
            saved.append((m_py, m_cy, _observe(m_py, net)))
            m_py, m_cy = m_py.copy(), m_cy.copy()
            assert m_cy == saved[-1][1]
        elif name == "eq":
            if saved:
                old_py, old_cy, _ = saved[i % len(saved)]
                assert (m_cy == old_cy) == (m_py == old_py), op
        else:
            assert _step(m_cy, op) == _step(m_py, op), op
        # after each call, the whole state, and the joins of the task it named
        assert _observe(m_cy, net, [i]) == _observe(m_py, net, [i]), op
    assert _observe(m_cy, net) == _observe(m_py, net)
    for old_py, old_cy, seen in saved:  # a copy's changes never reach the original
        assert _observe(old_py, net) == seen
        assert _observe(old_cy, net) == seen


@pytest.mark.parametrize(
    ("tokens", "busy"),
    [(None, [0] * 7), ([1] * 5, None), ([0] * 6, None), ([0, -1, 0, 0, 0], None), (None, [0] * 6 + [-1])],
)
def test_twins_reject_bad_initial_counts_alike(
    py: ModuleType, cy: ModuleType, tokens: list[int] | None, busy: list[int] | None
) -> None:
    assert _outcome(lambda: cy.Marking(NET, tokens, busy).tokens()) == _outcome(
        lambda: py.Marking(NET, tokens, busy).tokens()
    )
