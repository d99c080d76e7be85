"""WCP-26 Cancel Multiple Instance Activity: all unfinished instances are withdrawn, no new ones
are created, and the successor is not triggered.

yawlflow: a task whose ``cancels`` names the MI task. The MI task as a whole never completes.
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
id: wcp26
nets:
  main:
    input: start
    output: end
    tasks:
      s: {split: and, flows: [a, stop]}
      a: {external: true, instances: {count: 3, creation: dynamic, as: results}, flows: [b]}
      b: {external: true, flows: [j]}
      stop: {external: true, cancels: [a], flows: [after]}
      after: {external: true, flows: [j]}
      j: {join: xor, flows: [end]}
""",
    source="wcp26.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp26_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      s: {split: and, flows: [a, stop]}
      a: {run: work, instances: {count: 4}, flows: [b]}
      b: {run: succ, flows: [end]}
      stop: {run: stopper, cancels: [a], flows: [end]}
""",
    source="wcp26_auto.yaml",
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
async def test_cancel_withdraws_the_unfinished_instances_and_never_triggers_the_successor() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        a = {w.instance: w.id for w in case.work_items() if w.task == "a" and w.instance is not None}
        (stop,) = [w.id for w in case.work_items() if w.task == "stop"]
        await case.complete(a[1], {"one": 1})  # one finished before the cancellation
        await case.add_instance("a")
        a = {w.instance: w.id for w in case.work_items() if w.task == "a" and w.instance is not None}
        await case.start_item(a[0])  # one started, one offered, one added
        before = len(case.trace)
        await case.complete(stop)
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        cancelled = [x for x in step if x[0] == "item.cancelled" and x[2] is not None]
        assert sorted(cancelled) == [("item.cancelled", "a", 0), ("item.cancelled", "a", 2), ("item.cancelled", "a", 3)]
        assert step[-1] == ("item.cancelled", "a", None) or ("item.cancelled", "a", None) in step  # the whole
        assert ("item.completed", "a", None) not in step
        assert [w.task for w in case.work_items()] == ["after"]
        assert "results" not in case.data  # nothing gathered: a did not complete

        # no new instances; the withdrawn ones cannot be completed
        with pytest.raises(yf.InvalidEventError):
            await case.add_instance("a")
        for i in (0, 2, 3):
            with pytest.raises(yf.InvalidEventError):
                await case.complete(a[i])
        (after,) = case.work_items("offered")
        await case.complete(after.id)
        result = await case.result()
    assert result.status == "completed"
    trace = result.trace
    assert not _events(trace, task="b")  # the successor was never triggered
    assert not _whole(trace, "item.completed", "a")
    assert [e["instance"] for e in _inst(trace, "item.completed", "a")] == [1]  # the finished one stays finished


@pytest.mark.anyio
async def test_the_cancelled_task_as_a_whole_ends_withdrawn() -> None:
    # Reading of ARCHITECTURE.md §4: the task as a whole was enabled and started (instance null);
    # withdrawing it is an `item.cancelled` with instance null, so every started item ends.
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        (stop,) = [w.id for w in case.work_items() if w.task == "stop"]
        await case.complete(stop)
        trace = case.trace
        (whole,) = _whole(trace, "item.started", "a")
        assert [(e["event"], e["instance"]) for e in trace if e["item"] == whole["item"]] == [
            ("item.enabled", None), ("item.started", None), ("item.cancelled", None)
        ]
        await case.cancel()


@pytest.mark.anyio
async def test_cancelling_the_case_withdraws_the_mi_activity_without_completing_it() -> None:
    # Withdrawing the instances by any cancellation (here the whole case, WCP-20) must not make
    # the MI task complete as a whole, gather results, or route on.
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        a = [w for w in case.work_items() if w.task == "a"]
        await case.complete(a[0].id, {"v": 0})
        before = len(case.trace)
        await case.cancel()
        result = await case.result()
    assert result.status == "cancelled"
    step = result.trace[before:]
    assert not [e for e in step if e["event"] == "item.completed"]
    assert "results" not in result.data
    assert step[-1]["event"] == "case.cancelled"


@pytest.mark.anyio
async def test_running_instances_are_halted_and_the_case_goes_on() -> None:
    halted: list[int] = []
    entered = 0
    all_in = anyio.Event()
    log: list[str] = []

    async def work(data: dict[str, Any]) -> None:
        nonlocal entered
        entered += 1
        if entered == 4:
            all_in.set()
        try:
            await anyio.sleep_forever()
        finally:
            halted.append(data["item"])

    async def stopper(data: dict[str, Any]) -> None:
        await all_in.wait()  # every instance is running when the cancellation comes
        log.append("stop")

    async def succ(data: dict[str, Any]) -> None:
        log.append("b")

    handlers = {"work": work, "stopper": stopper, "succ": succ}
    async with yf.Engine(clock=FakeClock(), handlers=handlers) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
    assert result.status == "completed", result.error
    assert log == ["stop"]
    assert sorted(halted) == [0, 1, 2, 3]
    assert sorted(e["instance"] for e in _inst(result.trace, "item.cancelled", "a")) == [0, 1, 2, 3]
    assert not _events(result.trace, task="b")


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_no_successor_whatever_finished_first(seed: int) -> None:
    log: list[Any] = []

    async def work(data: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        log.append(data["item"])

    async def stopper(data: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        log.append("stop")

    async def succ(data: dict[str, Any]) -> None:
        log.append("b")

    handlers = {"work": work, "stopper": stopper, "succ": succ}
    async with yf.Engine(seed=seed, clock=FakeClock(), handlers=handlers) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    trace = result.trace
    stop_at = _events(trace, "item.completed", "stop")[0]["seq"]
    finished = [e["instance"] for e in _inst(trace, "item.completed", "a")]
    cancelled = [e["instance"] for e in _inst(trace, "item.cancelled", "a")]
    assert sorted(finished + cancelled) == [0, 1, 2, 3]
    assert all(e["seq"] < stop_at for e in _inst(trace, "item.completed", "a"))
    assert sorted(x for x in log if x not in ("stop", "b")) == sorted(finished)  # withdrawn ones never ran
    if cancelled:
        assert "b" not in log and not _events(trace, task="b")
    else:  # every instance finished before the cancellation: a completed normally
        assert log.count("b") == 1
