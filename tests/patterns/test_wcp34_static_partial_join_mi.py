"""WCP-34 Static Partial Join for Multiple Instances: n instances fixed when the task starts; the
successor fires once, when m of them have completed; the rest go on and complete with no effect;
the join resets (the task may fire again) only when all n are done.

yawlflow: ``instances: {count: n, threshold: m}``. Not Zeebe's ``completionCondition``, which
cancels the rest: that is WCP-35 (``cancel_rest: true``).
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp34
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {external: true, instances: {count: 4, join: threshold, threshold: 2, as: results}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp34.yaml",
)

# Without `as`: outputs merge as they complete -- until the threshold is met.
SPEC_MERGE = yf.loads(
    """
yawlflow: 1
id: wcp34_merge
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {external: true, instances: {count: 3, threshold: "completed >= 2"}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp34_merge.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp34_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, instances: {count: 5, threshold: 3, as: results}, flows: [b]}
      b: {run: after, flows: [end]}
""",
    source="wcp34_auto.yaml",
)

# Two tokens at a: the second firing waits until every instance of the first has ended, even
# though the first firing's threshold was met (the join resets only when all are done).
SPEC_TWICE = yf.loads(
    """
yawlflow: 1
id: wcp34_twice
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      s: {split: and, flows: [x, y]}
      x: {flows: [a]}
      y: {flows: [a]}
      a: {external: true, join: xor, instances: {count: 3, threshold: 1}, flows: [b]}
      b: {flows: [end]}
""",
    source="wcp34_twice.yaml",
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
@pytest.mark.parametrize("order", [(2, 0, 3, 1), (3, 2, 1, 0), (0, 1, 2, 3)])
async def test_successor_fires_once_at_m_and_the_rest_complete_with_no_effect(order: tuple[int, ...]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        items = {w.instance: w.id for w in case.work_items("offered") if w.instance is not None}
        assert sorted(items) == [0, 1, 2, 3]
        await case.complete(items[order[0]], {"v": order[0]})
        assert not _events(case.trace, task="b")
        before = len(case.trace)
        await case.complete(items[order[1]], {"v": order[1]})
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert step == [
            ("item.started", "a", order[1]), ("item.completed", "a", order[1]),
            ("item.completed", "a", None), ("item.enabled", "b", None), ("item.offered", "b", None),
        ]
        first_two = sorted(order[:2])
        assert case.data["results"] == [{"v": i} for i in first_two]
        # the other two are still offered: not cancelled (that would be WCP-35)
        live = [w.instance for w in case.work_items() if w.task == "a" and w.instance is not None]
        assert sorted(live) == sorted(order[2:])
        assert not _events(case.trace, "item.cancelled")

        for i in order[2:]:
            before = len(case.trace)
            await case.complete(items[i], {"v": i, "late": True})
            step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
            assert step == [("item.started", "a", i), ("item.completed", "a", i)]  # nothing else
        assert case.data["results"] == [{"v": i} for i in first_two]  # no effect on the data
        assert "late" not in case.data
        (b,) = case.work_items("offered")
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"
    trace = result.trace
    assert len(_whole(trace, "item.completed", "a")) == 1
    assert len(_events(trace, "item.enabled", "b")) == 1
    assert len(_inst(trace, "item.completed", "a")) == 4


@pytest.mark.anyio
async def test_late_outputs_do_not_merge_without_as() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_MERGE, {})
        items = {w.instance: w.id for w in case.work_items("offered") if w.instance is not None}
        await case.complete(items[1], {"one": 1})
        assert case.data == {"one": 1}  # merged as it completed
        await case.complete(items[0], {"zero": 0})
        assert case.data == {"one": 1, "zero": 0}
        assert _whole(case.trace, "item.completed", "a")
        await case.complete(items[2], {"two": 2, "one": "overwritten?"})
        assert case.data == {"one": 1, "zero": 0}  # after the threshold: no effect
        (b,) = case.work_items("offered")
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"
    assert result.data == {"one": 1, "zero": 0}


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_successor_once_at_the_threshold_and_every_instance_completes(seed: int) -> None:
    log: list[Any] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        for _ in range((data["item"] * 7 + seed) % 4):
            await anyio.lowlevel.checkpoint()
        log.append(data["item"])
        return {"i": data["item"]}

    async def after(data: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        log.append("b")

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"work": work, "after": after}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(x for x in log if x != "b") == [0, 1, 2, 3, 4]  # every instance ran to the end
    assert log.count("b") == 1
    trace = result.trace
    done = _inst(trace, "item.completed", "a")
    assert len(done) == 5 and not _events(trace, "item.cancelled")
    (whole,) = _whole(trace, "item.completed", "a")
    assert whole["seq"] == done[2]["seq"] + 1  # right after the third completion
    assert _events(trace, "item.started", "b")[0]["seq"] > whole["seq"]
    assert whole["data"] == {"results": sorted(({"i": e["instance"]} for e in done[:3]), key=lambda r: r["i"])}
    assert result.data["results"] == whole["data"]["results"]


@pytest.mark.anyio
async def test_the_join_resets_only_when_all_instances_are_done() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_TWICE, {})
        first = {w.instance: w.id for w in case.work_items() if w.task == "a" and w.instance is not None}
        assert sorted(first) == [0, 1, 2]
        await case.complete(first[1])  # threshold 1: a completes, b runs
        assert len(_whole(case.trace, "item.completed", "a")) == 1
        assert len(_events(case.trace, "item.completed", "b")) == 1
        assert len(_whole(case.trace, "item.started", "a")) == 1  # the second token still waits
        await case.complete(first[0])
        assert len(_whole(case.trace, "item.started", "a")) == 1
        before = len(case.trace)
        await case.complete(first[2])  # all done: the join resets and a fires on the other token
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert step[:2] == [("item.started", "a", 2), ("item.completed", "a", 2)]
        assert ("item.started", "a", None) in step
        second = {w.instance: w.id for w in case.work_items() if w.task == "a" and w.instance is not None}
        assert sorted(second) == [0, 1, 2] and not set(second.values()) & set(first.values())
        await case.complete(second[0])
        assert len(_events(case.trace, "item.completed", "b")) == 2
        for i in (1, 2):
            await case.complete(second[i])
        result = await case.result()
    assert result.status == "completed"
    assert len(_whole(result.trace, "item.completed", "a")) == 2
    assert len(_events(result.trace, "item.completed", "b")) == 2


@pytest.mark.parametrize(("n", "m"), [(n, m) for n, m in itertools.product(range(1, 5), range(1, 5)) if m <= n])
def test_threshold_m_of_n_completes_exactly_m_before_the_successor(n: int, m: int) -> None:
    spec = yf.loads(
        f"""
yawlflow: 1
id: wcp34_mn
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {{run: work, instances: {{count: {n}, threshold: {m}, as: got}}, flows: [b]}}
      b: {{run: after, flows: [end]}}
""",
        source="wcp34_mn.yaml",
    )
    seen: list[Any] = []
    result = yf.run(spec, {}, seed=n * 10 + m,
                    handlers={"work": lambda d: {"i": d["item"]}, "after": lambda d: seen.append(len(d["got"]))})
    assert result.status == "completed", result.error
    assert seen == [m]
    assert len(_inst(result.trace, "item.completed", "a")) == n
