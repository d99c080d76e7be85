"""WCP-17 Interleaved Parallel Routing: a set of tasks with a partial order; each runs exactly
once, the partial order holds, and no two run at the same time (any interleaving allowed).

yawlflow: the partial order is the net (a -> b, c -> d on two parallel branches); a net-level
``mutex`` with one region per task lets one of them run at a time. A blocked task is not offered
(or started) until the running one is done; its offer comes back then.
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

TASKS = ("a", "b", "c", "d")
BEFORE = (("a", "b"), ("c", "d"))  # the partial order

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp17
nets:
  main:
    input: start
    output: end
    mutex: {one_at_a_time: [a, b, c, d]}
    tasks:
      s: {split: and, flows: [a, c]}
      a: {external: true, flows: [b]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [d]}
      d: {external: true, flows: [j]}
      j: {join: and, external: true, flows: [end]}
""",
    source="wcp17.yaml",
)

# pa and pc (outside the set) take turns of different lengths, so which chain reaches the set
# first -- and so the interleaving -- depends on timing (or on the seed).
SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp17_auto
nets:
  main:
    input: start
    output: end
    mutex: {one_at_a_time: [a, b, c, d]}
    tasks:
      s: {split: and, flows: [pa, pc]}
      pa: {run: prep, flows: [a]}
      pc: {run: prep, flows: [c]}
      a: {run: work, flows: [b]}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [d]}
      d: {run: work, flows: [j]}
      j: {join: and, run: after, flows: [end]}
""",
    source="wcp17_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _linear_extensions() -> list[tuple[str, ...]]:
    return [
        p for p in itertools.permutations(TASKS)
        if all(p.index(x) < p.index(y) for x, y in BEFORE)
    ]


def _no_overlap(trace: Trace) -> None:
    """Between any task's start and its completion, no other task of the set starts."""
    running: str | None = None
    for e in trace:
        if e["task"] not in TASKS:
            continue
        if e["event"] == "item.started":
            assert running is None, f"{e['task']} started while {running} was running"
            running = e["task"]
        elif e["event"] in ("item.completed", "item.cancelled", "item.failed") and e["task"] == running:
            running = None


def _check_order(order: list[str]) -> None:
    assert sorted(order) == sorted(TASKS), order  # each exactly once
    for x, y in BEFORE:
        assert order.index(x) < order.index(y), order


@pytest.mark.anyio
@pytest.mark.parametrize("order", _linear_extensions())
async def test_every_interleaving_runs_one_at_a_time(order: tuple[str, ...]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        for task in order:
            offered = {w.task: w.id for w in case.work_items("offered")}
            assert task in offered, (task, offered)
            others = [t for t in offered if t != task]
            await case.start_item(offered[task])
            # while it runs, no other task of the set is offered, and none can be started
            assert [(w.task, w.state) for w in case.work_items()] == [(task, "started")]
            for t in others:
                with pytest.raises(yf.InvalidEventError):
                    await case.start_item(offered[t])
            await case.complete(offered[task])
        (j,) = case.work_items("offered")
        assert j.task == "j"
        await case.complete(j.id)
        result = await case.result()
    assert result.status == "completed"
    trace = result.trace
    _no_overlap(trace)
    assert [e["task"] for e in trace if e["event"] == "item.started" and e["task"] in TASKS] == list(order)
    for t in TASKS:
        assert len(_events(trace, "item.completed", t)) == 1


@pytest.mark.anyio
async def test_a_blocked_offer_comes_back_when_the_running_task_is_done() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        offered = {w.task: w.id for w in case.work_items("offered")}
        assert sorted(offered) == ["a", "c"]  # nothing runs yet: both may be chosen
        before = len(case.trace)
        await case.start_item(offered["a"])
        assert [(e["event"], e["task"]) for e in case.trace[before:]] == [
            ("item.started", "a"), ("item.cancelled", "c")  # c withdrawn in the same step
        ]
        before = len(case.trace)
        await case.complete(offered["a"])
        assert sorted(w.task for w in case.work_items("offered")) == ["b", "c"]
        await case.cancel()


def _handlers(log: list[str], state: dict[str, int]) -> dict[str, Any]:
    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        state["inside"] += 1
        state["peak"] = max(state["peak"], state["inside"])
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        log.append(ctx.task)
        state["inside"] -= 1

    async def after(data: dict[str, Any]) -> None:
        log.append("j")

    async def prep(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range(ctx.item_id % 2 * 4):
            await anyio.lowlevel.checkpoint()

    return {"work": work, "after": after, "prep": prep}


@pytest.mark.anyio
@pytest.mark.parametrize("round_", range(4))
async def test_real_concurrency_never_runs_two_at_once(round_: int) -> None:
    log: list[str] = []
    state = {"inside": 0, "peak": 0}
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log, state)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert state["peak"] == 1
    assert log[-1] == "j"
    _check_order(log[:-1])
    _no_overlap(result.trace)


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_each_once_in_partial_order_never_overlapping(seed: int) -> None:
    log: list[str] = []
    state = {"inside": 0, "peak": 0}
    async with yf.Engine(seed=seed, clock=FakeClock(), handlers=_handlers(log, state)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert state["peak"] == 1
    _check_order(log[:-1])
    _no_overlap(result.trace)


def test_different_seeds_give_different_interleavings() -> None:
    orders = set()
    for seed in range(12):
        log: list[str] = []
        result = yf.run(SPEC_AUTO, {}, seed=seed, handlers=_handlers(log, {"inside": 0, "peak": 0}))
        assert result.status == "completed", result.error
        _check_order(log[:-1])
        orders.add(tuple(log[:-1]))
    assert len(orders) > 1  # the order is not fixed by the engine: any interleaving may happen
