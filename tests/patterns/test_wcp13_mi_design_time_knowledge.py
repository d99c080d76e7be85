"""WCP-13 Multiple Instances with a priori Design-Time Knowledge: n is fixed in the model; the
successor is enabled only after all n instances complete.

yawlflow: ``instances: {count: 3}`` (``join: all`` is the default). The task as a whole
(``instance: null``) is enabled and started when it fires, completes after the last instance; the
items of the instances carry ``instance`` 0..n-1 and see ``item`` in their input.
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC_EXTERNAL = yf.loads(
    """
yawlflow: 1
id: wcp13_external
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, instances: {count: 3, as: results}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp13_external.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp13_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, instances: {count: 5, as: results}, flows: [b]}
      b: {run: after, flows: [end]}
""",
    source="wcp13_auto.yaml",
)

# Two tokens reach the MI task: the second firing waits until every instance of the first ended.
SPEC_TWICE = yf.loads(
    """
yawlflow: 1
id: wcp13_twice
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      s: {split: and, flows: [x, y]}
      x: {flows: [a]}
      y: {flows: [a]}
      a: {external: true, join: xor, instances: {count: 2}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp13_twice.yaml",
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
async def test_the_trace_of_firing_shows_the_task_then_each_instance() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {"x": 1})
        trace = case.trace
        a = [(e["event"], e["instance"]) for e in _events(trace, task="a")]
        assert a == [
            ("item.enabled", None), ("item.started", None),
            ("item.enabled", 0), ("item.offered", 0),
            ("item.enabled", 1), ("item.offered", 1),
            ("item.enabled", 2), ("item.offered", 2),
        ]
        whole_id = _whole(trace, "item.started", "a")[0]["item"]
        ids = [e["item"] for e in _inst(trace, "item.offered", "a")]
        assert len(set(ids)) == 3 and whole_id not in ids
        items = sorted(case.work_items(), key=lambda w: w.instance or 0)
        assert [(w.task, w.instance, w.state) for w in items] == [("a", i, "offered") for i in range(3)]
        await case.cancel()


