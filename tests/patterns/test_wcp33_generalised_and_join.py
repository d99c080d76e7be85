"""WCP-33 Generalised AND-Join: fires when *every* input holds at least one token, consuming one
per input per firing; extra tokens stay for later firings; several tokens on one input never
stand in for a missing one (the Camunda / flowable #4166 / bpmn-js #130 bug).

yawlflow: ``join: and`` over counted tokens.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# b and c are each reached by two threads (multi-merge), so each input of j gets two tokens.
SPEC = yf.loads(
    """
yawlflow: 1
id: wcp33
nets:
  main:
    input: start
    output: end
    termination: implicit
    conditions:
      bj: {flows: [j]}
      cj: {flows: [j]}
    tasks:
      s: {split: and, flows: [x1, x2, y1, y2]}
      x1: {flows: [b]}
      x2: {flows: [b]}
      y1: {flows: [c]}
      y2: {flows: [c]}
      b: {external: true, join: xor, flows: [bj]}
      c: {external: true, join: xor, flows: [cj]}
      j: {join: and, external: true, flows: [end]}
""",
    source="wcp33.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp33_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      s: {split: {threads: 3}, flows: [b, c, d]}
      b: {run: work, join: xor, flows: [j]}
      c: {run: work, join: xor, flows: [j]}
      d: {run: work, join: xor, flows: [j]}
      j: {join: and, run: fire, flows: [end]}
""",
    source="wcp33_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _offered(case: yf.Case, task: str) -> list[int]:
    return [w.id for w in case.work_items("offered") if w.task == task]


@pytest.mark.anyio
async def test_two_tokens_on_one_input_never_stand_in_for_a_missing_one() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        b, c = _offered(case, "b"), _offered(case, "c")
        assert len(b) == 2 and len(c) == 2
        for item in b:
            await case.complete(item)
        assert not _events(case.trace, task="j")  # bj holds 2, cj holds 0: no firing
        for c_item in c[:1]:
            before = len(case.trace)
            await case.complete(c_item)
            step = [(e["event"], e["task"]) for e in case.trace[before:]]
            assert step == [
                ("item.started", "c"), ("item.completed", "c"), ("item.enabled", "j"), ("item.offered", "j")
            ]
        assert len(_offered(case, "j")) == 1  # one firing: min(2, 1)
        # the extra b token stays: the second c makes the second firing
        await case.complete(c[1])
        assert len(_offered(case, "j")) == 2
        for j in _offered(case, "j"):
            await case.complete(j)
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == 2
    assert "_tokens" not in result.trace[-1]["data"]  # all tokens consumed, one per input per firing


@pytest.mark.anyio
async def test_extra_tokens_stay_when_the_other_input_never_catches_up() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        for item in _offered(case, "b"):
            await case.complete(item)
        c = _offered(case, "c")
        await case.complete(c[0])
        await case.cancel_item(c[1])  # the second c never comes
        (j,) = _offered(case, "j")
        await case.complete(j)
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == 1
    assert result.trace[-1]["data"]["_tokens"] == {"bj": 1}  # one b token left over, unused


@pytest.mark.anyio
async def test_an_offered_join_mirrors_its_capacity() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        for item in _offered(case, "b") + _offered(case, "c"):
            await case.complete(item)
        j = _offered(case, "j")
        assert len(j) == 2  # two tokens per input: two firings available
        await case.start_item(j[0])  # claims one token per input; the other offer stands
        assert _offered(case, "j") == [j[1]]
        await case.complete(j[0])
        await case.complete(j[1])
        result = await case.result()
    assert result.status == "completed"
    assert "_tokens" not in result.trace[-1]["data"]


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_every_firing_has_one_token_from_each_input(seed: int) -> None:
    fires: list[int] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range((ctx.item_id + seed) % 3):
            await anyio.lowlevel.checkpoint()

    async with yf.Engine(seed=seed, clock=FakeClock(),
                         handlers={"work": work, "fire": lambda d: fires.append(1)}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert len(fires) == 3
    trace = result.trace
    # at each firing of j, every input had delivered more tokens than j had fired before
    counts = {"b": 0, "c": 0, "d": 0}
    firings = 0
    for e in trace:
        if e["event"] == "item.completed" and e["task"] in counts:
            counts[e["task"]] += 1
        elif e["event"] == "item.enabled" and e["task"] == "j":
            assert min(counts.values()) > firings, (seed, counts, firings)
            firings += 1
    assert firings == 3
    # and it fired as soon as it could: each firing in the step where the minimum rose
    mins = []
    counts = {"b": 0, "c": 0, "d": 0}
    for e in trace:
        if e["event"] == "item.completed" and e["task"] in counts:
            old = min(counts.values())
            counts[e["task"]] += 1
            if min(counts.values()) > old:
                mins.append(e["seq"])
    assert [e["seq"] - 1 for e in _events(trace, "item.enabled", "j")] == mins
    assert "_tokens" not in trace[-1]["data"]
