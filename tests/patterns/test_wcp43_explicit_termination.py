"""WCP-43 Explicit Termination: reaching the designated end node ends the case; the remaining
work is withdrawn and the case counts as completed, not failed."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp43
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d, e, s, t]}
      b: {external: true, flows: [end]}
      c: {external: true, flows: [j]}
      d: {run: stuck, flows: [j]}
      e: {trigger: {signal: go}, flows: [j]}
      s: {net: child, flows: [j]}
      t: {timer: {after: 1h}, flows: [j]}
      j: {join: and, flows: [end]}
  child:
    input: cs
    output: ce
    tasks:
      cext: {external: true, flows: [ce]}
""",
    source="wcp43.yaml",
)

# A sub-net that reaches its own output while work remains: the sub-case completes, its leftover
# work is withdrawn, and the caller goes on.
SPEC_SUBNET = yf.loads(
    """
yawlflow: 1
id: wcp43_subnet
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      call: {net: child, flows: [after]}
      after: {external: true, flows: [end]}
  child:
    input: cs
    output: ce
    tasks:
      split: {split: and, flows: [left, quick]}
      left: {external: true, flows: [ce]}
      quick: {flows: [ce]}
""",
    source="wcp43_subnet.yaml",
)

WITHDRAWN = ("c", "d", "e", "s", "t")


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


class Stuck:
    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.halted = anyio.Event()
        self._never = anyio.Event()

    async def __call__(self, data: dict[str, Any]) -> None:
        self.entered.set()
        try:
            await self._never.wait()
        except anyio.get_cancelled_exc_class():
            self.halted.set()
            raise


@pytest.mark.anyio
async def test_reaching_the_end_withdraws_the_rest_and_completes() -> None:
    clock = FakeClock()
    stuck = Stuck()
    async with yf.Engine(clock=clock, handlers={"stuck": stuck}) as engine:
        case = await engine.start(SPEC, {})
        with anyio.fail_after(10):
            await stuck.entered.wait()
        await anyio.wait_all_tasks_blocked()
        sub_id = next(e["case"] for e in case.trace if e["event"] == "case.started" and e["case"] != case.id)
        sub = engine.case(sub_id)
        assert {w.task: w.state for w in case.work_items()} == {
            "b": "offered", "c": "offered", "d": "started", "e": "enabled", "s": "started", "t": "enabled",
        }
        (b,) = [w for w in case.work_items() if w.task == "b"]
        await case.complete(b.id, {"outcome": "b"})
        assert case.status == "completed"
        with anyio.fail_after(10):
            await stuck.halted.wait()
            result = await case.result()
        assert sub.status == "cancelled"  # the sub-case is withdrawn work, too
        settled = len(case.trace)
        await clock.advance(7200)  # the timer would be long due
        assert len(case.trace) == settled
        with pytest.raises(yf.InvalidEventError):
            await case.signal("go")

    assert result.status == "completed"
    assert result.error is None
    assert result.data == {"outcome": "b"}
    trace = result.trace
    own = [e for e in trace if e["case"] == case.id]
    assert sorted(e["task"] for e in _events(own, "item.cancelled")) == sorted(WITHDRAWN)
    assert not _events(trace, "case.failed")
    assert not _events(trace, task="j")
    assert "_tokens" not in own[-1]["data"]
    assert own[-1]["event"] == "case.completed"
    sub_events = [e for e in trace if e["case"] == sub_id]
    assert [e["event"] for e in sub_events][-2:] == ["item.cancelled", "case.cancelled"]
    # The case's own `case.completed` closes its trace: nothing is recorded after it.
    assert (trace[-1]["event"], trace[-1]["case"]) == ("case.completed", case.id)


@pytest.mark.anyio
async def test_a_sub_net_reaching_its_output_completes_and_the_caller_goes_on() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_SUBNET, {})
        await case.idle()
        assert [(w.task, w.state) for w in case.work_items()] == [("after", "offered")]
        (after,) = case.work_items()
        await case.complete(after.id)
        result = await case.result()
    assert result.status == "completed"
    trace = result.trace
    sub_events = [e for e in trace if e["case"] != case.id]
    assert [e["task"] for e in _events(sub_events, "item.cancelled")] == ["left"]
    assert sub_events[-1]["event"] == "case.completed"
    assert len(_events(trace, "item.completed", "call")) == 1


def test_run_completes_when_the_end_is_reached_with_work_outstanding() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp43_run
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c]}
      b: {external: true, flows: [end]}
      c: {flows: [end]}
""",
        source="wcp43_run.yaml",
    )
    result = yf.run(spec, {}, seed=0)
    assert result.status == "completed"
    assert [e["task"] for e in _events(result.trace, "item.cancelled")] == ["b"]
    assert result.trace[-1]["event"] == "case.completed"
