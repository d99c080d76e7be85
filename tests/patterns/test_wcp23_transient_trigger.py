"""WCP-23 Transient Trigger: a signal counts only if the task is enabled when it arrives; earlier
signals are lost."""

from __future__ import annotations

from typing import Any

import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp23
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, flows: [b]}
      b: {trigger: {signal: go}, run: work, flows: [end]}
""",
    source="wcp23.yaml",
)

SPEC_TWO = yf.loads(
    """
yawlflow: 1
id: wcp23_two
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c]}
      b: {trigger: {signal: go}, flows: [j]}
      c: {trigger: {signal: go}, flows: [j]}
      j: {join: and, flows: [end]}
""",
    source="wcp23_two.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _work(log: list[dict[str, Any]]) -> dict[str, Any]:
    def work(data: dict[str, Any]) -> None:
        log.append(dict(data))

    return {"work": work}


@pytest.mark.anyio
async def test_a_signal_before_the_task_is_enabled_is_lost() -> None:
    clock = FakeClock()
    log: list[dict[str, Any]] = []
    async with yf.Engine(clock=clock, handlers=_work(log)) as engine:
        case = await engine.start(SPEC, {})
        await case.signal("go", {"early": True})
        await case.signal("go")
        assert len(_events(case.trace, "signal.received")) == 2  # received, and lost

        (a,) = case.work_items("offered")
        await case.complete(a.id)
        await case.idle()
        await clock.advance(3600)
        # b waits: neither early signal counted. The case is alive, not done, not deadlocked.
        assert [(w.task, w.state) for w in case.work_items()] == [("b", "enabled")]
        assert case.status == "running"
        assert not _events(case.trace, "item.started", "b")
        assert log == []

        before = len(case.trace)
        await case.signal("go", {"late": True})
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert step[:2] == [("signal.received", None), ("item.started", "b")]  # starts at once
        result = await case.result()

    assert result.status == "completed"
    assert len(log) == 1 and log[0]["late"] is True
    assert result.data["early"] is True  # signal data merges even when nobody waits
    assert len(_events(result.trace, "item.completed", "b")) == 1


@pytest.mark.anyio
async def test_other_signals_do_not_trigger_it() -> None:
    async with yf.Engine(clock=FakeClock(), handlers=_work([])) as engine:
        case = await engine.start(SPEC, {})
        (a,) = case.work_items("offered")
        await case.complete(a.id)
        await case.signal("stop")
        await case.signal("GO")
        await case.idle()
        assert [(w.task, w.state) for w in case.work_items()] == [("b", "enabled")]
        await case.signal("go")
        result = await case.result()
    assert result.status == "completed"


@pytest.mark.anyio
async def test_one_signal_reaches_every_task_waiting_now() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_TWO, {})
        assert {w.task: w.state for w in case.work_items()} == {"b": "enabled", "c": "enabled"}
        await case.signal("go")
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == 1


def test_run_reports_waiting_when_only_a_trigger_could_move_it() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp23_run
nets:
  main:
    input: start
    output: end
    tasks:
      a: {flows: [b]}
      b: {trigger: {signal: go}, flows: [end]}
""",
        source="wcp23_run.yaml",
    )
    result = yf.run(spec, {}, seed=1)
    assert result.status == "waiting"
    assert result.offered == []
    assert not _events(result.trace, "item.completed", "b")
