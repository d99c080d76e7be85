"""WCP-30 Structured Partial Join: N out of M -- after an M-way split, the join fires when N
branches have arrived, never before; the other M-N arrivals are absorbed without firing; it
resets after all M (the next round fires again at its N-th arrival).

yawlflow: ``join: {partial: N}``.
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

BRANCHES = ("b", "c", "d", "e")

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp30
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d, e]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      e: {external: true, flows: [j]}
      j: {join: {partial: 2}, external: true, flows: [k]}
      k: {external: true, flows: [end]}
""",
    source="wcp30.yaml",
)

SPEC_LOOP = yf.loads(
    """
yawlflow: 1
id: wcp30_loop
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      j: {join: {partial: 2}, flows: [k]}
      k: {external: true, split: xor, flows: [{to: a, when: "again"}, {to: end, default: true}]}
""",
    source="wcp30_loop.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp30_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: and, flows: [b, c, d, e]}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      d: {run: work, flows: [j]}
      e: {run: work, flows: [j]}
      j: {join: {partial: 3}, run: fire, flows: [end]}
""",
    source="wcp30_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _offered(case: yf.Case, task: str) -> list[int]:
    return [w.id for w in case.work_items("offered") if w.task == task]


@pytest.mark.anyio
@pytest.mark.parametrize("order", list(itertools.permutations(BRANCHES))[::5])
async def test_fires_at_the_nth_arrival_only(order: tuple[str, ...]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        items = {w.task: w.id for w in case.work_items("offered")}
        await case.complete(items[order[0]])
        assert not _events(case.trace, task="j")  # one of two: never fires early
        before = len(case.trace)
        await case.complete(items[order[1]])
        assert [(e["event"], e["task"]) for e in case.trace[before:]] == [
            ("item.started", order[1]), ("item.completed", order[1]), ("item.enabled", "j"), ("item.offered", "j"),
        ]
        (j,) = _offered(case, "j")
        await case.complete(items[order[2]])
        await case.complete(j)
        await case.complete(items[order[3]])
        assert len(_events(case.trace, "item.enabled", "j")) == 1  # the other M-N absorbed
        assert [w.task for w in case.work_items()] == ["k"]
        await case.complete(_offered(case, "k")[0])
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == 1


@pytest.mark.anyio
async def test_resets_after_all_m_and_fires_again_next_round() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_LOOP, {})
        for rnd, order in enumerate((("b", "c", "d"), ("d", "b", "c"), ("c", "d", "b"))):
            items = {w.task: w.id for w in case.work_items("offered")}
            assert sorted(items) == ["b", "c", "d"], rnd
            await case.complete(items[order[0]])
            assert len(_events(case.trace, "item.completed", "j")) == rnd
            await case.complete(items[order[1]])
            assert len(_events(case.trace, "item.completed", "j")) == rnd + 1
            await case.complete(items[order[2]])  # absorbed; resets
            assert len(_events(case.trace, "item.completed", "j")) == rnd + 1
            await case.complete(_offered(case, "k")[0], {"again": rnd < 2})
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == 3


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_fires_once_in_the_step_of_the_nth_arrival(seed: int) -> None:
    log: list[str] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range(ctx.item_id % 3):
            await anyio.lowlevel.checkpoint()
        log.append(ctx.task)

    async def fire(data: dict[str, Any]) -> None:
        log.append("j")

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"work": work, "fire": fire}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(log) == ["b", "c", "d", "e", "j"]
    trace = result.trace
    arrivals = [e for e in trace if e["event"] == "item.completed" and e["task"] in BRANCHES]
    (enabled,) = _events(trace, "item.enabled", "j")
    assert enabled["seq"] == arrivals[2]["seq"] + 1
    assert not _events(trace, "item.cancelled")  # no branch is cancelled: the last one is absorbed
