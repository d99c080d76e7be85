"""WCP-9 Structured Discriminator: after an m-way split, the join fires on the first arrival;
arrivals 2..m are absorbed without firing; it resets after the m-th arrival (so the next round
fires again on its first arrival).

yawlflow: ``join: {partial: 1}`` (``reset: wait`` is the default).
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

BRANCHES = ("b", "c", "d")

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp09
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      j: {join: {partial: 1}, external: true, flows: [k]}
      k: {external: true, flows: [end]}
""",
    source="wcp09.yaml",
)

# The discriminator inside a loop: each round is a fresh 3-way split once the last round is over.
SPEC_LOOP = yf.loads(
    """
yawlflow: 1
id: wcp09_loop
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      j: {join: {partial: 1}, flows: [k]}
      k: {external: true, join: and, flows: [r]}
      r: {split: xor, flows: [{to: a, when: "again"}, {to: end, default: true}]}
""",
    source="wcp09_loop.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp09_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      d: {run: work, flows: [j]}
      j: {join: {partial: 1}, run: first, flows: [end]}
""",
    source="wcp09_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


@pytest.mark.anyio
@pytest.mark.parametrize("order", list(itertools.permutations(BRANCHES)))
async def test_fires_on_the_first_arrival_and_absorbs_the_others(order: tuple[str, ...]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        items = {w.task: w.id for w in case.work_items("offered")}
        assert not _events(case.trace, task="j")
        before = len(case.trace)
        await case.complete(items[order[0]])
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert step == [
            ("item.started", order[0]), ("item.completed", order[0]), ("item.enabled", "j"), ("item.offered", "j")
        ]
        for t in order[1:]:  # the others arrive, before and after j ran: no second firing
            before = len(case.trace)
            await case.complete(items[t])
            assert [(e["event"], e["task"]) for e in case.trace[before:]] == [
                ("item.started", t), ("item.completed", t)
            ]
            if t == order[1]:
                (j,) = [w for w in case.work_items() if w.task == "j"]
                await case.complete(j.id)
        assert [w.task for w in case.work_items()] == ["k"]
        (k,) = case.work_items()
        await case.complete(k.id)
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.enabled", "j")) == 1
    assert len(_events(result.trace, "item.completed", "j")) == 1
    assert len(_events(result.trace, "item.completed", "k")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("firsts", [("b", "c", "d"), ("d", "d", "b")])
async def test_it_resets_after_the_last_arrival_and_fires_again_next_round(firsts: tuple[str, ...]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_LOOP, {})
        for rnd, first in enumerate(firsts):
            again = rnd < len(firsts) - 1
            items = {w.task: w.id for w in case.work_items("offered")}
            assert set(items) == set(BRANCHES), rnd  # one fresh item per branch, nothing else
            await case.complete(items[first])
            assert len(_events(case.trace, "item.completed", "j")) == rnd + 1
            rest = [t for t in BRANCHES if t != first]
            await case.complete(items[rest[0]])
            (k,) = [w for w in case.work_items() if w.task == "k"]  # j fired once: one k
            await case.complete(items[rest[1]])  # the m-th arrival: the join resets
            assert len(_events(case.trace, "item.completed", "j")) == rnd + 1
            await case.complete(k.id, {"again": again})
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == len(firsts)
    assert len(_events(result.trace, "item.completed", "k")) == len(firsts)


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_fires_once_right_after_the_first_branch(seed: int) -> None:
    log: list[str] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range(2):
            await anyio.lowlevel.checkpoint()
        log.append(ctx.task)

    async def first(data: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        log.append("j")

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"work": work, "first": first}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(log) == ["b", "c", "d", "j"]
    trace = result.trace
    done = sorted((e["seq"], e["task"]) for t in BRANCHES for e in _events(trace, "item.completed", t))
    (enabled,) = _events(trace, "item.enabled", "j")
    assert done[0][0] < enabled["seq"] < done[1][0]
    assert enabled["seq"] == done[0][0] + 1  # in the step of the first arrival
    assert log.index("j") > log.index(done[0][1])


@pytest.mark.parametrize("seed", [2, 7])
def test_seeded_trace_is_identical_on_asyncio_and_trio(seed: int) -> None:
    handlers = {"work": lambda d: None, "first": lambda d: None}
    runs = [
        yf.run(SPEC_AUTO, {}, seed=seed, handlers=handlers),
        yf.run(SPEC_AUTO, {}, seed=seed, handlers=handlers, backend="trio"),
    ]
    assert runs[0].status == "completed"
    assert runs[0].trace == runs[1].trace


@pytest.mark.anyio
async def test_under_real_concurrency_only_the_first_arrival_fires() -> None:
    release: dict[str, anyio.Event] = {t: anyio.Event() for t in BRANCHES}
    log: list[str] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        await release[ctx.task].wait()
        log.append(ctx.task)

    async def first(data: dict[str, Any]) -> None:
        log.append("j")

    async with yf.Engine(clock=FakeClock(), handlers={"work": work, "first": first}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            release["c"].set()
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
            assert log == ["c", "j"]
            release["b"].set()
            release["d"].set()
            result = await case.result()
    assert result.status == "completed"
    assert log[:2] == ["c", "j"] and sorted(log[2:]) == ["b", "d"]
    assert len(_events(result.trace, "item.started", "j")) == 1
