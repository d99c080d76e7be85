"""WCP-27 Complete Multiple Instance Activity: forced completion -- no new instances, the running
ones are withdrawn, and the successor is triggered at once.

yawlflow: a task whose ``completes`` names the MI task, or ``case.force_complete(task)``. The
finished instances' outputs are gathered under ``as``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp27
nets:
  main:
    input: start
    output: end
    tasks:
      s: {split: and, flows: [a, enough]}
      a: {external: true, instances: {count: 4, creation: dynamic, as: results}, flows: [b]}
      b: {external: true, join: and, flows: [end]}
      enough: {external: true, completes: [a], flows: [b]}
""",
    source="wcp27.yaml",
)

SPEC_API = yf.loads(
    """
yawlflow: 1
id: wcp27_api
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, instances: {count: 3, creation: dynamic, as: results}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp27_api.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp27_auto
nets:
  main:
    input: start
    output: end
    tasks:
      s: {split: and, flows: [a, enough]}
      a: {run: work, instances: {count: 4, as: results}, flows: [b]}
      enough: {run: decide, completes: [a], flows: [b]}
      b: {run: succ, join: and, flows: [end]}
""",
    source="wcp27_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _whole(trace: Trace, event: str, task: str) -> Trace:
    return [e for e in _events(trace, event, task) if e["instance"] is None]


def _inst(trace: Trace, event: str, task: str) -> Trace:
    return [e for e in _events(trace, event, task) if e["instance"] is not None]


@pytest.mark.anyio
async def test_completes_withdraws_live_instances_gathers_finished_and_triggers_at_once() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        a = {w.instance: w.id for w in case.work_items() if w.task == "a" and w.instance is not None}
        (enough,) = [w.id for w in case.work_items() if w.task == "enough"]
        await case.complete(a[2], {"v": 2})
        await case.complete(a[0], {"v": 0})
        await case.start_item(a[3])
        before = len(case.trace)
        await case.complete(enough)
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert step[:2] == [("item.started", "enough", None), ("item.completed", "enough", None)]
        assert sorted(step[2:4]) == [("item.cancelled", "a", 1), ("item.cancelled", "a", 3)]
        assert step[4:] == [
            ("item.completed", "a", None),  # a completes as a whole, once
            ("item.enabled", "b", None), ("item.offered", "b", None),  # and b is triggered at once
        ]
        assert case.trace[before + 4]["data"] == {"results": [{"v": 0}, {"v": 2}]}
        assert case.data["results"] == [{"v": 0}, {"v": 2}]
        assert [w.task for w in case.work_items()] == ["b"]
        with pytest.raises(yf.InvalidEventError):
            await case.add_instance("a")  # no new instances
        for i in (1, 3):
            with pytest.raises(yf.InvalidEventError):
                await case.complete(a[i], {"v": i})
        with pytest.raises(yf.InvalidEventError):
            await case.force_complete("a")  # already complete
        (b,) = case.work_items("offered")
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"
    trace = result.trace
    assert len(_whole(trace, "item.completed", "a")) == 1
    assert len(_events(trace, "item.completed", "b")) == 1
    assert result.data["results"] == [{"v": 0}, {"v": 2}]


@pytest.mark.anyio
async def test_force_complete_through_the_api() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_API, {})
        a = {w.instance: w.id for w in case.work_items() if w.instance is not None}
        await case.add_instance("a")
        a = {w.instance: w.id for w in case.work_items() if w.instance is not None}
        await case.complete(a[3], {"v": 3})
        before = len(case.trace)
        await case.force_complete("a")
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert sorted(x for x in step if x[0] == "item.cancelled") == [
            ("item.cancelled", "a", 0), ("item.cancelled", "a", 1), ("item.cancelled", "a", 2)
        ]
        assert step[-3:] == [("item.completed", "a", None), ("item.enabled", "b", None), ("item.offered", "b", None)]
        assert case.data["results"] == [{"v": 3}]
        (b,) = case.work_items()
        assert b.task == "b"
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"


@pytest.mark.anyio
async def test_force_complete_with_nothing_finished_gathers_nothing() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_API, {})
        await case.force_complete("a")
        assert case.data["results"] == []
        assert [w.task for w in case.work_items()] == ["b"]
        await case.cancel()


@pytest.mark.anyio
async def test_force_complete_of_a_task_not_running_or_not_mi_raises() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_API, {})
        before = len(case.trace)
        with pytest.raises(yf.InvalidEventError):
            await case.force_complete("b")  # not a multiple-instance task
        with pytest.raises(yf.InvalidEventError):
            await case.force_complete("nope")
        assert len(case.trace) == before
        for w in case.work_items():
            await case.complete(w.id)
        with pytest.raises(yf.InvalidEventError):
            await case.force_complete("a")  # completed already
        await case.cancel()


@pytest.mark.anyio
async def test_running_instances_are_halted_by_forced_completion() -> None:
    halted: list[int] = []
    entered = 0
    all_in = anyio.Event()
    log: list[Any] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        nonlocal entered
        entered += 1
        if entered == 4:
            all_in.set()
        returned = False
        try:
            if data["item"] == 2:
                returned = True
                return {"v": 2}
            await anyio.sleep_forever()
        finally:
            if not returned:
                halted.append(data["item"])
        raise AssertionError("unreachable")

    async def decide(data: dict[str, Any]) -> None:
        await all_in.wait()
        for _ in range(5):
            await anyio.lowlevel.checkpoint()  # let instance 2 finish

    async def succ(data: dict[str, Any]) -> None:
        log.append(("b", data["results"]))

    handlers = {"work": work, "decide": decide, "succ": succ}
    async with yf.Engine(clock=FakeClock(), handlers=handlers) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
    assert result.status == "completed", result.error
    assert sorted(halted) == [0, 1, 3]
    assert log == [("b", [{"v": 2}])]


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_successor_once_with_what_finished_before(seed: int) -> None:
    log: list[Any] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        log.append(data["item"])
        return {"v": data["item"]}

    async def decide(data: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        log.append("enough")

    async def succ(data: dict[str, Any]) -> None:
        log.append(("b", [r["v"] for r in data["results"]]))

    handlers = {"work": work, "decide": decide, "succ": succ}
    async with yf.Engine(seed=seed, clock=FakeClock(), handlers=handlers) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    trace = result.trace
    finished = sorted(e["instance"] for e in _inst(trace, "item.completed", "a"))
    cancelled = sorted(e["instance"] for e in _inst(trace, "item.cancelled", "a"))
    assert sorted(finished + cancelled) == [0, 1, 2, 3]
    b_runs = [x for x in log if isinstance(x, tuple)]
    assert b_runs == [("b", finished)]  # once, with exactly the instances finished by then
    assert len(_whole(trace, "item.completed", "a")) == 1
    assert "enough" in log and log.index("enough") < len(log) - 1
    if cancelled:  # forced: a completed in the step of `enough`, right after it
        enough_done = _events(trace, "item.completed", "enough")[0]["seq"]
        assert _whole(trace, "item.completed", "a")[0]["seq"] == enough_done + 1 + len(cancelled)
