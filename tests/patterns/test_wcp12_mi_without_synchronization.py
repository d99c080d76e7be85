"""WCP-12 Multiple Instances without Synchronization: n instances are created; control continues
past the task at once; the instances run to completion independently (nothing waits for them).

yawlflow: ``instances: {count: n, join: none}``. The task as a whole (``instance: null``) completes
in the step it fires, before any instance ends; the instances (``instance`` 0..n-1) live on.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC_EXTERNAL = yf.loads(
    """
yawlflow: 1
id: wcp12_external
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {external: true, instances: {count: 3, join: none}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp12_external.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp12_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, instances: {items: "orders", join: none}, flows: [b]}
      b: {run: after, flows: [end]}
""",
    source="wcp12_auto.yaml",
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
async def test_control_passes_on_before_any_instance_ends() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {})
        # One step: a fired, made its 3 instances, completed as a whole, and b is offered.
        items = case.work_items("offered")
        assert sorted((w.task, w.instance) for w in items) == [("a", 0), ("a", 1), ("a", 2), ("b", None)]
        trace = case.trace
        assert [e["event"] for e in _events(trace, task="a") if e["instance"] is None] == [
            "item.enabled", "item.started", "item.completed"
        ]
        assert not _inst(trace, "item.completed", "a")
        whole_done = _whole(trace, "item.completed", "a")[0]["seq"]
        assert max(e["seq"] for e in _inst(trace, "item.offered", "a")) < whole_done  # instances exist first
        assert _events(trace, "item.offered", "b")[0]["seq"] > whole_done

        # The successor finishes first; the case waits for the instances (they are not withdrawn).
        (b,) = [w for w in items if w.task == "b"]
        await case.complete(b.id)
        await case.idle()
        assert case.status == "running"
        assert sorted(w.instance for w in case.work_items("offered") if w.instance is not None) == [0, 1, 2]
        for w in sorted(items, key=lambda w: -(w.instance or 0)):
            if w.task == "a":
                await case.complete(w.id, {f"done{w.instance}": True})
        result = await case.result()

    assert result.status == "completed"
    trace = result.trace
    assert len(_inst(trace, "item.completed", "a")) == 3
    assert not _events(trace, "item.cancelled")
    assert len(_events(trace, "item.completed", "b")) == 1  # once, not once per instance
    assert len(_whole(trace, "item.completed", "a")) == 1  # the instances' ends do not complete it again


@pytest.mark.anyio
async def test_instances_run_on_after_the_successor_completed_the_case_path() -> None:
    gate = anyio.Event()
    log: list[str] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()  # the instances are held until the successor has run
        log.append(f"a{data['item']}")
        return {f"got_{data['item']}": data["item"]}

    async def after(data: dict[str, Any]) -> None:
        log.append("b")
        gate.set()

    async with yf.Engine(clock=FakeClock(), handlers={"work": work, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {"orders": ["x", "y", "z"]})
            result = await case.result()
    assert result.status == "completed", result.error
    assert log[0] == "b" and sorted(log[1:]) == ["ax", "ay", "az"]
    trace = result.trace
    b_done = _events(trace, "item.completed", "b")[0]["seq"]
    assert all(e["seq"] > b_done for e in _inst(trace, "item.completed", "a"))


@pytest.mark.anyio
async def test_instance_outputs_merge_as_they_complete_after_control_passed_on() -> None:
    # No `as`, no threshold: ARCHITECTURE.md §3 says each output merges into the case data as it
    # completes; only a met threshold (WCP-34) makes later completions ineffective. The instances
    # of WCP-12 run to completion: their results are not thrown away.
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {})
        offered = case.work_items("offered")
        (b,) = [w for w in offered if w.task == "b"]
        await case.complete(b.id, {"b": 1})
        for w in offered:
            if w.task == "a":
                await case.complete(w.id, {f"done{w.instance}": True})
        result = await case.result()
    assert result.status == "completed"
    assert result.data == {"b": 1, "done0": True, "done1": True, "done2": True}


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_successor_starts_with_the_instances(seed: int) -> None:
    log: list[str] = []

    async def work(data: dict[str, Any]) -> None:
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        log.append(f"a{data['item']}")

    async def after(data: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        log.append("b")

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"work": work, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {"orders": [1, 2, 3, 4]})
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(log) == ["a1", "a2", "a3", "a4", "b"]
    trace = result.trace
    b_started = _events(trace, "item.started", "b")[0]["seq"]
    # b was started in the firing step itself, before any instance could end
    assert b_started < min(e["seq"] for e in _inst(trace, "item.completed", "a"))
    assert [e["instance"] for e in _inst(trace, "item.started", "a")] == [0, 1, 2, 3]
    assert len(_events(trace, "item.started", "b")) == 1


@pytest.mark.parametrize("seed", [3, 11])
def test_seeded_trace_is_identical_on_asyncio_and_trio(seed: int) -> None:
    async def work(data: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()

    handlers = {"work": work, "after": work}
    runs = [
        yf.run(SPEC_AUTO, {"orders": [1, 2, 3]}, seed=seed, handlers=handlers),
        yf.run(SPEC_AUTO, {"orders": [1, 2, 3]}, seed=seed, handlers=handlers, backend="trio"),
    ]
    assert runs[0].status == "completed"
    assert runs[0].trace == runs[1].trace


@pytest.mark.anyio
async def test_no_instances_still_passes_control_on() -> None:
    async with yf.Engine(clock=FakeClock(), handlers={"work": lambda d: None, "after": lambda d: None}) as engine:
        case = await engine.start(SPEC_AUTO, {"orders": []})
        with anyio.fail_after(10):
            result = await case.result()
    assert result.status == "completed", result.error
    assert not _inst(result.trace, "item.enabled", "a")
    assert len(_events(result.trace, "item.completed", "b")) == 1
