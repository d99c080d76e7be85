"""WCP-31 Blocking Partial Join: N out of M; fires at the N-th distinct arrival; later arrivals on
branches that already arrived are held (their tokens stay in their conditions) until all M have
arrived once, which resets the join and lets the held tokens count for the next round.

yawlflow: ``join: {partial: N, reset: wait}``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

BRANCHES = ("b", "c", "d")

# Two concurrent activations of a 3-way split.
SPEC = yf.loads(
    """
yawlflow: 1
id: wcp31
nets:
  main:
    input: start
    output: end
    termination: implicit
    conditions:
      bj: {flows: [j]}
      cj: {flows: [j]}
      dj: {flows: [j]}
    tasks:
      s: {split: {threads: 2}, flows: [a]}
      a: {split: and, flows: [b, c, d]}
      b: {external: true, flows: [bj]}
      c: {external: true, flows: [cj]}
      d: {external: true, flows: [dj]}
      j: {join: {partial: 2, reset: wait}, flows: [k]}
      k: {external: true, flows: [end]}
""",
    source="wcp31.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp31_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      s: {split: {threads: 3}, flows: [a]}
      a: {split: and, flows: [b, c, d]}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      d: {run: work, flows: [j]}
      j: {join: {partial: 2}, run: fire, flows: [end]}
""",
    source="wcp31_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _offered(case: yf.Case, task: str) -> list[int]:
    return [w.id for w in case.work_items("offered") if w.task == task]


def _fired(case: yf.Case) -> int:
    return len(_events(case.trace, "item.completed", "j"))


@pytest.mark.anyio
async def test_second_round_arrivals_are_held_until_the_reset() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        b, c, d = (_offered(case, t) for t in BRANCHES)
        assert len(b) == len(c) == len(d) == 2
        await case.complete(b[0])
        await case.complete(b[1])  # b twice: one distinct branch -- never stands in for a second
        assert _fired(case) == 0
        await case.complete(c[0])  # N = 2 distinct: fire
        assert _fired(case) == 1
        await case.complete(c[1])  # held: c already arrived in round 1
        assert _fired(case) == 1
        assert len(_offered(case, "k")) == 1
        before = len(case.trace)
        await case.complete(d[0])  # round 1 complete: reset; held b and c make round 2 fire
        assert [(e["event"], e["task"]) for e in case.trace[before:]] == [
            ("item.started", "d"), ("item.completed", "d"), ("item.completed", "j"),
            ("item.enabled", "k"), ("item.offered", "k"),
        ]
        await case.complete(d[1])  # round 2's d: absorbed
        assert _fired(case) == 2
        for k in _offered(case, "k"):
            await case.complete(k)
        result = await case.result()
    assert result.status == "completed"
    assert _fired(case) == 2
    assert "_tokens" not in result.trace[-1]["data"]


@pytest.mark.anyio
async def test_held_tokens_stay_in_their_conditions() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        b, c, d = (_offered(case, t) for t in BRANCHES)
        for item in (b[0], c[0], b[1], c[1]):
            await case.complete(item)
        assert _fired(case) == 1
        for item in d:  # round 1 never completes
            await case.cancel_item(item)
        for k in _offered(case, "k"):
            await case.complete(k)
        result = await case.result()
    assert result.status == "completed"
    assert result.trace[-1]["data"]["_tokens"] == {"bj": 1, "cj": 1}


def _expected_firings(arrivals: list[str], n: int) -> list[int]:
    """Indices into ``arrivals`` after which a blocking N-of-(b, c, d) join fires."""
    arrived: set[str] = set()
    fired = False
    held = dict.fromkeys(BRANCHES, 0)
    out: list[int] = []
    for idx, x in enumerate(arrivals):
        held[x] += 1
        progress = True
        while progress:
            progress = False
            for y in BRANCHES:
                if held[y] and y not in arrived:
                    held[y] -= 1
                    arrived.add(y)
                    progress = True
                    if not fired and len(arrived) >= n:
                        fired = True
                        out.append(idx)
                    if len(arrived) == len(BRANCHES):
                        arrived, fired = set(), False
    return out


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_concurrent_activations_fire_once_per_round(seed: int) -> None:
    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range((ctx.item_id * 5 + seed) % 4):
            await anyio.lowlevel.checkpoint()

    fires: list[int] = []
    async with yf.Engine(seed=seed, clock=FakeClock(),
                         handlers={"work": work, "fire": lambda d: fires.append(1)}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    assert len(fires) == 3
    trace = result.trace
    arrivals = [e for e in trace if e["event"] == "item.completed" and e["task"] in BRANCHES]
    assert len(arrivals) == 9
    enabled = _events(trace, "item.enabled", "j")
    observed = [max(i for i, a in enumerate(arrivals) if a["seq"] < e["seq"]) for e in enabled]
    assert observed == _expected_firings([a["task"] for a in arrivals], 2), [a["task"] for a in arrivals]
    assert "_tokens" not in trace[-1]["data"]
