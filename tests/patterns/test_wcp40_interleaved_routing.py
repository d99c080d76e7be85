"""WCP-40 Interleaved Routing: each task of a set runs exactly once, in any order, never two at a
time; the successor runs after all of them.

yawlflow: an AND split to the tasks, an AND join after them, and a net-level ``mutex`` with one
region per task. While one runs, the others are not offered and cannot be started.
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

TASKS = ("a", "b", "c")

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp40
nets:
  main:
    input: start
    output: end
    mutex: {m: [a, b, c]}
    tasks:
      s: {split: and, flows: [a, b, c]}
      a: {external: true, flows: [j]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      j: {join: and, external: true, flows: [end]}
""",
    source="wcp40.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp40_auto
nets:
  main:
    input: start
    output: end
    mutex: {m: [a, b, c]}
    tasks:
      s: {split: and, flows: [pa, pb, pc]}
      pa: {run: prep, flows: [a]}
      pb: {run: prep, flows: [b]}
      pc: {run: prep, flows: [c]}
      a: {run: work, flows: [j]}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      j: {join: and, run: after, flows: [end]}
""",
    source="wcp40_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _no_overlap(trace: Trace) -> None:
    running: str | None = None
    for e in trace:
        if e["task"] not in TASKS:
            continue
        if e["event"] == "item.started":
            assert running is None, f"{e['task']} started while {running} was running"
            running = e["task"]
        elif e["event"] in ("item.completed", "item.cancelled", "item.failed") and e["task"] == running:
            running = None


@pytest.mark.anyio
@pytest.mark.parametrize("order", list(itertools.permutations(TASKS)))
async def test_any_order_one_at_a_time_then_the_successor(order: tuple[str, ...]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        for k, task in enumerate(order):
            offered = {w.task: w.id for w in case.work_items("offered")}
            assert sorted(offered) == sorted(order[k:])  # every task not yet run is offered
            await case.start_item(offered[task])
            assert [(w.task, w.state) for w in case.work_items()] == [(task, "started")]
            for other in order[k + 1:]:
                with pytest.raises(yf.InvalidEventError):
                    await case.start_item(offered[other])
            assert not _events(case.trace, task="j")
            await case.complete(offered[task])
        (j,) = case.work_items("offered")
        assert j.task == "j"
        await case.complete(j.id)
        result = await case.result()
    assert result.status == "completed"
    _no_overlap(result.trace)
    assert [e["task"] for e in _events(result.trace, "item.started") if e["task"] in TASKS] == list(order)
    for t in TASKS:
        assert len(_events(result.trace, "item.completed", t)) == 1


@pytest.mark.anyio
async def test_a_withdrawn_task_is_offered_again_not_lost() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        offered = {w.task: w.id for w in case.work_items("offered")}
        await case.start_item(offered["b"])
        assert sorted(e["task"] for e in _events(case.trace, "item.cancelled")) == ["a", "c"]
        await case.complete(offered["b"])
        again = {w.task: w.id for w in case.work_items("offered")}
        assert sorted(again) == ["a", "c"] and not set(again.values()) & set(offered.values())
        await case.cancel()


def _handlers(log: list[str], state: dict[str, int]) -> dict[str, Any]:
    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        state["inside"] += 1
        state["peak"] = max(state["peak"], state["inside"])
        for _ in range(4):
            await anyio.lowlevel.checkpoint()
        log.append(ctx.task)
        state["inside"] -= 1

    async def prep(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range(ctx.item_id * 3 % 5):
            await anyio.lowlevel.checkpoint()

    async def after(data: dict[str, Any]) -> None:
        log.append("j")

    return {"work": work, "prep": prep, "after": after}


@pytest.mark.anyio
@pytest.mark.parametrize("round_", range(3))
async def test_real_concurrency_one_at_a_time(round_: int) -> None:
    log: list[str] = []
    state = {"inside": 0, "peak": 0}
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log, state)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert state["peak"] == 1
    assert sorted(log[:-1]) == sorted(TASKS) and log[-1] == "j"
    _no_overlap(result.trace)


@pytest.mark.anyio
async def test_a_blocked_task_does_not_start_while_another_is_held() -> None:
    release = anyio.Event()
    entered: list[str] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        entered.append(ctx.task)
        if len(entered) == 1:
            await release.wait()

    handlers: dict[str, Any] = {"work": work, "prep": lambda d: None, "after": lambda d: None}
    async with yf.Engine(clock=FakeClock(), handlers=handlers) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            while not entered:
                await anyio.lowlevel.checkpoint()
            for _ in range(50):
                await anyio.lowlevel.checkpoint()
            assert len(entered) == 1  # the others wait, however long the first takes
            assert len([w for w in case.work_items("started") if w.task in TASKS]) == 1
            release.set()
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(entered) == sorted(TASKS)


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_each_once_never_overlapping(seed: int) -> None:
    log: list[str] = []
    state = {"inside": 0, "peak": 0}
    async with yf.Engine(seed=seed, clock=FakeClock(), handlers=_handlers(log, state)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert state["peak"] == 1
    assert sorted(log[:-1]) == sorted(TASKS) and log[-1] == "j"
    _no_overlap(result.trace)
    (j,) = _events(result.trace, "item.enabled", "j")
    assert j["seq"] > max(e["seq"] for t in TASKS for e in _events(result.trace, "item.completed", t))


def test_the_order_is_not_fixed() -> None:
    orders = set()
    for seed in range(12):
        log: list[str] = []
        result = yf.run(SPEC_AUTO, {}, seed=seed, handlers=_handlers(log, {"inside": 0, "peak": 0}))
        assert result.status == "completed", result.error
        orders.add(tuple(log[:-1]))
    assert len(orders) > 1
