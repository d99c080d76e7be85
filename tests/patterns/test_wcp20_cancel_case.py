"""WCP-20 Cancel Case: every enabled or running item, sub-cases and instances included, is
removed; nothing runs afterwards."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp20
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [ext, auto, sub, timed, trig, started]}
      ext: {external: true, flows: [j]}
      started: {external: true, flows: [j]}
      auto: {run: stuck, flows: [j]}
      sub: {net: child, flows: [j]}
      timed: {timer: {after: 1h}, flows: [j]}
      trig: {trigger: {signal: go}, flows: [j]}
      j: {join: and, run: never, flows: [end]}
  child:
    input: cs
    output: ce
    tasks:
      s: {split: and, flows: [cext, cauto, ctimed]}
      cext: {external: true, flows: [cj]}
      cauto: {run: stuck, flows: [cj]}
      ctimed: {timer: {after: 30m}, flows: [cj]}
      cj: {join: and, flows: [ce]}
""",
    source="wcp20.yaml",
)

SPEC_SELF_CANCEL = yf.loads(
    """
yawlflow: 1
id: wcp20_self
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [work, abort, other]}
      work: {run: stuck, flows: [j]}
      other: {external: true, flows: [j]}
      abort: {external: true, cancels: [main], flows: [j]}
      j: {join: and, flows: [end]}
""",
    source="wcp20_self.yaml",
)

ROOT_TASKS = ("ext", "started", "auto", "sub", "timed", "trig")


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


class Stuck:
    """Async handler that never finishes by itself; counts entries and observed cancellations."""

    def __init__(self, expected: int) -> None:
        self.entered = 0
        self.halted = 0
        self.all_in = anyio.Event()
        self.expected = expected
        self._never = anyio.Event()

    async def __call__(self, data: dict[str, Any]) -> None:
        self.entered += 1
        if self.entered == self.expected:
            self.all_in.set()
        try:
            await self._never.wait()
        except anyio.get_cancelled_exc_class():
            self.halted += 1
            raise


def _never(data: dict[str, Any]) -> None:
    raise AssertionError("the join ran after the case was cancelled")


@pytest.mark.anyio
async def test_cancel_withdraws_everything_including_the_sub_case() -> None:
    clock = FakeClock()
    stuck = Stuck(expected=2)
    async with yf.Engine(clock=clock, handlers={"stuck": stuck, "never": _never}) as engine:
        case = await engine.start(SPEC, {})
        with anyio.fail_after(10):
            await stuck.all_in.wait()  # the root's and the sub-case's handlers both run
        await anyio.wait_all_tasks_blocked()
        (started,) = [w for w in case.work_items() if w.task == "started"]
        await case.start_item(started.id)
        live = {w.task: w.state for w in case.work_items()}
        assert live == {"ext": "offered", "started": "started", "auto": "started", "sub": "started",
                        "timed": "enabled", "trig": "enabled"}
        (sub_started,) = [e for e in case.trace if e["event"] == "case.started" and e["case"] != case.id]
        sub_id = sub_started["case"]
        sub = engine.case(sub_id)
        assert {w.task for w in sub.work_items()} == {"cext", "cauto", "ctimed"}

        await case.cancel()
        assert case.status == "cancelled"
        assert sub.status == "cancelled"
        assert case.work_items() == [] and sub.work_items() == []
        with anyio.fail_after(10):
            result = await case.result()
        await anyio.wait_all_tasks_blocked()
        assert stuck.halted == 2  # both handlers were really halted

        settled = len(case.trace)
        await clock.advance(2 * 3600)  # both timers would be long due: nothing fires
        assert len(case.trace) == settled

        with pytest.raises(yf.InvalidEventError):
            await case.complete(started.id)
        with pytest.raises(yf.InvalidEventError):
            await case.signal("go")
        with pytest.raises(yf.InvalidEventError):
            await case.cancel()
        with pytest.raises(yf.InvalidEventError):
            await sub.complete(0)

    assert result.status == "cancelled"
    trace = result.trace
    root = [e for e in trace if e["case"] == case.id]
    child = [e for e in trace if e["case"] == sub_id]
    assert {e["task"] for e in _events(root, "item.cancelled")} == set(ROOT_TASKS)
    assert {e["task"] for e in _events(child, "item.cancelled")} == {"cext", "cauto", "ctimed"}
    assert [e["event"] for e in child][-1] == "case.cancelled"
    assert not _events(trace, "item.completed", "j") and not _events(trace, "item.completed", "timed")
    assert not _events(trace, "case.completed") and not _events(trace, "case.failed")
    # The case's own `case.cancelled` closes its trace: the sub-case's withdrawal comes before it.
    assert (trace[-1]["event"], trace[-1]["case"]) == ("case.cancelled", case.id)


