"""WCP-35 Cancelling Partial Join for Multiple Instances: as WCP-34 (n instances, the successor
fires once when m have completed), but the remaining instances are cancelled at that moment.

yawlflow: ``instances: {count: n, threshold: m, cancel_rest: true}``. The task as a whole
completes exactly once; the rest get ``item.cancelled`` in the same step, before the successor.
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
id: wcp35
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, instances: {count: 4, threshold: 2, cancel_rest: true, as: results}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp35.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp35_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, instances: {count: 5, threshold: "completed >= 2", cancel_rest: true, as: results},
          flows: [b]}
      b: {run: after, flows: [end]}
""",
    source="wcp35_auto.yaml",
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
@pytest.mark.parametrize("order", [(0, 1), (3, 1), (2, 3)])
async def test_the_rest_are_cancelled_when_m_complete(order: tuple[int, int]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        items = {w.instance: w.id for w in case.work_items("offered") if w.instance is not None}
        rest = [i for i in range(4) if i not in order]
        await case.start_item(items[rest[0]])  # one of the rest is already started: it is halted too
        await case.complete(items[order[0]], {"v": order[0]})
        assert not _events(case.trace, "item.cancelled")
        before = len(case.trace)
        await case.complete(items[order[1]], {"v": order[1]})
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert step == [
            ("item.started", "a", order[1]), ("item.completed", "a", order[1]),
            *[("item.cancelled", "a", i) for i in rest],
            ("item.completed", "a", None), ("item.enabled", "b", None), ("item.offered", "b", None),
        ]
        assert [(w.task, w.instance) for w in case.work_items()] == [("b", None)]
        assert case.data["results"] == [{"v": i} for i in sorted(order)]
        for i in rest:  # the cancelled instances can no longer be started or completed
            with pytest.raises(yf.InvalidEventError):
                await case.complete(items[i], {"v": i})
        (b,) = case.work_items("offered")
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"
    trace = result.trace
    assert len(_whole(trace, "item.completed", "a")) == 1
    assert len(_events(trace, "item.enabled", "b")) == 1
    assert sorted(e["instance"] for e in _events(trace, "item.cancelled", "a")) == rest
    assert not _whole(trace, "item.cancelled", "a")  # the task as a whole completed; it was not cancelled


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_exactly_m_complete_and_the_rest_never_finish(seed: int) -> None:
    finished: list[int] = []
    log: list[str] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        for _ in range(data["item"] % 3 + 1):
            await anyio.lowlevel.checkpoint()
        finished.append(data["item"])
        return {"i": data["item"]}

    async def after(data: dict[str, Any]) -> None:
        log.append("b")

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"work": work, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert len(finished) == 2 and log == ["b"]
    trace = result.trace
    done = _inst(trace, "item.completed", "a")
    cancelled = _events(trace, "item.cancelled", "a")
    assert sorted(e["instance"] for e in done) == sorted(finished)
    assert sorted(e["instance"] for e in done + cancelled) == [0, 1, 2, 3, 4]
    (whole,) = _whole(trace, "item.completed", "a")
    assert all(done[1]["seq"] < e["seq"] < whole["seq"] for e in cancelled)
    assert result.data["results"] == [{"i": i} for i in sorted(finished)]


@pytest.mark.anyio
async def test_running_instances_are_halted() -> None:
    halted: list[int] = []
    entered = 0
    all_in = anyio.Event()
    log: list[str] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        nonlocal entered
        entered += 1
        if entered == 5:
            all_in.set()
        returned = False
        try:
            await all_in.wait()
            if data["item"] in (1, 3):
                returned = True
                return {"i": data["item"]}
            await anyio.sleep_forever()
        finally:
            if not returned:
                halted.append(data["item"])
        raise AssertionError("unreachable")

    async def after(data: dict[str, Any]) -> None:
        log.append("b")

    async with yf.Engine(clock=FakeClock(), handlers={"work": work, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
    assert result.status == "completed", result.error
    assert sorted(halted) == [0, 2, 4]  # their handlers were cancelled
    assert log == ["b"]
    assert result.data["results"] == [{"i": 1}, {"i": 3}]
    assert sorted(e["instance"] for e in _events(result.trace, "item.cancelled", "a")) == [0, 2, 4]
