"""WCP-14 Multiple Instances with a priori Run-Time Knowledge: n is computed at run time, before the
task starts (from case data); the successor waits for all n instances.

yawlflow: ``instances: {count: <CEL>}`` or ``instances: {items: <CEL list>}``; a count outside
``[min, max]`` fails the case with a located error, and no instance is created.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# `plan` decides n at run time; `a` makes that many instances.
SPEC_COUNT = yf.loads(
    """
yawlflow: 1
id: wcp14_count
nets:
  main:
    input: start
    output: end
    tasks:
      plan: {run: plan, flows: [a]}
      a: {run: work, instances: {count: "n", min: 0, max: 6, as: results}, flows: [b]}
      b: {run: after, flows: [end]}
""",
    source="wcp14_count.yaml",
)

SPEC_ITEMS = yf.loads(
    """
yawlflow: 1
id: wcp14_items
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, instances: {items: "orders", max: 4, as: shipped}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp14_items.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _whole(trace: Trace, event: str, task: str) -> Trace:
    return [e for e in _events(trace, event, task) if e["instance"] is None]


def _inst(trace: Trace, event: str, task: str) -> Trace:
    return [e for e in _events(trace, event, task) if e["instance"] is not None]


def _handlers(log: list[Any]) -> dict[str, Any]:
    async def plan(data: dict[str, Any]) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        return {"n": data["want"]}

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        for _ in range(3 - data["item"] % 3):
            await anyio.lowlevel.checkpoint()
        log.append(data["item"])
        return {"i": data["item"]}

    async def after(data: dict[str, Any]) -> None:
        log.append("b")

    return {"plan": plan, "work": work, "after": after}


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("n", [1, 4])
async def test_seeded_n_from_run_time_data_and_successor_waits_for_all(seed: int, n: int) -> None:
    log: list[Any] = []
    async with yf.Engine(seed=seed, clock=FakeClock(), handlers=_handlers(log)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_COUNT, {"want": n})
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(log[:-1]) == list(range(n)) and log[-1] == "b"
    trace = result.trace
    assert [e["instance"] for e in _inst(trace, "item.started", "a")] == list(range(n))
    # n was known before a started: every instance was created in a's firing step
    plan_done = _events(trace, "item.completed", "plan")[0]["seq"]
    whole_start = _whole(trace, "item.started", "a")[0]["seq"]
    assert plan_done < whole_start < min(e["seq"] for e in _inst(trace, "item.started", "a"))
    assert max(e["seq"] for e in _inst(trace, "item.enabled", "a")) < min(
        e["seq"] for e in _inst(trace, "item.completed", "a")
    )
    last = max(e["seq"] for e in _inst(trace, "item.completed", "a"))
    assert _events(trace, "item.enabled", "b")[0]["seq"] > last
    assert result.data["results"] == [{"i": i} for i in range(n)]


@pytest.mark.anyio
async def test_zero_instances_completes_the_task_at_once() -> None:
    log: list[Any] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_COUNT, {"want": 0})
            result = await case.result()
    assert result.status == "completed", result.error
    assert log == ["b"]
    assert not _inst(result.trace, "item.enabled", "a")
    assert result.data["results"] == []


@pytest.mark.anyio
async def test_items_give_one_instance_per_element_and_the_successor_waits() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_ITEMS, {"orders": ["pen", "ink", "pad"]})
        items = {w.instance: w.id for w in case.work_items("offered") if w.instance is not None}
        assert sorted(items) == [0, 1, 2]
        await case.complete(items[1], {"box": "ink"})
        await case.complete(items[0], {"box": "pen"})
        assert not _events(case.trace, task="b")
        await case.complete(items[2], {"box": "pad"})
        (b,) = case.work_items("offered")
        assert b.task == "b"
        assert case.data["shipped"] == [{"box": "pen"}, {"box": "ink"}, {"box": "pad"}]
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"


@pytest.mark.parametrize("seed", [0, 5])
def test_each_auto_instance_sees_its_element_as_item(seed: int) -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp14_items_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, instances: {items: "orders.map(o, o * 10)", as: out}, flows: [end]}
""",
        source="wcp14_items_auto.yaml",
    )
    seen: list[Any] = []

    def work(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(data["item"])
        return {"got": data["item"], "orders": data["orders"]}

    result = yf.run(spec, {"orders": [3, 1, 2]}, seed=seed, handlers={"work": work})
    assert result.status == "completed", result.error
    assert sorted(seen) == [10, 20, 30]
    assert [r["got"] for r in result.data["out"]] == [30, 10, 20]  # instance order = element order


@pytest.mark.anyio
@pytest.mark.parametrize("want", [7, -1])
async def test_a_count_outside_min_max_fails_the_case_with_a_located_error(want: int) -> None:
    log: list[Any] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_COUNT, {"want": want})
            result = await case.result()
    assert result.status == "failed"
    assert result.error is not None
    assert "tasks.a.instances" in result.error and str(want) in result.error, result.error
    assert "[0, 6]" in result.error, result.error
    assert log == []  # no instance ran, and b never ran
    assert not _inst(result.trace, "item.enabled", "a")
    assert not _events(result.trace, task="b")
    assert result.trace[-1]["event"] == "case.failed"
    assert result.trace[-1]["data"] == {"error": result.error}


@pytest.mark.anyio
async def test_too_many_items_fail_the_case() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_ITEMS, {"orders": list(range(5))})
        with anyio.fail_after(10):
            result = await case.result()
    assert result.status == "failed"
    assert result.error is not None and "tasks.a.instances" in result.error and "5" in result.error
    assert not case.work_items()


@pytest.mark.anyio
@pytest.mark.parametrize(("data", "fragment"), [({"want": "three"}, "count"), ({}, "tasks.a.instances")])
async def test_a_count_that_is_not_an_integer_fails_the_case(data: dict[str, Any], fragment: str) -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp14_bad_count
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, instances: {count: "want"}, flows: [end]}
""",
        source="wcp14_bad_count.yaml",
    )
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(spec, data)
        with anyio.fail_after(10):
            result = await case.result()
    assert result.status == "failed"
    assert result.error is not None and fragment in result.error, result.error
    assert not _inst(result.trace, "item.enabled", "a")
