"""WCP-36 Dynamic Partial Join for Multiple Instances: instances may be added while the task runs;
a completion condition, checked at each completion, triggers the successor once; later
completions have no effect.

yawlflow: ``instances: {creation: dynamic, threshold: <CEL over completed, instances, results>}``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# Two approvals are needed; each reviewer may approve or not, and more reviewers may be added.
SPEC = yf.loads(
    """
yawlflow: 1
id: wcp36
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a:
        external: true
        instances:
          count: 2
          max: 6
          creation: dynamic
          threshold: "results.filter(r, r.ok).size() >= 2"
          as: votes
        flows: [b]
      b: {external: true, flows: [end]}
""",
    source="wcp36.yaml",
)

# A majority of the instances created so far: adding instances raises the bar.
SPEC_MAJORITY = yf.loads(
    """
yawlflow: 1
id: wcp36_majority
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {external: true, instances: {count: 1, creation: dynamic, threshold: "completed * 2 > instances"},
          flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp36_majority.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp36_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, instances: {count: 1, creation: dynamic, max: 8, threshold: "completed >= 3", as: got},
          flows: [b]}
      b: {run: after, flows: [end]}
""",
    source="wcp36_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _whole(trace: Trace, event: str, task: str) -> Trace:
    return [e for e in _events(trace, event, task) if e["instance"] is None]


def _inst(trace: Trace, event: str, task: str) -> Trace:
    return [e for e in _events(trace, event, task) if e["instance"] is not None]


def _instances(case: yf.Case) -> dict[int, int]:
    return {w.instance: w.id for w in case.work_items() if w.task == "a" and w.instance is not None}


@pytest.mark.anyio
async def test_added_instances_count_and_the_successor_fires_once() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        live = _instances(case)
        await case.add_instance("a", {"who": "carol"})
        await case.add_instance("a", {"who": "dave"})
        assert sorted(_instances(case)) == [0, 1, 2, 3]
        await case.complete(live[0], {"ok": False})
        assert not _events(case.trace, task="b")
        await case.complete(_instances(case)[2], {"ok": True})
        assert not _events(case.trace, task="b")  # one approval so far
        await case.complete(_instances(case)[1], {"ok": False})
        assert not _events(case.trace, task="b")
        await case.add_instance("a", {"who": "erin"})
        before = len(case.trace)
        await case.complete(_instances(case)[4], {"ok": True})  # the added one makes it true
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert step == [
            ("item.started", "a", 4), ("item.completed", "a", 4),
            ("item.completed", "a", None), ("item.enabled", "b", None), ("item.offered", "b", None),
        ]
        assert case.data["votes"] == [{"ok": False}, {"ok": False}, {"ok": True}, {"ok": True}]
        # instance 3 still runs; its completion has no effect
        assert sorted(_instances(case)) == [3]
        with pytest.raises(yf.InvalidEventError):
            await case.add_instance("a")  # the task has completed: no more instances
        before = len(case.trace)
        await case.complete(_instances(case)[3], {"ok": True, "late": 1})
        assert [(e["event"], e["instance"]) for e in case.trace[before:]] == [
            ("item.started", 3), ("item.completed", 3)
        ]
        assert "late" not in case.data and len(case.data["votes"]) == 4
        (b,) = case.work_items("offered")
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"
    assert len(_whole(result.trace, "item.completed", "a")) == 1
    assert len(_events(result.trace, "item.enabled", "b")) == 1


@pytest.mark.anyio
async def test_the_condition_sees_the_instances_created_so_far() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_MAJORITY, {})
        await case.add_instance("a")
        await case.add_instance("a")
        live = _instances(case)
        await case.complete(live[0])  # 1 of 3: no majority
        assert not _events(case.trace, task="b")
        await case.add_instance("a")
        await case.add_instance("a")
        await case.complete(live[1])  # 2 of 5: still none
        assert not _events(case.trace, task="b")
        await case.complete(live[2])  # 3 of 5: majority
        assert [w.task for w in case.work_items("offered") if w.task == "b"] == ["b"]
        assert sorted(_instances(case)) == [3, 4]  # the rest run on (not WCP-35)
        for i in _instances(case).values():
            await case.complete(i)
        assert len(_events(case.trace, "item.enabled", "b")) == 1
        await case.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_successor_once_when_the_condition_first_holds(seed: int) -> None:
    case_ref: list[yf.Case] = []
    log: list[Any] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        if data["item"] == 0:  # the first instance asks for four more while it runs
            for k in range(4):
                await case_ref[0].add_instance("a", {"k": k})
                await anyio.lowlevel.checkpoint()
        log.append(data["item"])
        return {"i": data["item"]}

    async def after(data: dict[str, Any]) -> None:
        log.append(("b", len(data["got"])))

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"work": work, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            case_ref.append(case)
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(x for x in log if isinstance(x, int)) == [0, 1, 2, 3, 4]
    assert [x for x in log if isinstance(x, tuple)] == [("b", 3)]
    trace = result.trace
    done = _inst(trace, "item.completed", "a")
    assert len(done) == 5 and not _events(trace, "item.cancelled")
    (whole,) = _whole(trace, "item.completed", "a")
    assert whole["seq"] == done[2]["seq"] + 1  # fired at the third completion, not later
    assert result.data["got"] == sorted(({"i": e["instance"]} for e in done[:3]), key=lambda r: r["i"])
