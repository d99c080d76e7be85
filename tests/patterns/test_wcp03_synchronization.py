"""WCP-3 Synchronization: the AND-join fires exactly once, after every incoming branch has
completed once; never with a branch missing."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

BRANCHES = ("b", "c", "d")

SPEC_EXTERNAL = yf.loads(
    """
yawlflow: 1
id: wcp03_external
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {external: true, flows: [join]}
      c: {external: true, flows: [join]}
      d: {external: true, flows: [join]}
      join: {join: and, external: true, flows: [end]}
""",
    source="wcp03_external.yaml",
)

SPEC_MIXED = yf.loads(
    """
yawlflow: 1
id: wcp03_mixed
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {run: work, flows: [join]}
      c: {run: work, flows: [join]}
      d: {external: true, flows: [join]}
      join: {join: and, run: work, flows: [end]}
""",
    source="wcp03_mixed.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp03_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [join]}
      c: {run: work, flows: [join]}
      d: {run: work, flows: [join]}
      join: {join: and, run: work, flows: [end]}
""",
    source="wcp03_auto.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _counting(log: list[str]) -> dict[str, Any]:
    def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        log.append(ctx.task)

    return {"work": work}


@pytest.mark.anyio
@pytest.mark.parametrize("held", BRANCHES)
async def test_join_waits_for_the_held_branch_then_fires_once(held: str) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {})
        items = {w.task: w.id for w in case.work_items("offered")}
        assert set(items) == set(BRANCHES)
        for task in BRANCHES:
            if task != held:
                await case.complete(items[task])
        await case.idle()
        # Two of three branches done: the join has no item, in any state, anywhere in the trace.
        assert [w.task for w in case.work_items()] == [held]
        assert not _events(case.trace, task="join")
        assert case.status == "running"

        await case.start_item(items[held])
        assert not _events(case.trace, task="join")  # started is not completed
        await case.complete(items[held])
        joins = [w for w in case.work_items() if w.task == "join"]
        assert [w.state for w in joins] == ["offered"]  # exactly one firing
        await case.complete(joins[0].id)
        result = await case.result()

    assert result.status == "completed"
    trace = result.trace
    assert len(_events(trace, "item.enabled", "join")) == 1
    assert len(_events(trace, "item.completed", "join")) == 1
    last_branch = max(e["seq"] for t in BRANCHES for e in _events(trace, "item.completed", t))
    assert _events(trace, "item.completed", held)[0]["seq"] == last_branch
    assert _events(trace, "item.enabled", "join")[0]["seq"] > last_branch


@pytest.mark.anyio
async def test_auto_branches_done_and_one_external_held() -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_counting(log)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_MIXED, {})
            await case.idle()
            assert sorted(log) == ["b", "c"]
            assert [(w.task, w.state) for w in case.work_items()] == [("d", "offered")]
            assert not _events(case.trace, task="join")
            (d,) = case.work_items("offered")
            await case.complete(d.id)
            result = await case.result()
    assert result.status == "completed"
    assert log.count("join") == 1
    assert len(_events(result.trace, "item.started", "join")) == 1


@pytest.mark.parametrize("seed", range(5))
def test_seeded_join_fires_once_after_all_branches(seed: int) -> None:
    log: list[str] = []
    result = yf.run(SPEC_AUTO, {}, seed=seed, handlers=_counting(log))
    assert result.status == "completed", (seed, result.error)
    assert log.count("join") == 1 and log[-1] == "join", (seed, log)
    trace = result.trace
    enabled = _events(trace, "item.enabled", "join")
    assert len(enabled) == 1, seed
    for task in BRANCHES:
        (done,) = _events(trace, "item.completed", task)
        assert done["seq"] < enabled[0]["seq"], (seed, task)


@pytest.mark.parametrize("seed", [1, 4])
def test_seeded_trace_is_identical_across_runs_and_backends(seed: int) -> None:
    runs = [
        yf.run(SPEC_AUTO, {}, seed=seed, handlers=_counting([])),
        yf.run(SPEC_AUTO, {}, seed=seed, handlers=_counting([])),
        yf.run(SPEC_AUTO, {}, seed=seed, handlers=_counting([]), backend="trio"),
    ]
    assert runs[0].trace == runs[1].trace == runs[2].trace, seed
