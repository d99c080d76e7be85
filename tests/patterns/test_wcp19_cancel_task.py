"""WCP-19 Cancel Task: an enabled task is withdrawn before it starts, or a started one is halted;
the rest of the case goes on."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC_TEXT = """
yawlflow: 1
id: wcp19
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c]}
      b: {B, flows: [d]}
      c: {external: true, flows: [d]}
      d: {join: xor, flows: [end]}
"""


def _spec(b: str) -> yf.Spec:
    return yf.loads(SPEC_TEXT.replace("{B,", "{" + b + ","), source="wcp19.yaml")


SPEC_OFFERED = _spec("external: true")
SPEC_RUNNING = _spec("run: stuck")
SPEC_WAITING = _spec("trigger: {signal: go}")

SPEC_COMPOSITE = yf.loads(
    """
yawlflow: 1
id: wcp19_composite
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c]}
      b: {net: inner, flows: [d]}
      c: {external: true, flows: [d]}
      d: {join: xor, flows: [end]}
  inner:
    input: i
    output: o
    tasks:
      work: {run: stuck, split: and, flows: [o]}
""",
    source="wcp19_composite.yaml",
)

SPEC_CANCELS = yf.loads(
    """
yawlflow: 1
id: wcp19_cancels
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c]}
      b: {run: stuck, flows: [d]}
      c: {external: true, cancels: [b], flows: [d]}
      d: {join: xor, flows: [end]}
""",
    source="wcp19_cancels.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


class Stuck:
    """An async handler that never finishes by itself and records being cancelled."""

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


async def _finish_with_c(case: yf.Case) -> yf.Result:
    (c,) = [w for w in case.work_items() if w.task == "c"]
    assert c.state == "offered"
    await case.complete(c.id, {"c_done": True})
    with anyio.fail_after(10):
        return await case.result()


@pytest.mark.anyio
async def test_an_offered_item_is_withdrawn_and_the_case_goes_on() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_OFFERED, {})
        items = {w.task: w.id for w in case.work_items("offered")}
        before = len(case.trace)
        await case.cancel_item(items["b"])
        assert [(e["event"], e["task"], e["item"]) for e in case.trace[before:]] == [
            ("item.cancelled", "b", items["b"])
        ]
        await case.idle()
        assert [(w.task, w.state) for w in case.work_items()] == [("c", "offered")]  # b is not re-offered
        with pytest.raises(yf.InvalidEventError):
            await case.start_item(items["b"])
        result = await _finish_with_c(case)
    assert result.status == "completed"
    assert result.data == {"c_done": True}
    assert not _events(result.trace, "item.started", "b")
    assert len(_events(result.trace, "item.completed", "d")) == 1


@pytest.mark.anyio
async def test_a_started_external_item_is_halted() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_OFFERED, {})
        items = {w.task: w.id for w in case.work_items("offered")}
        await case.start_item(items["b"])
        await case.cancel_item(items["b"])
        assert _events(case.trace)[-1]["event"] == "item.cancelled"
        with pytest.raises(yf.InvalidEventError):
            await case.complete(items["b"], {"late": True})  # a halted item cannot complete
        result = await _finish_with_c(case)
    assert result.status == "completed"
    assert "late" not in result.data
    assert not _events(result.trace, "item.completed", "b")


@pytest.mark.anyio
async def test_a_running_handler_is_halted_by_cancel_item() -> None:
    stuck = Stuck()
    async with yf.Engine(clock=FakeClock(), handlers={"stuck": stuck}) as engine:
        case = await engine.start(SPEC_RUNNING, {})
        with anyio.fail_after(10):
            await stuck.entered.wait()
        (b,) = [w for w in case.work_items() if w.task == "b"]
        assert b.state == "started"
        await case.cancel_item(b.id)
        with anyio.fail_after(10):
            await stuck.halted.wait()  # the handler itself saw the cancellation
        await case.idle()
        assert [(w.task, w.state) for w in case.work_items()] == [("c", "offered")]
        result = await _finish_with_c(case)
    assert result.status == "completed"
    trace = result.trace
    assert [e["item"] for e in _events(trace, "item.cancelled")] == [b.id]
    assert not _events(trace, "item.completed", "b") and not _events(trace, "item.failed")


@pytest.mark.anyio
async def test_an_enabled_item_waiting_for_its_trigger_is_withdrawn() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_WAITING, {})
        (b,) = [w for w in case.work_items() if w.task == "b"]
        assert b.state == "enabled"
        await case.cancel_item(b.id)
        await case.signal("go")  # too late: b was withdrawn, its token with it
        await case.idle()
        assert [(w.task, w.state) for w in case.work_items()] == [("c", "offered")]
        result = await _finish_with_c(case)
    assert result.status == "completed"
    assert not _events(result.trace, "item.completed", "b")
    assert len(_events(result.trace, "item.cancelled", "b")) == 1


@pytest.mark.anyio
async def test_a_cancellation_set_halts_the_running_task() -> None:
    stuck = Stuck()
    async with yf.Engine(clock=FakeClock(), handlers={"stuck": stuck}) as engine:
        case = await engine.start(SPEC_CANCELS, {})
        with anyio.fail_after(10):
            await stuck.entered.wait()
        (b,) = [w for w in case.work_items() if w.task == "b"]
        (c,) = case.work_items("offered")
        before = len(case.trace)
        await case.complete(c.id)
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert step.index(("item.completed", "c")) < step.index(("item.cancelled", "b"))
        assert step.index(("item.cancelled", "b")) < step.index(("item.completed", "d"))
        with anyio.fail_after(10):
            await stuck.halted.wait()
            result = await case.result()
    assert result.status == "completed"
    assert [e["item"] for e in _events(result.trace, "item.cancelled")] == [b.id]
    assert len(_events(result.trace, "item.completed", "d")) == 1  # only c's token reached d


@pytest.mark.anyio
async def test_cancelling_an_item_that_is_not_live_is_refused() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_OFFERED, {})
        items = {w.task: w.id for w in case.work_items("offered")}
        await case.cancel_item(items["b"])
        before = list(case.trace)
        with pytest.raises(yf.InvalidEventError):
            await case.cancel_item(items["b"])
        with pytest.raises(yf.InvalidEventError):
            await case.cancel_item(999)
        assert case.trace == before
        await case.cancel()


@pytest.mark.anyio
async def test_a_running_composite_task_is_halted_with_its_sub_case() -> None:
    stuck = Stuck()
    async with yf.Engine(clock=FakeClock(), handlers={"stuck": stuck}) as engine:
        case = await engine.start(SPEC_COMPOSITE, {})
        with anyio.fail_after(10):
            await stuck.entered.wait()
        (b,) = [w for w in case.work_items() if w.task == "b"]
        assert b.state == "started"
        sub_id = next(e["case"] for e in case.trace if e["event"] == "case.started" and e["case"] != case.id)
        await case.cancel_item(b.id)
        with anyio.fail_after(10):
            await stuck.halted.wait()
        assert engine.case(sub_id).status == "cancelled"
        result = await _finish_with_c(case)
    assert result.status == "completed", result.error
    trace = result.trace
    assert [e["task"] for e in _events(trace, "item.cancelled") if e["case"] == case.id] == ["b"]
    assert [e["task"] for e in _events(trace, "item.cancelled") if e["case"] == sub_id] == ["work"]
    assert not _events(trace, "item.failed")


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(3))
async def test_seeded_cancel_of_a_queued_item_means_its_handler_never_runs(seed: int) -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp19_queued
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      d: {run: work, flows: [j]}
      j: {join: xor, run: work, flows: [end]}
""",
        source="wcp19_queued.yaml",
    )
    calls: list[str] = []
    entered = anyio.Event()
    release = anyio.Event()

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        calls.append(ctx.task)
        if len(calls) == 1:
            entered.set()
            await release.wait()

    async with yf.Engine(clock=FakeClock(), seed=seed, handlers={"work": work}) as engine:
        case = await engine.start(spec, {})
        with anyio.fail_after(10):
            await entered.wait()
        await anyio.wait_all_tasks_blocked()
        (running,) = calls
        victim = next(w for w in case.work_items() if w.task in "bcd" and w.task != running)
        await case.cancel_item(victim.id)
        release.set()
        with anyio.fail_after(10):
            result = await case.result()
    assert victim.task not in calls, (seed, calls)
    assert [e["item"] for e in _events(result.trace, "item.cancelled")] == [victim.id]
    assert result.status == "completed", result.error
    assert calls.count("j") == 2  # the two survivors each went on through the multi-merge


