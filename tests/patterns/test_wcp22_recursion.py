"""WCP-22 Recursion: a task's decomposition may invoke its own enclosing net; each invocation has
its own state (a sub-case with its own id, `case.started` and `case.completed`), and the caller
resumes after the callee completes."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# `recurse` runs the net it belongs to. Its input mapping hands the callee its own copy of the
# counters; its output mapping takes back only the path, so each level keeps its own depth.
SPEC = yf.loads(
    """
yawlflow: 1
id: wcp22
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      enter:
        run: descend
        split: xor
        flows:
          - {to: recurse, when: "depth < max"}
          - {to: leave, default: true}
      recurse:
        net: main
        input: {depth: depth, max: max, path: path}
        output: {path: path}
        flows: [leave]
      leave: {run: ascend, flows: [end]}
""",
    source="wcp22.yaml",
)

# The base case is external work, so the innermost invocation can be held open.
SPEC_HELD = yf.loads(
    """
yawlflow: 1
id: wcp22_held
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      enter:
        run: descend
        split: xor
        flows:
          - {to: recurse, when: "depth < max"}
          - {to: base, default: true}
      base: {external: true, flows: [leave]}
      recurse: {net: main, output: {path: path}, flows: [leave]}
      leave: {run: ascend, flows: [end]}
""",
    source="wcp22_held.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _handlers() -> dict[str, Any]:
    def descend(data: dict[str, Any]) -> dict[str, Any]:
        depth = data["depth"] + 1
        return {"depth": depth, "path": [*data["path"], f"in{depth}"]}

    def ascend(data: dict[str, Any]) -> dict[str, Any]:
        return {"path": [*data["path"], f"out{data['depth']}"]}

    return {"descend": descend, "ascend": ascend}


def _case_ids(trace: list[dict[str, Any]]) -> list[str]:
    return [e["case"] for e in _events(trace, "case.started")]


@pytest.mark.anyio
@pytest.mark.parametrize("max_depth", [1, 3])
async def test_each_invocation_is_its_own_sub_case(max_depth: int) -> None:
    async with yf.Engine(clock=FakeClock(), handlers=_handlers()) as engine:
        case = await engine.start(SPEC, {"depth": 0, "max": max_depth, "path": []})
        result = await case.result()
    assert result.status == "completed", result.error
    expected = [f"in{d}" for d in range(1, max_depth + 1)] + [f"out{d}" for d in range(max_depth, 0, -1)]
    assert result.data["path"] == expected
    assert result.data["depth"] == 1  # the root's own depth: callees did not overwrite it

    trace = result.trace
    ids = _case_ids(trace)
    assert len(ids) == len(set(ids)) == max_depth  # the root and max_depth - 1 recursive calls
    assert ids[0] == case.id
    for parent, child in itertools.pairwise(ids):
        assert child.startswith(parent + "/")  # sub-case ids derive from the caller's
    for cid in ids:
        own = [e for e in trace if e["case"] == cid]
        lifecycle = [e["event"] for e in own if e["event"].startswith("case.")]
        assert lifecycle == ["case.started", "case.completed"]
        assert [e["seq"] for e in own] == list(range(len(own)))  # seq counts from 0 in each case

    # The caller resumes only after its callee completed.
    for parent, child in itertools.pairwise(ids):
        pos = {id(e): i for i, e in enumerate(trace)}
        callee_done = next(e for e in trace if e["case"] == child and e["event"] == "case.completed")
        caller_resumes = next(e for e in trace if e["case"] == parent and e["event"] == "item.completed"
                              and e["task"] == "recurse")
        caller_leave = next(e for e in trace if e["case"] == parent and e["event"] == "item.started"
                            and e["task"] == "leave")
        assert pos[id(callee_done)] < pos[id(caller_resumes)] < pos[id(caller_leave)]
        callee_started = next(e for e in trace if e["case"] == child and e["event"] == "case.started")
        caller_calls = next(e for e in trace if e["case"] == parent and e["event"] == "item.started"
                            and e["task"] == "recurse")
        assert pos[id(caller_calls)] < pos[id(callee_started)]


@pytest.mark.anyio
async def test_callers_wait_while_the_innermost_invocation_is_held() -> None:
    async with yf.Engine(clock=FakeClock(), handlers=_handlers()) as engine:
        case = await engine.start(SPEC_HELD, {"depth": 0, "max": 3, "path": []})
        await case.idle()
        ids = _case_ids(case.trace)
        assert len(ids) == 3
        root, mid, inner = (engine.case(i) for i in ids)
        assert root is case
        for caller in (root, mid):
            assert caller.status == "running"
            assert [(w.task, w.state) for w in caller.work_items()] == [("recurse", "started")]
        assert [(w.task, w.state) for w in inner.work_items()] == [("base", "offered")]
        assert not _events(case.trace, task="leave")
        assert inner.data["depth"] == 3 and mid.data["depth"] == 2 and root.data["depth"] == 1

        (base,) = inner.work_items("offered")
        with pytest.raises(yf.InvalidEventError):
            await root.complete(base.id)  # the item belongs to the innermost case, not the root
        await inner.complete(base.id, {"path": [*inner.data["path"], "base"]})
        result = await case.result()

    assert result.status == "completed", result.error
    assert result.data["path"] == ["in1", "in2", "in3", "base", "out3", "out2", "out1"]
    assert [c.status for c in (root, mid, inner)] == ["completed"] * 3
    trace = result.trace
    done = [e["case"] for e in _events(trace, "case.completed")]
    assert done == [inner.id, mid.id, root.id]  # callees finish first, innermost first


def test_run_waits_on_the_innermost_offer() -> None:
    result = yf.run(SPEC_HELD, {"depth": 0, "max": 2, "path": []}, seed=4, handlers=_handlers())
    assert result.status == "waiting"
    (offer,) = result.offered
    assert offer.task == "base"
    assert offer.case != result.case_id and offer.case.startswith(result.case_id + "/")


@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_recursion_is_reproducible(seed: int) -> None:
    data = {"depth": 0, "max": 3, "path": []}
    runs = [
        yf.run(SPEC, data, seed=seed, handlers=_handlers()),
        yf.run(SPEC, data, seed=seed, handlers=_handlers()),
        yf.run(SPEC, data, seed=seed, handlers=_handlers(), backend="trio"),
    ]
    assert runs[0].status == "completed"
    assert runs[0].trace == runs[1].trace == runs[2].trace
    assert len(set(_case_ids(runs[0].trace))) == 3


@pytest.mark.anyio
async def test_cancelling_the_root_cancels_every_invocation() -> None:
    async with yf.Engine(clock=FakeClock(), handlers=_handlers()) as engine:
        case = await engine.start(SPEC_HELD, {"depth": 0, "max": 3, "path": []})
        await case.idle()
        subs = [engine.case(i) for i in _case_ids(case.trace)]
        await case.cancel()
        with anyio.fail_after(10):
            await case.result()
    assert [c.status for c in subs] == ["cancelled"] * 3