@pytest.mark.anyio
async def test_an_offered_instance_sees_its_item_once_started() -> None:
    # ARCHITECTURE.md §3: "Each instance's input holds `item`" -- for offered instances too.
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {"x": 1})
        items = {w.instance: w.id for w in case.work_items("offered") if w.instance is not None}
        await case.start_item(items[2])
        (started,) = case.work_items("started")
        assert started.instance == 2 and started.data is not None
        assert started.data["x"] == 1  # the task's input (the whole case data by default) ...
        assert started.data["item"] == 2  # ... with the instance's `item`
        await case.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_successor_waits_for_all_n_instances(order: tuple[int, ...]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {})
        items = {w.instance: w.id for w in case.work_items("offered") if w.instance is not None}
        for k, i in enumerate(order):
            assert not _events(case.trace, task="b")  # nothing of b before the last instance
            assert not _whole(case.trace, "item.completed", "a")
            before = len(case.trace)
            await case.complete(items[i], {"v": i * 10})
            step = case.trace[before:]
            if k < 2:
                assert [(e["event"], e["instance"]) for e in step] == [("item.started", i), ("item.completed", i)]
        # the last completion completes a and enables b in the same step
        assert [(e["event"], e["task"], e["instance"]) for e in step] == [
            ("item.started", "a", order[-1]), ("item.completed", "a", order[-1]),
            ("item.completed", "a", None), ("item.enabled", "b", None), ("item.offered", "b", None),
        ]
        assert step[2]["data"] == {"results": [{"v": 0}, {"v": 10}, {"v": 20}]}  # instance order
        assert case.data["results"] == [{"v": 0}, {"v": 10}, {"v": 20}]
        (b,) = case.work_items("offered")
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"
    assert len(_whole(result.trace, "item.completed", "a")) == 1
    assert len(_events(result.trace, "item.completed", "b")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_successor_after_all_instances(seed: int) -> None:
    log: list[Any] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        for _ in range(data["item"] % 3 + 1):
            await anyio.lowlevel.checkpoint()
        log.append(data["item"])
        return {"square": data["item"] ** 2}

    async def after(data: dict[str, Any]) -> None:
        log.append("b")
        assert data["results"] == [{"square": i * i} for i in range(5)]

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"work": work, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(log[:-1]) == [0, 1, 2, 3, 4] and log[-1] == "b"
    trace = result.trace
    assert [e["instance"] for e in _inst(trace, "item.started", "a")] == [0, 1, 2, 3, 4]
    last = max(e["seq"] for e in _inst(trace, "item.completed", "a"))
    (whole,) = _whole(trace, "item.completed", "a")
    assert whole["seq"] == last + 1
    assert _events(trace, "item.enabled", "b")[0]["seq"] > whole["seq"]
    assert result.data["results"] == [{"square": i * i} for i in range(5)]


@pytest.mark.anyio
async def test_instances_run_concurrently_and_the_successor_waits_for_the_slowest() -> None:
    entered = 0
    all_in = anyio.Event()
    release = anyio.Event()
    log: list[str] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        nonlocal entered
        entered += 1
        if entered == 5:
            all_in.set()
        await all_in.wait()  # only returns once all five are in at the same time
        if data["item"] == 3:
            await release.wait()
        log.append(f"a{data['item']}")
        return {"i": data["item"]}

    async def after(data: dict[str, Any]) -> None:
        log.append("b")

    async with yf.Engine(clock=FakeClock(), handlers={"work": work, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            await all_in.wait()
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
            assert "b" not in log and len(log) == 4  # four done, the slowest holds the successor
            assert not _events(case.trace, task="b")
            release.set()
            result = await case.result()
    assert result.status == "completed"
    assert log[-2:] == ["a3", "b"]


@pytest.mark.anyio
async def test_the_task_is_not_enabled_again_until_its_instances_ended() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_TWICE, {})
        # two tokens at a: one firing (2 instances); the second waits for them.
        first = [w for w in case.work_items("offered") if w.task == "a"]
        assert sorted(w.instance for w in first if w.instance is not None) == [0, 1]
        assert len(_whole(case.trace, "item.started", "a")) == 1
        await case.complete(first[0].id)
        assert len(_whole(case.trace, "item.started", "a")) == 1
        before = len(case.trace)
        await case.complete(first[1].id)
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert ("item.completed", "a", None) in step and ("item.started", "a", None) in step
        assert step.index(("item.completed", "a", None)) < step.index(("item.started", "a", None))
        second = [w for w in case.work_items("offered") if w.task == "a"]
        assert sorted(w.instance for w in second if w.instance is not None) == [0, 1]
        assert not {w.id for w in second} & {w.id for w in first}
        await case.cancel()


@pytest.mark.anyio
async def test_add_instance_on_a_static_task_raises_and_changes_nothing() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {})
        before = len(case.trace)
        with pytest.raises(yf.InvalidEventError, match="static"):
            await case.add_instance("a", {"item": 9})
        assert len(case.trace) == before
        live = [w.instance for w in case.work_items() if w.task == "a" and w.instance is not None]
        assert sorted(live) == [0, 1, 2]
        with pytest.raises(yf.InvalidEventError):
            await case.add_instance("b")  # not a multiple-instance task
        with pytest.raises(yf.InvalidEventError):
            await case.add_instance("nope")
        await case.cancel()


@pytest.mark.parametrize(
    ("instances", "where"),
    [
        ("{count: 5, max: 3}", "count"),
        ("{count: 1, min: 2}", "count"),
        ("{count: 1, min: 4, max: 2}", "min"),
    ],
)
def test_a_design_time_count_outside_its_bounds_is_a_located_spec_error(instances: str, where: str) -> None:
    text = f"""
yawlflow: 1
id: wcp13_bad
nets:
  main:
    input: start
    output: end
    tasks:
      a: {{run: work, instances: {instances}, flows: [end]}}
"""
    with pytest.raises(yf.SpecError) as info:
        yf.loads(text, source="wcp13_bad.yaml")
    problems = info.value.problems
    assert problems, info.value
    rendered = " ".join(str(p) for p in problems)
    assert "instances" in rendered and where in rendered, rendered
    assert any(getattr(p, "line", None) for p in problems), rendered


def test_min_alone_gives_that_many_instances() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp13_min
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, instances: {min: 4, as: got}, flows: [end]}
""",
        source="wcp13_min.yaml",
    )
    result = yf.run(spec, {}, seed=1, handlers={"work": lambda d: {"i": d["item"]}})
    assert result.status == "completed", result.error
    assert result.data["got"] == [{"i": i} for i in range(4)]
