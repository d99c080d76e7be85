"""The enabled-set kernel: one call checks every task; both twins agree with capacity()."""

from __future__ import annotations

from types import ModuleType

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from yawlflow._hotpath import JOIN_AND, JOIN_OR, JOIN_PARTIAL, JOIN_THREADS, JOIN_XOR, KernelNet


def _net(n_places: int, presets: list[list[int]], joins: list[tuple[int, int]]) -> KernelNet:
    ptr = np.zeros(len(presets) + 1, dtype=np.int32)
    ptr[1:] = np.cumsum([len(p) for p in presets])
    idx = np.array([x for p in presets for x in p], dtype=np.int32)
    empty = np.zeros(len(presets) + 1, dtype=np.int32)
    return KernelNet(
        n_places=n_places, n_tasks=len(presets), preset_ptr=ptr, preset_idx=idx,
        join_code=np.array([j for j, _ in joins], dtype=np.int32),
        join_n=np.array([n for _, n in joins], dtype=np.int32),
        cancel_ptr=empty, cancel_idx=np.zeros(0, dtype=np.int32),
        region_places=np.zeros((0, (n_places + 63) // 64 or 1), dtype=np.uint64),
        region_tasks=np.zeros((0, (len(presets) + 63) // 64 or 1), dtype=np.uint64),
    )


def test_enabled_by_join_kind(kernels: ModuleType) -> None:
    net = _net(3, [[0, 1], [0, 1], [1, 2], [0, 2], [2], []],
               [(JOIN_AND, 0), (JOIN_XOR, 0), (JOIN_OR, 0), (JOIN_THREADS, 2), (JOIN_PARTIAL, 1), (JOIN_XOR, 0)])
    m = kernels.Marking(net, [1, 0, 0])
    assert list(m.enabled()) == [1]  # only the XOR join sees place 0 alone
    m.add(2, 1)
    assert list(m.enabled()) == [1, 2, 3, 4]  # OR and partial see place 2; threads: 1 + 1 >= 2
    m.add(1, 1)
    assert list(m.enabled()) == [0, 1, 2, 3, 4]
    assert list(m.enabled()) == [t for t in range(6) if m.capacity(t) > 0]
    assert m.enabled().typecode == "i"


@st.composite
def nets_and_tokens(draw: st.DrawFn) -> tuple[KernelNet, list[int]]:
    n_places = draw(st.integers(1, 70))
    n_tasks = draw(st.integers(0, 70))
    presets = [draw(st.lists(st.integers(0, n_places - 1), max_size=4, unique=True)) for _ in range(n_tasks)]
    joins = [
        (code, draw(st.integers(1, 3)) if code in (JOIN_THREADS, JOIN_PARTIAL) else 0)
        for code in (draw(st.sampled_from([JOIN_AND, JOIN_XOR, JOIN_OR, JOIN_THREADS, JOIN_PARTIAL]))
                     for _ in range(n_tasks))
    ]
    tokens = draw(st.lists(st.integers(0, 3), min_size=n_places, max_size=n_places))
    return _net(n_places, presets, joins), tokens


@settings(max_examples=200)
@given(case=nets_and_tokens())
def test_enabled_is_the_tasks_with_capacity_in_both_twins(py: ModuleType, case: tuple[KernelNet, list[int]]) -> None:
    net, tokens = case
    m = py.Marking(net, tokens)
    expected = [t for t in range(net.n_tasks) if m.capacity(t) > 0]
    assert list(m.enabled()) == expected


@settings(max_examples=200)
@given(case=nets_and_tokens())
def test_the_twins_agree_on_the_enabled_set(py: ModuleType, cy: ModuleType, case: tuple[KernelNet, list[int]]) -> None:
    net, tokens = case
    assert cy.Marking(net, tokens).enabled() == py.Marking(net, tokens).enabled()  # array == array
