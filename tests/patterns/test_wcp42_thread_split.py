"""WCP-42 Thread Split: one thread becomes k concurrent threads on the same branch, without a
multiple-instance construct (the k items are plain items, ``instance: null``).

yawlflow: ``split: {threads: k}`` puts k tokens on each outgoing flow.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp42
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {external: true, split: {threads: 3}, flows: [b]}
      b: {external: true, flows: [end]}
""",
    source="wcp42.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp42_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: {threads: 4}, flows: [b]}
      b: {run: branch, flows: [m]}
      m: {join: {threads: 4}, run: work, flows: [end]}
""",
    source="wcp42_auto.yaml",
)

SPEC_TWO_FLOWS = yf.loads(
    """
yawlflow: 1
id: wcp42_two
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: {threads: 2}, flows: [b, c]}
      b: {external: true, flows: [end]}
      c: {external: true, flows: [end]}
""",
    source="wcp42_two.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


@pytest.mark.anyio
async def test_one_thread_becomes_three_separate_items() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        (a,) = case.work_items("offered")
        before = len(case.trace)
        await case.complete(a.id)
        step = [(e["event"], e["task"], e["instance"]) for e in case.trace[before:]]
        assert step[:2] == [("item.started", "a", None), ("item.completed", "a", None)]
        assert step[2:] == [("item.enabled", "b", None), ("item.offered", "b", None)] * 3
        b = case.work_items("offered")
        assert len(b) == 3 and len({w.id for w in b}) == 3
        assert all(w.task == "b" and w.instance is None for w in b)
        await case.start_item(b[2].id)  # each runs on its own, in any order
        await case.complete(b[0].id)
        assert [(w.id, w.state) for w in case.work_items()] == [(b[1].id, "offered"), (b[2].id, "started")]
        await case.complete(b[2].id)
        await case.complete(b[1].id)
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "b")) == 3
    assert len(_events(result.trace, "item.completed", "a")) == 1


@pytest.mark.anyio
async def test_k_threads_on_each_outgoing_flow() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_TWO_FLOWS, {})
        assert sorted(w.task for w in case.work_items("offered")) == ["b", "b", "c", "c"]
        await case.cancel()


@pytest.mark.anyio
async def test_the_threads_run_concurrently() -> None:
    inside = 0
    peak = 0
    all_in = anyio.Event()
    log: list[str] = []

    async def branch(data: dict[str, Any]) -> None:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        if inside == 4:
            all_in.set()
        await all_in.wait()  # returns only once all four threads are inside together
        inside -= 1
        log.append("b")

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        log.append(ctx.task)

    async with yf.Engine(clock=FakeClock(), handlers={"branch": branch, "work": work}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert peak == 4
    assert log == ["a", "b", "b", "b", "b", "m"]
    assert all(e["instance"] is None for e in _events(result.trace, task="b"))


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_k_runs_of_the_branch_then_one_merge(seed: int) -> None:
    log: list[str] = []

    async def branch(data: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        log.append("b")

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        log.append(ctx.task)

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"branch": branch, "work": work}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert log == ["a", "b", "b", "b", "b", "m"]
    trace = result.trace
    a_done = _events(trace, "item.completed", "a")[0]["seq"]
    starts = _events(trace, "item.started", "b")
    assert len({e["item"] for e in starts}) == 4
    assert [e["seq"] for e in starts] == [a_done + 2 * i + 2 for i in range(4)]  # all in a's step
