"""WCP-32 Cancelling Partial Join: N out of M; when the join fires (at the N-th arrival) the
remaining incoming branches are cancelled -- their items withdrawn, their tokens removed -- and
the join resets. Nothing is cancelled before the N-th arrival; nothing outside the branches.

yawlflow: ``join: {partial: N, reset: cancel}``.
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
id: wcp32
nets:
  main:
    input: start
    output: end
    tasks:
      s: {split: and, flows: [a, side]}
      a: {split: and, flows: [b, c, d, e]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      e: {external: true, flows: [e2]}
      e2: {external: true, flows: [j]}
      j: {join: {partial: 2, reset: cancel}, flows: [k]}
      side: {external: true, flows: [k]}
      k: {join: and, external: true, flows: [end]}
""",
    source="wcp32.yaml",
)

SPEC_LOOP = yf.loads(
    """
yawlflow: 1
id: wcp32_loop
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      j: {join: {partial: 2, reset: cancel}, flows: [k]}
      k: {external: true, split: xor, flows: [{to: a, when: "again"}, {to: end, default: true}]}
""",
    source="wcp32_loop.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp32_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d, e]}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      d: {run: work, flows: [j]}
      e: {run: work, flows: [j]}
      j: {join: {partial: 2, reset: cancel}, run: fire, flows: [end]}
""",
    source="wcp32_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _items(case: yf.Case) -> dict[str, int]:
    return {w.task: w.id for w in case.work_items()}


@pytest.mark.anyio
@pytest.mark.parametrize("pair", list(itertools.permutations(("b", "c", "d", "e2"), 2))[::2])
async def test_fires_at_the_nth_and_cancels_the_rest(pair: tuple[str, str]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        if "e2" in pair:
            await case.complete(_items(case)["e"])
        items = _items(case)
        await case.complete(items[pair[0]])
        assert not _events(case.trace, "item.cancelled") and not _events(case.trace, task="j")
        before = len(case.trace)
        await case.complete(items[pair[1]])
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        rest = sorted({"b", "c", "d", "e" if "e2" not in pair else "e2"} - set(pair))
        assert step[:2] == [("item.started", pair[1]), ("item.completed", pair[1])]
        assert sorted(step[2:4]) == [("item.cancelled", t) for t in rest]
        assert step[4:] == [("item.completed", "j")]
        assert sorted(_items(case)) == ["side"]  # outside the branches: untouched
        for t in rest:
            with pytest.raises(yf.InvalidEventError):
                await case.complete(items[t])
        await case.complete(_items(case)["side"])
        await case.complete(_items(case)["k"])
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == 1
    if "e2" not in pair:
        assert not _events(result.trace, task="e2")  # e's branch was cut before e2


@pytest.mark.anyio
async def test_resets_and_fires_again_next_round() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_LOOP, {})
        for rnd, pair in enumerate((("b", "c"), ("d", "b"), ("c", "d"))):
            items = _items(case)
            assert sorted(items) == ["b", "c", "d"], rnd
            await case.complete(items[pair[0]])
            await case.complete(items[pair[1]])
            assert len(_events(case.trace, "item.completed", "j")) == rnd + 1
            assert sorted(_items(case)) == ["k"]
            await case.complete(_items(case)["k"], {"again": rnd < 2})
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.cancelled")) == 3


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_exactly_n_finish_the_rest_are_cancelled(seed: int) -> None:
    finished: list[str] = []
    fires: list[int] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range(ctx.item_id % 3):
            await anyio.lowlevel.checkpoint()
        finished.append(ctx.task)

    async with yf.Engine(seed=seed, clock=FakeClock(),
                         handlers={"work": work, "fire": lambda d: fires.append(1)}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert len(finished) == 2 and fires == [1]
    trace = result.trace
    arrivals = [e for e in trace if e["event"] == "item.completed" and e["task"] in BRANCHES]
    assert [e["task"] for e in arrivals] == finished
    cancelled = _events(trace, "item.cancelled")
    assert sorted(e["task"] for e in cancelled) == sorted(set(BRANCHES) - set(finished))
    assert [e["seq"] for e in cancelled] == [arrivals[1]["seq"] + 1, arrivals[1]["seq"] + 2]


@pytest.mark.anyio
async def test_running_branches_are_halted() -> None:
    halted: list[str] = []
    entered = 0
    all_in = anyio.Event()

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        nonlocal entered
        entered += 1
        if entered == 4:
            all_in.set()
        returned = False
        try:
            await all_in.wait()
            if ctx.task in ("c", "e"):
                returned = True
                return
            await anyio.sleep_forever()
        finally:
            if not returned:
                halted.append(ctx.task)

    async with yf.Engine(clock=FakeClock(), handlers={"work": work, "fire": lambda d: None}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
            for _ in range(10):
                await anyio.lowlevel.checkpoint()
    assert result.status == "completed", result.error
    assert sorted(halted) == ["b", "d"]
