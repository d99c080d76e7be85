"""WCP-28 Blocking Discriminator: fires on the first arrival; a later arrival on a branch that has
already arrived is *held* (its token stays in its condition) until every branch has arrived once,
which resets the join -- then the held token counts for the next round. One firing per round,
never a lost token, never two firings for one round. Meant for joins inside loops or with
concurrent activations.

yawlflow: ``join: {partial: 1, reset: wait}``.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# A loop: round 2 is split while round 1's c has not arrived yet.
SPEC_LOOP = yf.loads(
    """
yawlflow: 1
id: wcp28_loop
nets:
  main:
    input: start
    output: end
    termination: implicit
    conditions:
      bj: {flows: [j]}
      cj: {flows: [j]}
    tasks:
      a: {split: and, flows: [b, c]}
      b: {external: true, flows: [bj]}
      c: {external: true, flows: [cj]}
      j: {join: {partial: 1, reset: wait}, flows: [k]}
      k: {external: true, split: xor, flows: [{to: a, when: "again"}, {to: end, default: true}]}
""",
    source="wcp28_loop.yaml",
)

# Three concurrent activations of the same split.
SPEC_THREADS = yf.loads(
    """
yawlflow: 1
id: wcp28_threads
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      s: {split: {threads: 3}, flows: [a]}
      a: {split: and, flows: [b, c]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      j: {join: {partial: 1}, flows: [k]}
      k: {external: true, flows: [end]}
""",
    source="wcp28_threads.yaml",
)

# The same, auto branches.
SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp28_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      s: {split: {threads: 3}, flows: [a]}
      a: {split: and, flows: [b, c]}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      j: {join: {partial: 1}, run: fire, flows: [end]}
""",
    source="wcp28_auto.yaml",
)

Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _offered(case: yf.Case, task: str) -> list[int]:
    return [w.id for w in case.work_items("offered") if w.task == task]


@pytest.mark.anyio
async def test_a_second_round_arrival_is_held_until_the_reset_then_fires_the_join() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_LOOP, {})
        (b1,) = _offered(case, "b")
        await case.complete(b1)  # round 1, first arrival: fire
        assert len(_events(case.trace, "item.completed", "j")) == 1
        (k1,) = _offered(case, "k")
        await case.complete(k1, {"again": True})  # round 2 split; round 1's c is still out
        (b2,) = _offered(case, "b")
        c_items = _offered(case, "c")
        assert len(c_items) == 2  # one c per round

        before = len(case.trace)
        await case.complete(b2)  # b already arrived in round 1: held, no firing
        assert [(e["event"], e["task"]) for e in case.trace[before:]] == [
            ("item.started", "b"), ("item.completed", "b")
        ]
        assert len(_events(case.trace, "item.completed", "j")) == 1
        assert not _offered(case, "k")

        before = len(case.trace)
        await case.complete(c_items[0])  # round 1 complete: reset; the held b fires round 2
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert step == [
            ("item.started", "c"), ("item.completed", "c"), ("item.completed", "j"),
            ("item.enabled", "k"), ("item.offered", "k"),
        ]
        before = len(case.trace)
        await case.complete(c_items[1])  # round 2's c: absorbed, reset
        assert [(e["event"], e["task"]) for e in case.trace[before:]] == [
            ("item.started", "c"), ("item.completed", "c")
        ]
        (k2,) = _offered(case, "k")
        await case.complete(k2, {"again": False})
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == 2  # once per round
    assert "_tokens" not in result.trace[-1]["data"]  # nothing held, nothing lost


@pytest.mark.anyio
async def test_the_held_token_stays_in_its_condition() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_LOOP, {})
        await case.complete(_offered(case, "b")[0])
        await case.complete(_offered(case, "k")[0], {"again": True})
        await case.complete(_offered(case, "b")[0])  # held in bj
        for c in _offered(case, "c"):  # withdraw both c's: round 1 never completes
            await case.cancel_item(c)
        result = await case.result()
    # implicit termination lists the tokens left: the held one is still in its condition
    assert result.status == "completed"
    assert result.trace[-1]["data"]["_tokens"] == {"bj": 1}
    assert len(_events(result.trace, "item.completed", "j")) == 1


@pytest.mark.anyio
async def test_several_held_tokens_each_wait_for_their_own_round() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_THREADS, {})
        b_items, c_items = _offered(case, "b"), _offered(case, "c")
        assert len(b_items) == 3 and len(c_items) == 3  # three activations
        for b in b_items:
            await case.complete(b)
        assert len(_events(case.trace, "item.completed", "j")) == 1  # rounds 2 and 3 held
        assert len(_offered(case, "k")) == 1
        await case.complete(c_items[0])  # reset: round 2 fires on a held b, the other b still held
        assert len(_events(case.trace, "item.completed", "j")) == 2
        await case.complete(c_items[1])  # reset: round 3 fires on the last held b
        assert len(_events(case.trace, "item.completed", "j")) == 3
        await case.complete(c_items[2])  # round 3 complete: nothing more
        assert len(_events(case.trace, "item.completed", "j")) == 3
        for k in _offered(case, "k"):
            await case.complete(k)
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "k")) == 3
    assert "_tokens" not in result.trace[-1]["data"]


def _expected_firings(arrivals: list[str]) -> list[int]:
    """Indices into ``arrivals`` after which a blocking discriminator over (b, c) fires."""
    arrived: set[str] = set()
    held = {"b": 0, "c": 0}
    fired: list[int] = []
    for idx, x in enumerate(arrivals):
        held[x] += 1
        progress = True
        while progress:
            progress = False
            for y in ("b", "c"):
                if held[y] and y not in arrived:
                    held[y] -= 1
                    arrived.add(y)
                    progress = True
                    if len(arrived) == 1:
                        fired.append(idx)
                    if len(arrived) == 2:
                        arrived = set()
    return fired


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(8))
async def test_seeded_concurrent_activations_fire_once_per_round(seed: int) -> None:
    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        for _ in range(ctx.item_id % 3):
            await anyio.lowlevel.checkpoint()

    fires: list[int] = []

    async def fire(data: dict[str, Any]) -> None:
        fires.append(1)

    async with yf.Engine(seed=seed, clock=FakeClock(), handlers={"work": work, "fire": fire}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {})
            result = await case.result()
    assert result.status == "completed", result.error
    trace = result.trace
    assert len(fires) == 3  # three activations: three rounds, three firings
    arrivals = [e for e in trace if e["event"] == "item.completed" and e["task"] in ("b", "c")]
    enabled = _events(trace, "item.enabled", "j")
    # each firing comes in the step of the arrival that the blocking semantics says
    observed = [max(i for i, a in enumerate(arrivals) if a["seq"] < e["seq"]) for e in enabled]
    assert observed == _expected_firings([a["task"] for a in arrivals]), [a["task"] for a in arrivals]
    assert "_tokens" not in trace[-1]["data"]
