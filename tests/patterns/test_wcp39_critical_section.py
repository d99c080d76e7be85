"""WCP-39 Critical Section: across two or more regions (connected sub-paths, in parallel branches),
at most one thread of the *case* is inside any of them at a time; the others wait. A thread is
inside a region from the start of its first task to the completion of its last. The exclusion is
per case: two cases may be inside their own critical sections at once.

yawlflow: ``mutex: {db: [[a1, a2], [b1, b2]]}`` -- each region a list of tasks.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

REGIONS = {"A": ("a1", "a2"), "B": ("b1", "b2")}

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp39
nets:
  main:
    input: start
    output: end
    mutex: {db: [[a1, a2], [b1, b2]]}
    tasks:
      s: {split: and, flows: [a1, b1]}
      a1: {external: true, flows: [a2]}
      a2: {external: true, flows: [a3]}
      a3: {external: true, flows: [j]}
      b1: {external: true, flows: [b2]}
      b2: {external: true, flows: [b3]}
      b3: {external: true, flows: [j]}
      j: {join: and, flows: [end]}
""",
    source="wcp39.yaml",
)

# Three regions, one of them a single task; prep tasks of varying length decide who comes first.
SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp39_auto
nets:
  main:
    input: start
    output: end
    mutex: {db: [[a1, a2], [b1, b2], c1]}
    tasks:
      s: {split: and, flows: [pa, pb, pc]}
      pa: {run: prep, flows: [a1]}
      pb: {run: prep, flows: [b1]}
      pc: {run: prep, flows: [c1]}
      a1: {run: work, flows: [a2]}
      a2: {run: work, flows: [a3]}
      a3: {run: work, flows: [j]}
      b1: {run: work, flows: [b2]}
      b2: {run: work, flows: [b3]}
      b3: {run: work, flows: [j]}
      c1: {run: work, flows: [j]}
      j: {join: and, flows: [end]}
""",
    source="wcp39_auto.yaml",
)

# Region A is entered by two threads of the case (a thread split before it).
SPEC_TWO_THREADS = yf.loads(
    """
yawlflow: 1
id: wcp39_two_threads
nets:
  main:
    input: start
    output: end
    mutex: {db: [[a1, a2], [b1, b2]]}
    tasks:
      s: {split: and, flows: [pa, pb]}
      pa: {run: prep, split: {threads: 2}, flows: [a1]}
      pb: {run: prep, flows: [b1]}
      a1: {run: work, flows: [a2]}
      a2: {run: work, flows: [a3]}
      a3: {run: work, join: {threads: 2}, flows: [j]}
      b1: {run: work, flows: [b2]}
      b2: {run: work, flows: [b3]}
      b3: {run: work, flows: [j]}
      j: {join: and, flows: [end]}
