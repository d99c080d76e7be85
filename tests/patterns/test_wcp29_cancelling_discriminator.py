"""WCP-29 Cancelling Discriminator: on the first arrival the join fires and cancels the remaining
incoming branches (their enabled, offered and running items, and their tokens), then resets.
Nothing outside those branches is touched.

yawlflow: ``join: {partial: 1, reset: cancel}``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

BRANCHES = ("b", "c", "d")

# Branch b is two tasks long; `side` runs in parallel and does not feed the join.
SPEC = yf.loads(
    """
yawlflow: 1
id: wcp29
nets:
  main:
    input: start
    output: end
    tasks:
      s: {split: and, flows: [a, side]}
      a: {split: and, flows: [b1, c, d]}
      b1: {external: true, flows: [b2]}
      b2: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      j: {join: {partial: 1, reset: cancel}, flows: [k]}
      side: {external: true, flows: [k]}
      k: {join: and, external: true, flows: [end]}
""",
    source="wcp29.yaml",
)

SPEC_LOOP = yf.loads(
    """
yawlflow: 1
id: wcp29_loop
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      j: {join: {partial: 1, reset: cancel}, flows: [k]}
      k: {external: true, split: xor, flows: [{to: a, when: "again"}, {to: end, default: true}]}
""",
    source="wcp29_loop.yaml",
)

# One incoming branch is a multiple-instance task.
SPEC_MI = yf.loads(
    """
yawlflow: 1
id: wcp29_mi
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c]}
      b: {external: true, instances: {count: 2, as: gathered}, flows: [j]}
      c: {external: true, flows: [j]}
      j: {join: {partial: 1, reset: cancel}, flows: [k]}
      k: {external: true, flows: [end]}
""",
    source="wcp29_mi.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp29_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      d: {run: work, flows: [j]}
      j: {join: {partial: 1, reset: cancel}, run: first, flows: [end]}
""",
    source="wcp29_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _items(case: yf.Case) -> dict[str, int]:
    return {w.task: w.id for w in case.work_items()}


@pytest.mark.anyio
async def test_first_arrival_fires_and_cancels_the_other_branches_in_the_same_step() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        items = _items(case)
        await case.start_item(items["d"])  # d is running, b1 offered, c offered
        before = len(case.trace)
        await case.complete(items["c"])
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert step[:2] == [("item.started", "c"), ("item.completed", "c")]
        assert sorted(step[2:4]) == [("item.cancelled", "b1"), ("item.cancelled", "d")]
        assert step[4:] == [("item.completed", "j")]  # j fires once; k waits for side
        assert sorted(_items(case)) == ["side"]  # side is untouched
        for t in ("b1", "d"):
            with pytest.raises(yf.InvalidEventError):
                await case.complete(items[t])
        await case.complete(items["side"])
        (k,) = case.work_items()
        await case.complete(k.id)
        result = await case.result()
    assert result.status == "completed"
    trace = result.trace
    assert len(_events(trace, "item.completed", "j")) == 1
    assert not _events(trace, task="b2")
    assert not _events(trace, "item.completed", "d")


@pytest.mark.anyio
async def test_a_branch_cancelled_midway_loses_its_token_too() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        items = _items(case)
        await case.complete(items["b1"])  # b's branch is now at b2
        b2 = _items(case)["b2"]
        await case.complete(items["d"])  # d first: fire, cancel b2 and c
        cancelled = sorted(e["task"] for e in _events(case.trace, "item.cancelled"))
        assert cancelled == ["b2", "c"]
        assert sorted(_items(case)) == ["side"]
        with pytest.raises(yf.InvalidEventError):
            await case.complete(b2)
        await case.complete(_items(case)["side"])
        await case.complete(_items(case)["k"])
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == 1


@pytest.mark.anyio
async def test_a_cancelled_multiple_instance_branch_is_withdrawn_not_completed() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_MI, {})
        b = [w for w in case.work_items() if w.task == "b"]
        (c,) = [w for w in case.work_items() if w.task == "c"]
        await case.complete(b[0].id, {"v": 0})
        before = len(case.trace)
        await case.complete(c.id)
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert ("item.cancelled", "b", 1) in step
        # the cancelled MI task does not complete as a whole: no gathering, no token onwards
        assert ("item.completed", "b", None) not in step
        assert "gathered" not in case.data
        assert [w.task for w in case.work_items()] == ["k"]
        await case.complete(case.work_items()[0].id)
        result = await case.result()
    assert result.status == "completed"
    whole_b = [e for e in result.trace if e["event"] == "item.completed" and e["task"] == "b" and e["instance"] is None]
    assert not whole_b
    assert len(_events(result.trace, "item.completed", "j")) == 1


@pytest.mark.anyio
async def test_the_join_resets_and_fires_again_next_round() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_LOOP, {})
        for rnd, first in enumerate(("b", "d", "c")):
            items = _items(case)
            assert sorted(items) == list(BRANCHES), rnd  # a fresh round: nothing left over
            await case.complete(items[first])
            assert len(_events(case.trace, "item.completed", "j")) == rnd + 1
            assert sorted(_items(case)) == ["k"]
            await case.complete(_items(case)["k"], {"again": rnd < 2})
        result = await case.result()
    assert result.status == "completed"
    trace = result.trace
    assert len(_events(trace, "item.completed", "j")) == 3
    assert len(_events(trace, "item.cancelled")) == 6  # two per round


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_exactly_one_branch_finishes_and_the_join_fires_once(seed: int) -> None:
    finished: list[str] = []
    log: list[str] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range(2):
            await anyio.lowlevel.checkpoint()
        finished.append(ctx.task)

    async def first(data: dict[str, Any]) -> None:
        log.append("j")

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"work": work, "first": first}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert len(finished) == 1 and log == ["j"]
    trace = result.trace
    (done,) = [e for e in trace if e["event"] == "item.completed" and e["task"] in BRANCHES]
    assert done["task"] == finished[0]
    cancelled = [e for e in trace if e["event"] == "item.cancelled"]
    assert sorted(e["task"] for e in cancelled) == sorted(t for t in BRANCHES if t != finished[0])
    assert [e["seq"] for e in cancelled] == [done["seq"] + 1, done["seq"] + 2]  # in the same step


@pytest.mark.anyio
async def test_running_branches_are_halted_under_real_concurrency() -> None:
    halted: list[str] = []
    started = 0
    all_in = anyio.Event()

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        nonlocal started
        started += 1
        if started == 3:
            all_in.set()
        if ctx.task == "c":
            await all_in.wait()
            return
        try:
            await anyio.sleep_forever()
        finally:
            halted.append(ctx.task)

    async with yf.Engine(clock=FakeClock(), handlers={"work": work, "first": lambda d: None}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
    assert result.status == "completed", result.error
    assert sorted(halted) == ["b", "d"]
    assert sorted(e["task"] for e in _events(result.trace, "item.cancelled")) == ["b", "d"]
