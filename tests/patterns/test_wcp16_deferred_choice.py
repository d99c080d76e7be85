"""WCP-16 Deferred Choice: all alternatives are offered at once; the first one *started* wins and
the others are withdrawn in the same atomic step; two never start; the choice is not made from
data at a split."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp16
nets:
  main:
    input: start
    output: end
    conditions:
      start: {flows: [b, c, d]}
    tasks:
      b: {external: true, flows: [after_b]}
      c: {external: true, flows: [after_c]}
      d: {external: true, flows: [end]}
      after_b: {external: true, flows: [end]}
      after_c: {external: true, flows: [end]}
""",
    source="wcp16.yaml",
)

# The choice on one branch of a parallel split, so the case goes on after it is withdrawn.
SPEC_PARALLEL = yf.loads(
    """
yawlflow: 1
id: wcp16_parallel
nets:
  main:
    input: start
    output: end
    conditions:
      choice: {flows: [b, c]}
    tasks:
      a: {split: and, flows: [choice, g]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      g: {external: true, flows: [j]}
      j: {flows: [end]}
""",
    source="wcp16_parallel.yaml",
)

SPEC_TIMER = yf.loads(
    """
yawlflow: 1
id: wcp16_timer
nets:
  main:
    input: start
    output: end
    conditions:
      start: {flows: [b, timeout]}
    tasks:
      b: {external: true, flows: [end]}
      timeout: {timer: {after: 10s}, flows: [expired]}
      expired: {flows: [end]}
""",
    source="wcp16_timer.yaml",
)

SPEC_SIGNALS = yf.loads(
    """
yawlflow: 1
id: wcp16_signals
nets:
  main:
    input: start
    output: end
    conditions:
      start: {flows: [approve, reject]}
    tasks:
      approve: {trigger: {signal: approved}, flows: [ship]}
      reject: {trigger: {signal: rejected}, flows: [refund]}
      ship: {flows: [end]}
      refund: {flows: [end]}
""",
    source="wcp16_signals.yaml",
)

ALTERNATIVES = ("b", "c", "d")


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


@pytest.mark.anyio
@pytest.mark.parametrize("winner", ALTERNATIVES)
async def test_starting_one_withdraws_the_others_in_the_same_step(winner: str) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        offered = {w.task: w.id for w in case.work_items("offered")}
        assert set(offered) == set(ALTERNATIVES)  # all offered at once, at the case's start
        before = len(case.trace)
        await case.start_item(offered[winner])
        step = case.trace[before:]
        losers = [t for t in ALTERNATIVES if t != winner]
        assert [(e["event"], e["task"]) for e in step] == [
            ("item.started", winner), *[("item.cancelled", t) for t in losers]
        ]
        assert [e["seq"] for e in step] == list(range(step[0]["seq"], step[0]["seq"] + len(step)))
        assert [(w.task, w.state) for w in case.work_items()] == [(winner, "started")]

        for loser in losers:  # the withdrawn alternatives can no longer be claimed
            with pytest.raises(yf.InvalidEventError):
                await case.start_item(offered[loser])
            with pytest.raises(yf.InvalidEventError):
                await case.complete(offered[loser])

        await case.complete(offered[winner])
        while case.status == "running":
            (nxt,) = case.work_items()
            await case.complete(nxt.id)
        result = await case.result()

    assert result.status == "completed"
    trace = result.trace
    assert [e["task"] for e in _events(trace, "item.started") if e["task"] in ALTERNATIVES] == [winner]
    for loser in losers:
        assert not _events(trace, "item.started", loser)
        assert not _events(trace, "item.completed", loser)
        assert len(_events(trace, "item.cancelled", loser)) == 1
    other_after = {"b": "after_c", "c": "after_b", "d": None}[winner]
    if other_after:
        assert not _events(trace, task=other_after)


@pytest.mark.anyio
async def test_completing_an_offered_alternative_claims_it_and_withdraws_the_rest() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        offered = {w.task: w.id for w in case.work_items("offered")}
        before = len(case.trace)
        await case.complete(offered["c"], {"picked": "c"})
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert step[0] == ("item.started", "c")
        assert ("item.cancelled", "b") in step and ("item.cancelled", "d") in step
        # the losers go before anything downstream of the winner is enabled
        assert step.index(("item.cancelled", "b")) < step.index(("item.enabled", "after_c"))
        assert step.index(("item.cancelled", "d")) < step.index(("item.enabled", "after_c"))
        assert [(w.task, w.state) for w in case.work_items()] == [("after_c", "offered")]
        await case.cancel()
    assert not _events(case.trace, "item.started", "b") and not _events(case.trace, "item.started", "d")


@pytest.mark.anyio
async def test_cancelling_one_offered_alternative_withdraws_every_alternative() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_PARALLEL, {})
        offered = {w.task: w.id for w in case.work_items("offered")}
        assert set(offered) == {"b", "c", "g"}
        before = len(case.trace)
        await case.cancel_item(offered["c"])
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert sorted(step) == [("item.cancelled", "b"), ("item.cancelled", "c")]
        await case.idle()
        assert [(w.task, w.state) for w in case.work_items()] == [("g", "offered")]
        assert case.status == "running"  # the rest of the case goes on
        await case.complete(offered["g"])
        result = await case.result()
    assert result.status == "completed"
    assert not _events(result.trace, "item.started", "b") and not _events(result.trace, "item.started", "c")
    assert len(_events(result.trace, "item.offered", "b")) == 1  # the choice was not offered again