""",
    source="wcp39_two_threads.yaml",
)

AUTO_REGIONS = {"A": ("a1", "a2"), "B": ("b1", "b2"), "C": ("c1", "c1")}

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _check_exclusion(trace: Trace, regions: dict[str, tuple[str, str]]) -> None:
    """Replay the trace: threads inside each region (first task started .. last task completed)."""
    inside = dict.fromkeys(regions, 0)
    for e in trace:
        for name, (first, last) in regions.items():
            if e["event"] == "item.started" and e["task"] == first:
                inside[name] += 1
            if e["event"] in ("item.completed", "item.cancelled") and e["task"] == last:
                inside[name] -= 1
        assert sum(inside.values()) <= 1, (e, inside)


def _offered(case: yf.Case) -> dict[str, int]:
    return {w.task: w.id for w in case.work_items("offered")}


@pytest.mark.anyio
async def test_the_other_region_waits_until_this_one_is_left() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        assert sorted(_offered(case)) == ["a1", "b1"]
        b1_first = _offered(case)["b1"]
        await case.start_item(_offered(case)["a1"])  # region A entered
        assert sorted(_offered(case)) == []
        with pytest.raises(yf.InvalidEventError):
            await case.start_item(b1_first)
        await case.complete(case.work_items("started")[0].id)
        # between a1 and a2 the thread is still inside A: b1 still waits
        assert sorted(_offered(case)) == ["a2"]
        await case.complete(_offered(case)["a2"])  # A left
        assert sorted(_offered(case)) == ["a3", "b1"]
        # outside the regions, work goes on beside the critical section
        offered = _offered(case)
        await case.start_item(offered["b1"])
        await case.start_item(offered["a3"])
        assert sorted((w.task, w.state) for w in case.work_items()) == [("a3", "started"), ("b1", "started")]
        await case.complete(offered["a3"])
        await case.complete(offered["b1"])
        await case.complete(_offered(case)["b2"])
        await case.complete(_offered(case)["b3"])
        result = await case.result()
    assert result.status == "completed"
    _check_exclusion(result.trace, REGIONS)


@pytest.mark.anyio
@pytest.mark.parametrize("first", ["a1", "b1"])
async def test_either_region_may_go_first_and_exclusion_holds(first: str) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        while case.status == "running":
            offered = _offered(case)
            pick = first if first in offered else sorted(offered)[0]
            await case.complete(offered[pick])
        result = await case.result()
    assert result.status == "completed"
    _check_exclusion(result.trace, REGIONS)
    starts = [e["task"] for e in _events(result.trace, "item.started") if e["task"] in ("a1", "b1")]
    assert starts[0] == first


def _handlers(state: dict[str, Any]) -> dict[str, Any]:
    region_of = {t: r for r, ts in AUTO_REGIONS.items() for t in ts}

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        region = region_of.get(ctx.task)
        if region is not None:
            state["running"].append(region)
            assert len(state["running"]) == 1, state["running"]  # no two region tasks at once
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        if region is not None:
            state["running"].remove(region)
        state["log"].append(ctx.task)

    async def prep(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range(ctx.item_id * 2 % 5):
            await anyio.lowlevel.checkpoint()

    return {"work": work, "prep": prep}


@pytest.mark.anyio
@pytest.mark.parametrize("round_", range(3))
async def test_real_concurrency_never_two_threads_in_the_regions(round_: int) -> None:
    state: dict[str, Any] = {"running": [], "log": []}
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(state)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(state["log"]) == sorted(["a1", "a2", "a3", "b1", "b2", "b3", "c1"])
    _check_exclusion(result.trace, AUTO_REGIONS)


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_never_two_threads_in_the_regions(seed: int) -> None:
    state: dict[str, Any] = {"running": [], "log": []}
    async with yf.Engine(seed=seed, clock=FakeClock(), handlers=_handlers(state)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert sorted(state["log"]) == sorted(["a1", "a2", "a3", "b1", "b2", "b3", "c1"])
    _check_exclusion(result.trace, AUTO_REGIONS)


@pytest.mark.anyio
@pytest.mark.parametrize("seed", [*range(6), None])
async def test_two_threads_entering_one_region_take_turns_with_the_other(seed: int | None) -> None:
    # Each of the two threads on a1 -> a2 is inside region A on its own; neither may overlap the
    # other, nor region B; and all of them get through (nothing is left stuck at the mutex).
    state: dict[str, Any] = {"running": [], "log": []}
    async with yf.Engine(seed=seed, clock=FakeClock(), handlers=_handlers(state)) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_TWO_THREADS, {})
            result = await case.result()
    assert result.status == "completed", result.error
    # a3 merges the two threads (join: {threads: 2}): it runs once
    assert sorted(state["log"]) == sorted(["a1", "a1", "a2", "a2", "a3", "b1", "b2", "b3"])
    _check_exclusion(result.trace, REGIONS)


@pytest.mark.anyio
async def test_a_held_region_blocks_the_others_however_long_it_takes() -> None:
    release = anyio.Event()
    entered: list[str] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        entered.append(ctx.task)
        if ctx.task == "a2":
            await release.wait()

    async def prep(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        if ctx.task != "pa":
            while "a1" not in entered:  # region A is entered first
                await anyio.lowlevel.checkpoint()

    async with yf.Engine(clock=FakeClock(), handlers={"work": work, "prep": prep}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            while "a2" not in entered:
                await anyio.lowlevel.checkpoint()
            for _ in range(50):
                await anyio.lowlevel.checkpoint()
            assert "b1" not in entered and "c1" not in entered
            release.set()
            result = await case.result()
    assert result.status == "completed", result.error
    _check_exclusion(result.trace, AUTO_REGIONS)


@pytest.mark.anyio
async def test_the_exclusion_is_per_case_not_per_engine() -> None:
    inside = 0
    both_in = anyio.Event()

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        nonlocal inside
        if ctx.task == "a1":
            inside += 1
            if inside == 2:
                both_in.set()
            await both_in.wait()  # only returns when two cases are in their sections at once

    async def prep(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        if ctx.task != "pa":
            await both_in.wait()

    async with yf.Engine(clock=FakeClock(), handlers={"work": work, "prep": prep}) as engine:
        with anyio.fail_after(10):
            one = await engine.start(SPEC_AUTO, {})
            two = await engine.start(SPEC_AUTO, {})
            results = [await one.result(), await two.result()]
    assert [r.status for r in results] == ["completed", "completed"]
    for r in results:
        _check_exclusion(r.trace, AUTO_REGIONS)
