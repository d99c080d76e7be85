"""The MI status kernel (``MIPolicy``): known answers over both twins, the twins against each
other and against the runner's decisions from before the kernel (kept below as the reference)
on random parameters and counters (hypothesis), and the policy the runner builds from a spec."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import yawlflow._hotpath as hotpath
from yawlflow import _mi
from yawlflow._spec._model import InstancesSpec


def _twin(name: str) -> ModuleType:
    """``yawlflow._hotpath._mi_{name}``; the compiled one is skipped, with the reason, when it is
    not built (unless ``YAWLFLOW_REQUIRE_CYTHON=1``, as in CI: then it fails)."""
    try:
        return importlib.import_module(f"yawlflow._hotpath._mi_{name}")
    except ImportError as exc:
        if name == "py" or os.environ.get("YAWLFLOW_REQUIRE_CYTHON") == "1":
            raise
        pytest.skip(
            f"compiled kernels not built ({exc}); testing the pure twin only "
            "(build them with: YAWLFLOW_CYTHON=1 pip install -e .)"
        )


@pytest.fixture(params=["py", "cy"], scope="module")
def mi(request: pytest.FixtureRequest) -> ModuleType:
    """The MI kernel module, once per twin."""
    return _twin(request.param)


@pytest.fixture(scope="module")
def mi_py() -> ModuleType:
    return _twin("py")


@pytest.fixture(scope="module")
def mi_cy() -> ModuleType:
    return _twin("cy")


# -- known answers ---------------------------------------------------------------------------------


def test_join_all_waits_for_every_instance(mi: ModuleType) -> None:
    p = mi.MIPolicy(join=mi.MI_JOIN_ALL)
    assert p.join_status(3, 2, 2, 1, False) == mi.MI_RUNNING
    assert p.join_status(3, 3, 1, 0, False) == mi.MI_ALL_ENDED  # ended, completed or not
    assert p.join_status(3, 3, 3, 1, False) == mi.MI_RUNNING  # one still live
    assert p.join_status(0, 0, 0, 0, False) == mi.MI_ALL_ENDED
    assert p.join_status(3, 3, 3, 0, True) == mi.MI_IDLE  # the task completed already


def test_join_none_never_decides(mi: ModuleType) -> None:
    p = mi.MIPolicy(join=mi.MI_JOIN_NONE, threshold=1)
    assert p.join_status(3, 3, 3, 0, False) == mi.MI_IDLE


def test_int_threshold(mi: ModuleType) -> None:
    p = mi.MIPolicy(join=mi.MI_JOIN_THRESHOLD, threshold=2)
    assert p.join_status(4, 1, 1, 3, False) == mi.MI_RUNNING
    assert p.join_status(4, 2, 2, 2, False) == mi.MI_THRESHOLD
    assert p.join_status(4, 4, 1, 0, False) == mi.MI_ALL_ENDED  # every instance ended first
    p = mi.MIPolicy(join=mi.MI_JOIN_ALL, threshold=2, cancel_rest=True)  # any threshold counts
    assert p.join_status(4, 2, 2, 2, False) == mi.MI_THRESHOLD_CANCEL


def test_cel_threshold_is_asked_for(mi: ModuleType) -> None:
    p = mi.MIPolicy(join=mi.MI_JOIN_THRESHOLD, threshold_cel=True)
    assert p.join_status(4, 1, 1, 3, False) == mi.MI_ASK
    assert p.join_status(4, 1, 1, 3, False, mi.CEL_UNKNOWN) == mi.MI_ASK
    assert p.join_status(4, 4, 4, 0, False) == mi.MI_ASK  # asked before "all ended", as before
    assert p.join_status(4, 1, 1, 3, False, 1) == mi.MI_THRESHOLD
    assert p.join_status(4, 1, 1, 3, False, 0) == mi.MI_RUNNING
    assert p.join_status(4, 4, 4, 0, False, 0) == mi.MI_ALL_ENDED
    assert p.join_status(4, 4, 4, 0, True) == mi.MI_IDLE  # done: nothing to ask


def test_add_status(mi: ModuleType) -> None:
    assert mi.MIPolicy(join=mi.MI_JOIN_ALL).add_status(0) == mi.ADD_STATIC
    assert mi.MIPolicy(join=mi.MI_JOIN_ALL, max=2).add_status(5) == mi.ADD_STATIC  # checked first
    p = mi.MIPolicy(join=mi.MI_JOIN_ALL, dynamic=True, max=3)
    assert [p.add_status(n) for n in (0, 2, 3, 4)] == [mi.ADD_OK, mi.ADD_OK, mi.ADD_AT_MAX, mi.ADD_AT_MAX]
    assert mi.MIPolicy(join=mi.MI_JOIN_ALL, dynamic=True).add_status(10**6) == mi.ADD_OK


def test_count_ok(mi: ModuleType) -> None:
    p = mi.MIPolicy(join=mi.MI_JOIN_ALL, min=2, max=4)
    assert [p.count_ok(n) for n in (-1, 1, 2, 4, 5, 10**30, -(10**30))] == [False, False, True, True, False,
                                                                          False, False]
    p = mi.MIPolicy(join=mi.MI_JOIN_ALL)
    assert [p.count_ok(n) for n in (-1, 0, 10**30)] == [False, True, True]


def test_attributes_and_repr(mi: ModuleType) -> None:
    p = mi.MIPolicy(join=mi.MI_JOIN_THRESHOLD, threshold=3, min=1, max=9, dynamic=True, cancel_rest=True)
    assert (p.join, p.threshold, p.threshold_cel, p.min, p.max, p.dynamic, p.cancel_rest) == (
        mi.MI_JOIN_THRESHOLD, 3, False, 1, 9, True, True)
    assert repr(p) == ("MIPolicy(join=1, threshold=3, threshold_cel=False, min=1, max=9, dynamic=True, "
                       "cancel_rest=True)")
    q = mi.MIPolicy(join=mi.MI_JOIN_ALL, threshold_cel=True)
    assert (q.threshold, q.threshold_cel, q.min, q.max) == (None, True, 0, None)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"join": 7}, ValueError, r"^MIPolicy: unknown join code 7$"),
        ({"join": 0, "threshold": 2, "threshold_cel": True}, ValueError,
         r"^MIPolicy: a threshold is an int or a CEL condition, not both$"),
        ({"join": 0, "threshold": "completed > 1"}, TypeError, r"^MIPolicy: threshold must be an int, not str$"),
        ({"join": 0, "min": None}, TypeError, r"^MIPolicy: min must be an int, not NoneType$"),
        ({"join": 0, "max": True}, TypeError, r"^MIPolicy: max must be an int, not bool$"),
        ({"join": 0, "max": 2**63}, OverflowError, r"^MIPolicy: max 9223372036854775808 does not fit in 64 bits$"),
        ({"join": "all"}, TypeError, r"^MIPolicy: join must be an int, not str$"),
    ],
)
def test_both_twins_reject_bad_parameters_alike(mi: ModuleType, kwargs: dict[str, Any], error: type[Exception],
                                                message: str) -> None:
    with pytest.raises(error, match=message):
        mi.MIPolicy(**kwargs)


# -- the twins -------------------------------------------------------------------------------------


def test_twins_export_the_same_names(mi_py: ModuleType, mi_cy: ModuleType) -> None:
    assert mi_cy.__all__ == mi_py.__all__
    for name in mi_py.__all__:
        assert hasattr(mi_cy, name), name
        if name.isupper():
            assert getattr(mi_cy, name) == getattr(mi_py, name), name
    public = {n for n in dir(mi_py.MIPolicy) if not n.startswith("_")}
    assert public <= set(dir(mi_cy.MIPolicy))


def test_hotpath_loads_the_twin_of_the_marking_kernel() -> None:
    want = "_mi_cy" if hotpath.IMPLEMENTATION == "cython" else "_mi_py"
    assert hotpath.MIPolicy.__module__ == f"yawlflow._hotpath.{want}"


class Params(NamedTuple):
    join: str  # as in the spec
    threshold: int | str | None  # a str stands for a CEL condition
    cancel_rest: bool
    dynamic: bool
    min: int | None
    max: int | None


def _policy(mod: ModuleType, p: Params) -> Any:
    codes = {"all": mod.MI_JOIN_ALL, "threshold": mod.MI_JOIN_THRESHOLD, "none": mod.MI_JOIN_NONE}
    return mod.MIPolicy(
        join=codes[p.join], threshold=p.threshold if isinstance(p.threshold, int) else None,
        threshold_cel=isinstance(p.threshold, str), min=p.min or 0, max=p.max, dynamic=p.dynamic,
        cancel_rest=p.cancel_rest,
    )


# The reference: engine/_mi.py's decisions before the kernel, restated over the same inputs.
def ref_check_join(p: Params, created: int, finished: int, completed: int, live: int, done: bool,
                   cel: bool) -> str:
    """What the old ``_check_join`` did: "idle" (returned), "threshold" (completed it, withdrawing
    the rest with cancel_rest), "all" (completed it), "running" (nothing)."""
    if done or p.join == "none":
        return "idle"
    threshold = p.threshold
    if threshold is None:
        met = False
    elif isinstance(threshold, int):
        met = completed >= threshold
    else:
        met = cel
    if (p.join == "threshold" or p.threshold is not None) and met:
        return "threshold-cancel" if p.cancel_rest else "threshold"
    if finished >= created and live == 0:
        return "all"
    return "running"


def ref_add(p: Params, created: int) -> str:
    if not p.dynamic:
        return "static"
    if p.max is not None and created >= p.max:
        return "max"
    return "ok"


def ref_count_ok(p: Params, n: int) -> bool:
    lo = p.min if p.min is not None else 0
    return not (n < lo or (p.max is not None and n > p.max))


NAMES = {"MI_IDLE": "idle", "MI_THRESHOLD": "threshold", "MI_THRESHOLD_CANCEL": "threshold-cancel",
         "MI_ALL_ENDED": "all", "MI_RUNNING": "running", "ADD_OK": "ok", "ADD_STATIC": "static",
         "ADD_AT_MAX": "max"}

small = st.integers(0, 6)
params = st.builds(
    Params,
    join=st.sampled_from(["all", "threshold", "none"]),
    threshold=st.one_of(st.none(), st.integers(-1, 6), st.just("completed > 1")),
    cancel_rest=st.booleans(),
    dynamic=st.booleans(),
    min=st.one_of(st.none(), small),
    max=st.one_of(st.none(), st.integers(-1, 6)),
)


def _answers(mod: ModuleType, p: Params, counters: tuple[int, int, int, int, bool], cel: bool,
             n: int) -> tuple[Any, ...]:
    names = {getattr(mod, k): v for k, v in NAMES.items() if k.startswith("MI_")}
    adds = {getattr(mod, k): v for k, v in NAMES.items() if k.startswith("ADD_")}
    policy = _policy(mod, p)
    status = policy.join_status(*counters)
    if status == mod.MI_ASK:
        status = policy.join_status(*counters, int(cel))
    return names[status], adds[policy.add_status(counters[0])], policy.count_ok(n)


@settings(deadline=None, max_examples=500)
@given(p=params, counters=st.tuples(small, small, small, small, st.booleans()), cel=st.booleans(),
       n=st.one_of(st.integers(-2, 8), st.integers(-(2**70), 2**70)))
def test_twins_agree_with_each_other_and_with_the_code_before_the_kernel(
    mi_py: ModuleType, mi_cy: ModuleType, p: Params, counters: tuple[int, int, int, int, bool], cel: bool, n: int
) -> None:
    expect = (ref_check_join(p, *counters, cel), ref_add(p, counters[0]), ref_count_ok(p, n))
    assert _answers(mi_py, p, counters, cel, n) == expect
    assert _answers(mi_cy, p, counters, cel, n) == expect


# -- the policy the runner builds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        (InstancesSpec(), (hotpath.MI_JOIN_ALL, None, False, 0, None, False, False)),
        (InstancesSpec(join="threshold", threshold=2, cancel_rest=True, min=1, max=5, creation="dynamic"),
         (hotpath.MI_JOIN_THRESHOLD, 2, False, 1, 5, True, True)),
        (InstancesSpec(join="none", threshold="completed >= 2"), (hotpath.MI_JOIN_NONE, None, True, 0, None, False,
                                                                  False)),
        (InstancesSpec(threshold=10**30, max=10**30), (hotpath.MI_JOIN_ALL, 2**63 - 1, False, 0, 2**63 - 1, False,
                                                       False)),
    ],
)
def test_runner_policy_from_a_spec(spec: InstancesSpec, fields: tuple[Any, ...]) -> None:
    p = _mi.policy(spec)
    assert (p.join, p.threshold, p.threshold_cel, p.min, p.max, p.dynamic, p.cancel_rest) == fields
    assert _mi.policy(spec) is p  # made once per spec