@pytest.mark.anyio
async def test_nothing_runs_after_cancel_even_if_handlers_would_finish() -> None:
    release = anyio.Event()
    ran: list[str] = []

    async def slow(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        await release.wait()
        ran.append(ctx.task)
        return {"late": True}

    spec = yf.loads(
        """
yawlflow: 1
id: wcp20_slow
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: slow, flows: [b]}
      b: {run: slow, flows: [end]}
""",
        source="wcp20_slow.yaml",
    )
    async with yf.Engine(clock=FakeClock(), handlers={"slow": slow}) as engine:
        case = await engine.start(spec, {})
        await anyio.wait_all_tasks_blocked()
        await case.cancel()
        release.set()
        await anyio.wait_all_tasks_blocked()
        result = await case.result()
    assert result.status == "cancelled"
    assert ran == []
    assert "late" not in result.data
    assert result.trace[-1]["event"] == "case.cancelled"
    assert not _events(result.trace, task="b")


@pytest.mark.anyio
async def test_a_task_that_cancels_its_own_net_cancels_the_case() -> None:
    stuck = Stuck(expected=1)
    async with yf.Engine(clock=FakeClock(), handlers={"stuck": stuck}) as engine:
        case = await engine.start(SPEC_SELF_CANCEL, {})
        with anyio.fail_after(10):
            await stuck.all_in.wait()
        items = {w.task: w.id for w in case.work_items("offered")}
        await case.complete(items["abort"])
        assert case.status == "cancelled"
        with anyio.fail_after(10):
            result = await case.result()
        await anyio.wait_all_tasks_blocked()
        assert stuck.halted == 1
    assert result.status == "cancelled"
    trace = result.trace
    assert {e["task"] for e in _events(trace, "item.cancelled")} == {"work", "other"}
    assert trace[-1]["event"] == "case.cancelled"
    assert not _events(trace, task="j")


def test_a_seeded_run_reports_cancelled() -> None:
    result = yf.run(SPEC_SELF_CANCEL, {}, seed=3, handlers={"stuck": lambda d: None})
    # Nothing completes `abort`, so the run waits for it; cancelling is an API act, tested above.
    assert result.status == "waiting"
    assert sorted(w.task for w in result.offered) == ["abort", "other"]


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(3))
async def test_seeded_cancel_never_runs_the_handlers_still_queued(seed: int) -> None:
    # With a seed, handlers run one at a time: the first one blocks, the others wait their turn.
    spec = yf.loads(
        """
yawlflow: 1
id: wcp20_queued
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {run: first_blocks, flows: [j]}
      c: {run: first_blocks, flows: [j]}
      d: {run: first_blocks, flows: [j]}
      j: {join: and, flows: [end]}
""",
        source="wcp20_queued.yaml",
    )
    calls: list[str] = []
    entered = anyio.Event()
    never = anyio.Event()

    async def first_blocks(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        calls.append(ctx.task)
        entered.set()
        await never.wait()

    async with yf.Engine(clock=FakeClock(), seed=seed, handlers={"first_blocks": first_blocks}) as engine:
        case = await engine.start(spec, {})
        with anyio.fail_after(10):
            await entered.wait()
        await anyio.wait_all_tasks_blocked()
        assert len(calls) == 1, (seed, calls)
        await case.cancel()
        await anyio.wait_all_tasks_blocked()
        with anyio.fail_after(10):
            result = await case.result()
        await anyio.wait_all_tasks_blocked()
    assert len(calls) == 1, (seed, calls)  # nothing ran after the cancel
    assert result.status == "cancelled"
    assert sorted(e["task"] for e in _events(result.trace, "item.cancelled")) == ["b", "c", "d"]
    assert result.trace[-1]["event"] == "case.cancelled"
