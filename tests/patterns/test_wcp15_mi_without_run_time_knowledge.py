"""WCP-15 Multiple Instances without a priori Run-Time Knowledge: instances may be added while the
task is active; the successor waits for every instance created, the added ones included.

yawlflow: ``instances: {creation: dynamic, ...}`` and ``case.add_instance(task, data)``, which
raises InvalidEventError when no dynamic instance task of that name is running (not fired yet,
already completed, static) or its ``max`` is reached.
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
id: wcp15
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, instances: {count: 2, max: 4, creation: dynamic, as: results}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp15.yaml",
)

# a comes after p, so it is not running until p completes
SPEC_LATER = yf.loads(
    """
yawlflow: 1
id: wcp15_later
nets:
  main:
    input: start
    output: end
    tasks:
      p: {external: true, flows: [a]}
      a: {external: true, instances: {creation: dynamic}, flows: [end]}
""",
    source="wcp15_later.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp15_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: review, instances: {count: 1, creation: dynamic, max: 10, as: reviews}, flows: [b]}
      b: {run: after, flows: [end]}
""",
    source="wcp15_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _whole(trace: Trace, event: str, task: str) -> Trace:
    return [e for e in _events(trace, event, task) if e["instance"] is None]


def _inst(trace: Trace, event: str, task: str) -> Trace:
    return [e for e in _events(trace, event, task) if e["instance"] is not None]


def _instances(case: yf.Case, task: str = "a") -> dict[int, int]:
    return {w.instance: w.id for w in case.work_items() if w.task == task and w.instance is not None}


@pytest.mark.anyio
async def test_successor_waits_for_added_instances() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        first = _instances(case)
        assert sorted(first) == [0, 1]
        await case.complete(first[0], {"r": 0})
        before = len(case.trace)
        await case.add_instance("a", {"who": "carol"})
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert step == [("item.enabled", "a", 2), ("item.offered", "a", 2)]  # numbered on from 2
        await case.complete(first[1], {"r": 1})
        # all the instances present at the start are done, but the added one is live: b waits
        assert not _events(case.trace, task="b")
        assert not _whole(case.trace, "item.completed", "a")
        await case.add_instance("a")
        now = _instances(case)
        assert sorted(now) == [2, 3]
        await case.complete(now[3], {"r": 3})
        assert not _events(case.trace, task="b")
        before = len(case.trace)
        await case.complete(now[2], {"r": 2})
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert step[-3:] == [("item.completed", "a", None), ("item.enabled", "b", None), ("item.offered", "b", None)]
        assert case.data["results"] == [{"r": 0}, {"r": 1}, {"r": 2}, {"r": 3}]
        (b,) = case.work_items("offered")
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"
    assert len(_inst(result.trace, "item.completed", "a")) == 4
    assert len(_whole(result.trace, "item.completed", "a")) == 1


@pytest.mark.anyio
async def test_an_added_instance_sees_its_data() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {"base": 1})
        await case.add_instance("a", {"who": "carol"})
        new = _instances(case)[2]
        await case.start_item(new)
        (started,) = case.work_items("started")
        assert started.data is not None
        assert started.data["who"] == "carol" and started.data["base"] == 1
        assert started.data["item"] == 2  # `item` defaults to the instance number
        await case.cancel()


@pytest.mark.anyio
async def test_add_instance_beyond_max_raises_and_changes_nothing() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        await case.add_instance("a")
        await case.add_instance("a")
        assert sorted(_instances(case)) == [0, 1, 2, 3]
        before = len(case.trace)
        with pytest.raises(yf.InvalidEventError, match="max"):
            await case.add_instance("a")
        assert len(case.trace) == before
        assert sorted(_instances(case)) == [0, 1, 2, 3]
        # completed instances still count towards max
        await case.complete(_instances(case)[0])
        with pytest.raises(yf.InvalidEventError):
            await case.add_instance("a")
        await case.cancel()


@pytest.mark.anyio
async def test_add_instance_after_completion_or_before_firing_raises() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_LATER, {})
        with pytest.raises(yf.InvalidEventError, match="not running"):
            await case.add_instance("a")  # a has not fired yet
        (p,) = case.work_items("offered")
        await case.complete(p.id)
        (only,) = case.work_items("offered")
        assert (only.task, only.instance) == ("a", 0)  # min (else 1) instance
        await case.add_instance("a")
        for i in _instances(case).values():
            await case.complete(i)
        result = await case.result()
        assert result.status == "completed"
        with pytest.raises(yf.InvalidEventError):
            await case.add_instance("a")  # the case and the task are over

    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        for i in _instances(case).values():
            await case.complete(i)
        assert _whole(case.trace, "item.completed", "a")
        before = len(case.trace)
        with pytest.raises(yf.InvalidEventError):
            await case.add_instance("a")  # a has completed; b runs now
        assert len(case.trace) == before
        assert [w.task for w in case.work_items()] == ["b"]
        await case.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_instances_added_by_running_instances_are_all_waited_for(seed: int) -> None:
    # Each review may ask for more reviews while it runs (up to 5 in all): n is not known until
    # the instances themselves say so. The successor must see all of them.
    case_ref: list[yf.Case] = []
    log: list[Any] = []

    async def review(data: dict[str, Any]) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        if data["item"] < 2:
            await case_ref[0].add_instance("a", {"asked_by": data["item"]})
            await case_ref[0].add_instance("a", {"asked_by": data["item"]})
        await anyio.lowlevel.checkpoint()
        log.append(data["item"])
        return {"by": data.get("asked_by")}

    async def after(data: dict[str, Any]) -> None:
        log.append("b")

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"review": review, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            case_ref.append(case)
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(log[:-1]) == [0, 1, 2, 3, 4] and log[-1] == "b"
    assert result.data["reviews"] == [{"by": None}, {"by": 0}, {"by": 0}, {"by": 1}, {"by": 1}]
    trace = result.trace
    last = max(e["seq"] for e in _inst(trace, "item.completed", "a"))
    assert _whole(trace, "item.completed", "a")[0]["seq"] > last
    assert len(_events(trace, "item.started", "b")) == 1


@pytest.mark.anyio
async def test_instances_added_from_outside_while_others_run() -> None:
    release = anyio.Event()
    started = anyio.Event()
    log: list[Any] = []

    async def review(data: dict[str, Any]) -> dict[str, Any]:
        started.set()
        if data["item"] == 0:
            await release.wait()
        log.append(data["item"])
        return {"i": data["item"]}

    async def after(data: dict[str, Any]) -> None:
        log.append("b")

    async with yf.Engine(clock=FakeClock(), handlers={"review": review, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            await started.wait()
            await case.add_instance("a")
            await case.add_instance("a")
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
            assert sorted(log) == [1, 2]  # the added ones ran and finished; 0 still runs
            assert not _events(case.trace, task="b")
            release.set()
            result = await case.result()
    assert result.status == "completed", result.error
    assert log[-1] == "b"
    assert result.data["reviews"] == [{"i": 0}, {"i": 1}, {"i": 2}]