@pytest.mark.anyio
async def test_racing_claims_let_exactly_one_alternative_start() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC, {})
        offered = {w.task: w.id for w in case.work_items("offered")}
        outcomes: dict[str, str] = {}

        async def claim(task: str) -> None:
            await anyio.lowlevel.checkpoint()
            try:
                await case.start_item(offered[task])
            except yf.InvalidEventError:
                outcomes[task] = "refused"
            else:
                outcomes[task] = "started"

        async with anyio.create_task_group() as tg:
            for task in ALTERNATIVES:
                tg.start_soon(claim, task)
        assert sorted(outcomes.values()) == ["refused", "refused", "started"]
        (winner,) = [t for t, o in outcomes.items() if o == "started"]
        assert [(w.task, w.state) for w in case.work_items()] == [(winner, "started")]
        assert len(_events(case.trace, "item.started")) == 1
        await case.cancel()


@pytest.mark.anyio
async def test_a_timer_alternative_wins_when_nothing_is_started_in_time() -> None:
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(SPEC_TIMER, {})
        assert {w.task: w.state for w in case.work_items()} == {"b": "offered", "timeout": "enabled"}
        await clock.advance(9.999)
        assert {w.task: w.state for w in case.work_items()} == {"b": "offered", "timeout": "enabled"}
        await clock.advance(0.001)
        with anyio.fail_after(10):
            result = await case.result()
    assert result.status == "completed"
    trace = result.trace
    assert not _events(trace, "item.started", "b")
    assert len(_events(trace, "item.cancelled", "b")) == 1
    assert len(_events(trace, "item.completed", "expired")) == 1
    timer_start = _events(trace, "item.started", "timeout")[0]["seq"]
    assert _events(trace, "item.cancelled", "b")[0]["seq"] > timer_start


@pytest.mark.anyio
async def test_starting_the_offered_alternative_disarms_the_timer() -> None:
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(SPEC_TIMER, {})
        await clock.advance(5)
        (b,) = case.work_items("offered")
        before = len(case.trace)
        await case.start_item(b.id)
        assert [(e["event"], e["task"]) for e in case.trace[before:]] == [
            ("item.started", "b"), ("item.cancelled", "timeout")
        ]
        await clock.advance(3600)  # long past the timer: nothing happens
        assert len(case.trace) == before + 2
        assert [(w.task, w.state) for w in case.work_items()] == [("b", "started")]
        await case.complete(b.id)
        result = await case.result()
    assert result.status == "completed"
    assert not _events(result.trace, "item.started", "timeout")
    assert not _events(result.trace, task="expired")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("signal", "winner", "loser"), [("approved", "approve", "reject"), ("rejected", "reject", "approve")]
)
async def test_the_first_signalled_alternative_wins(signal: str, winner: str, loser: str) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_SIGNALS, {})
        assert {w.task: w.state for w in case.work_items()} == {"approve": "enabled", "reject": "enabled"}
        await case.signal(signal)
        result = await case.result()
    assert result.status == "completed"
    assert [e["task"] for e in _events(result.trace, "item.completed")] == [
        winner, {"approve": "ship", "reject": "refund"}[winner]
    ]
    assert len(_events(result.trace, "item.completed", winner)) == 1
    assert not _events(result.trace, "item.completed", loser)
    assert not _events(result.trace, "item.started", loser)
    assert len(_events(result.trace, "item.cancelled", loser)) == 1


@pytest.mark.parametrize("seed", range(3))
def test_seeded_run_waits_with_every_alternative_offered(seed: int) -> None:
    result = yf.run(SPEC, {"would_pick": "c"}, seed=seed)
    assert result.status == "waiting"
    assert sorted(w.task for w in result.offered) == sorted(ALTERNATIVES)  # not decided from data


@pytest.mark.anyio
@pytest.mark.parametrize("head_start", [0, 1, 5, None])
async def test_a_claim_racing_the_timer_lets_exactly_one_win(head_start: int | None) -> None:
    # The person claims b at the very moment the timer expires; `head_start` checkpoints shift
    # which of the two reaches the case first (None: the timer has fired before the claim).
    # Whatever the order, exactly one alternative starts.
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(SPEC_TIMER, {})
        await clock.advance(9)
        (b,) = case.work_items("offered")
        refused: list[str] = []

        async def claim() -> None:
            for _ in range(head_start or 0):
                await anyio.lowlevel.checkpoint()
            try:
                await case.start_item(b.id)
            except yf.InvalidEventError:
                refused.append("b")

        if head_start is None:
            await clock.advance(1)
            await claim()
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(clock.advance, 1)
                tg.start_soon(claim)
        await case.idle()
        started = [e["task"] for e in _events(case.trace, "item.started")]
        assert len(started) == 1, started
        if started == ["b"]:
            assert refused == []
            assert [w.task for w in case.work_items()] == ["b"]
            await case.complete(b.id)
        else:
            assert started == ["timeout"] and refused == ["b"]
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.cancelled")) == 1
