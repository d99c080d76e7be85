"""WCP-4 Exclusive Choice: exactly one branch is taken, chosen from data at the split; when
several conditions hold, a fixed precedence (`order`) picks one; when none holds, the default."""

from __future__ import annotations

from typing import Any

import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

BRANCHES = ("low", "high", "vip", "manual")

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp04
nets:
  main:
    input: start
    output: end
    tasks:
      decide:
        run: score
        split: xor
        flows:
          - {to: low, when: "amount < 100"}                # no order: tried after the ordered ones
          - {to: high, when: "amount > 1000", order: 2}
          - {to: vip, when: "vip", order: 1}
          - {to: manual, default: true}
      low: {external: true, flows: [merge]}
      high: {external: true, flows: [merge]}
      vip: {external: true, flows: [merge]}
      manual: {external: true, flows: [merge]}
      merge: {flows: [end]}
""",
    source="wcp04.yaml",
)

SPEC_NO_DEFAULT = yf.loads(
    """
yawlflow: 1
id: wcp04_no_default
nets:
  main:
    input: start
    output: end
    tasks:
      decide:
        split: xor
        flows:
          - {to: low, when: "amount < 100"}
          - {to: high, when: "amount > 1000"}
      low: {flows: [end]}
      high: {flows: [end]}
""",
    source="wcp04_no_default.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _score(data: dict[str, Any]) -> dict[str, Any]:
    # The split reads what this task just wrote: it is evaluated after the output merged.
    return {"amount": data["raw"] * 10, "vip": data["member"]}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raw", "member", "expected"),
    [
        (5, False, "low"),        # only `low` holds
        (500, False, "high"),     # only `high` holds
        (500, True, "vip"),       # vip (order 1) and high (order 2) hold: order 1 wins
        (5, True, "vip"),         # vip and low hold: ordered flows come before unordered ones
        (50, False, "manual"),    # nothing holds: the default
    ],
)
async def test_exactly_one_branch_by_data_and_precedence(raw: int, member: bool, expected: str) -> None:
    async with yf.Engine(clock=FakeClock(), handlers={"score": _score}) as engine:
        case = await engine.start(SPEC, {"raw": raw, "member": member})
        await case.idle()
        live = case.work_items()
        assert [(w.task, w.state) for w in live] == [(expected, "offered")]
        for other in BRANCHES:
            if other != expected:
                assert not _events(case.trace, task=other), other
        await case.complete(live[0].id)
        result = await case.result()

    assert result.status == "completed"
    trace = result.trace
    assert [e["task"] for e in _events(trace, "item.completed")] == ["decide", expected, "merge"]
    assert not _events(trace, "item.cancelled")  # nothing was enabled and then withdrawn
    for other in BRANCHES:
        if other != expected:
            assert not _events(trace, task=other)


@pytest.mark.anyio
async def test_no_true_flow_and_no_default_fails_with_a_located_error() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_NO_DEFAULT, {"amount": 500})
        result = await case.result()
    assert result.status == "failed"
    assert result.error is not None and "$.nets.main.tasks.decide" in result.error
    assert not _events(result.trace, task="low") and not _events(result.trace, task="high")
    assert result.trace[-1]["event"] == "case.failed"


@pytest.mark.parametrize("seed", range(3))
def test_seeded_runs_take_the_same_single_branch(seed: int) -> None:
    result = yf.run(SPEC, {"raw": 500, "member": True}, seed=seed, handlers={"score": _score})
    assert result.status == "waiting"
    assert [(w.task, w.state) for w in result.offered] == [("vip", "offered")]