@pytest.mark.anyio
@pytest.mark.parametrize("head_start", [-1, 0, 1, 3])
async def test_a_cancel_racing_the_handlers_completion_has_one_outcome(head_start: int) -> None:
    entered, finish = anyio.Event(), anyio.Event()

    async def racing(data: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        await finish.wait()
        return {"b_done": True}

    async with yf.Engine(clock=FakeClock(), handlers={"racing": racing}) as engine:
        case = await engine.start(_spec("run: racing"), {})
        with anyio.fail_after(10):
            await entered.wait()
        (b,) = [w for w in case.work_items() if w.task == "b"]
        refused: list[int] = []

        async def cancel() -> None:
            for _ in range(head_start):
                await anyio.lowlevel.checkpoint()
            try:
                await case.cancel_item(b.id)
            except yf.InvalidEventError:
                refused.append(b.id)

        finish.set()  # the handler may now return while the cancel is on its way
        if head_start < 0:
            await cancel()  # no checkpoint in between: the cancel gets there first
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel)
        await case.idle()
        outcomes = [e["event"] for e in case.trace if e["item"] == b.id and e["event"] in (
            "item.completed", "item.cancelled")]
        assert len(outcomes) == 1, outcomes
        assert (outcomes == ["item.completed"]) == bool(refused)
        assert ("b_done" in case.data) == (outcomes == ["item.completed"])
        # Either way the case goes on: b's completion reached `end` through d, or c still can.
        result = await _finish_with_c(case) if outcomes == ["item.cancelled"] else await case.result()
    assert result.status == "completed"


@pytest.mark.anyio
async def test_an_enabled_timer_item_is_withdrawn_and_never_fires() -> None:
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(_spec("timer: {after: 10s}"), {})
        (b,) = [w for w in case.work_items() if w.task == "b"]
        assert b.state == "enabled"
        await case.cancel_item(b.id)
        settled = len(case.trace)
        await clock.advance(60)
        assert len(case.trace) == settled  # the timer was disarmed with its item
        result = await _finish_with_c(case)
    assert result.status == "completed"
    assert not _events(result.trace, "item.started", "b")
