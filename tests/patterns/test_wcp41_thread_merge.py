"""WCP-41 Thread Merge: k concurrent threads of the same case on one branch merge into one --
the merge fires once, after all k have arrived, never with fewer.

yawlflow: ``join: {threads: k}`` fires when its inputs hold k tokens in all, and consumes them.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# Three threads on branch b (made by a multi-merge, not by a thread split) merge at m.
SPEC = yf.loads(
    """
yawlflow: 1
id: wcp41
nets:
  main:
    input: start
    output: end
    tasks:
      s: {split: and, flows: [x, y, z]}
      x: {flows: [b]}
      y: {flows: [b]}
      z: {flows: [b]}
      b: {external: true, join: xor, flows: [m]}
      m: {join: {threads: 3}, external: true, flows: [end]}
""",
    source="wcp41.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp41_auto
nets:
  main:
    input: start
    output: end
    tasks:
      s: {split: {threads: 6}, flows: [b]}
      b: {run: work, join: xor, flows: [m]}
      m: {join: {threads: 3}, run: merged, flows: [t]}
      t: {join: {threads: 2}, run: last, flows: [end]}
""",
    source="wcp41_auto.yaml",
)

# Tokens on several inputs count together.
SPEC_INPUTS = yf.loads(
    """
yawlflow: 1
id: wcp41_inputs
nets:
  main:
    input: start
    output: end
    tasks:
      s: {split: and, flows: [b, c]}
      b: {external: true, split: {threads: 2}, flows: [m]}
      c: {external: true, flows: [m]}
      m: {join: {threads: 3}, external: true, flows: [end]}
""",
    source="wcp41_inputs.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _offered(case: yf.Case, task: str) -> list[int]:
    return [w.id for w in case.work_items("offered") if w.task == task]


@pytest.mark.anyio
async def test_three_threads_become_one_after_the_last_arrives() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        b = _offered(case, "b")
        assert len(b) == 3  # three threads on one branch
        await case.complete(b[0])
        await case.complete(b[1])
        assert not _events(case.trace, task="m")  # two of three: no merge yet
        before = len(case.trace)
        await case.complete(b[2])
        assert [(e["event"], e["task"]) for e in case.trace[before:]] == [
            ("item.started", "b"), ("item.completed", "b"), ("item.enabled", "m"), ("item.offered", "m"),
        ]
        (m,) = _offered(case, "m")  # one thread continues
        await case.complete(m)
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "m")) == 1


@pytest.mark.anyio
async def test_tokens_on_several_inputs_count_together() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_INPUTS, {})
        await case.complete(_offered(case, "b")[0])  # two threads into m
        assert not _events(case.trace, task="m")
        await case.complete(_offered(case, "c")[0])  # the third
        assert len(_offered(case, "m")) == 1
        await case.complete(_offered(case, "m")[0])
        result = await case.result()
    assert result.status == "completed"


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_six_threads_merge_in_threes_then_twos(seed: int) -> None:
    log: list[str] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range(ctx.item_id % 3):
            await anyio.lowlevel.checkpoint()
        log.append("b")

    async def merged(data: dict[str, Any]) -> None:
        await anyio.lowlevel.checkpoint()
        log.append("m")

    async def last(data: dict[str, Any]) -> None:
        log.append("t")

    handlers: dict[str, Any] = {"work": work, "merged": merged, "last": last}
    async with yf.Engine(seed=seed, clock=FakeClock(), handlers=handlers) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert log.count("b") == 6 and log.count("m") == 2 and log.count("t") == 1 and log[-1] == "t"
    trace = result.trace
    b_done = [e["seq"] for e in _events(trace, "item.completed", "b")]
    m_enabled = [e["seq"] for e in _events(trace, "item.enabled", "m")]
    assert m_enabled == [b_done[2] + 1, b_done[5] + 1]  # at the 3rd and 6th arrival, never before
    m_done = [e["seq"] for e in _events(trace, "item.completed", "m")]
    (t_enabled,) = [e["seq"] for e in _events(trace, "item.enabled", "t")]
    assert t_enabled == m_done[1] + 1


@pytest.mark.anyio
async def test_a_missing_thread_leaves_the_merge_unfired() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        b = _offered(case, "b")
        await case.complete(b[0])
        await case.complete(b[1])
        await case.cancel_item(b[2])
        result = await case.result()
    assert result.status == "failed"  # explicit termination: two threads stuck before m
    assert result.error is not None and "(2)" in result.error
    assert not _events(result.trace, task="m")
