"""WCP-24 Persistent Trigger: a signal is kept until the task is enabled, then consumed; none is
lost."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp24
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, flows: [b]}
      b: {trigger: {signal: go, persistent: true}, run: work, flows: [end]}
""",
    source="wcp24.yaml",
)

# Two threads reach b (a multi-merge), so b is enabled twice.
SPEC_TWICE = yf.loads(
    """
yawlflow: 1
id: wcp24_twice
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {external: true, split: and, flows: [p, q]}
      p: {flows: [b]}
      q: {flows: [b]}
      b: {trigger: {signal: go, persistent: true}, run: work, flows: [end]}
""",
    source="wcp24_twice.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _work(log: list[str]) -> dict[str, Any]:
    def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        log.append(ctx.task)

    return {"work": work}


@pytest.mark.anyio
async def test_an_early_signal_is_kept_and_consumed_on_enabling() -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_work(log)) as engine:
        case = await engine.start(SPEC, {})
        await case.signal("go", {"ref": "x1"})
        await case.idle()
        assert not _events(case.trace, task="b")
        (a,) = case.work_items("offered")
        before = len(case.trace)
        await case.complete(a.id)
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert ("item.started", "b") in step  # consumed in the step that enabled b
        result = await case.result()
    assert result.status == "completed"
    assert log == ["b"]
    assert result.data["ref"] == "x1"


@pytest.mark.anyio
async def test_two_early_signals_are_two_consumptions() -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_work(log)) as engine:
        case = await engine.start(SPEC_TWICE, {})
        await case.signal("go")
        await case.signal("go")
        (a,) = case.work_items("offered")
        await case.complete(a.id)
        result = await case.result()
    assert result.status == "completed"
    assert log == ["b", "b"]
    assert len(_events(result.trace, "item.started", "b")) == 2


@pytest.mark.anyio
async def test_one_signal_for_two_enablings_leaves_one_waiting() -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_work(log)) as engine:
        case = await engine.start(SPEC_TWICE, {})
        await case.signal("go")
        (a,) = case.work_items("offered")
        await case.complete(a.id)
        await case.idle()
        assert log == ["b"]
        assert [(w.task, w.state) for w in case.work_items()] == [("b", "enabled")]
        assert case.status == "running"  # the waiting trigger keeps the case alive
        await case.signal("go")
        result = await case.result()
    assert result.status == "completed"
    assert log == ["b", "b"]


@pytest.mark.anyio
async def test_a_signal_while_enabled_is_consumed_at_once_and_not_kept() -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_work(log)) as engine:
        case = await engine.start(SPEC_TWICE, {})
        (a,) = case.work_items("offered")
        await case.complete(a.id)
        assert [w.state for w in case.work_items()] == ["enabled", "enabled"]
        await case.signal("go")
        await case.idle()
        assert log == ["b"]
        assert [w.state for w in case.work_items()] == ["enabled"]  # one signal, one consumption
        await case.signal("go")
        result = await case.result()
    assert log == ["b", "b"]
    assert result.status == "completed"


def test_run_with_no_signal_waits() -> None:
    result = yf.run(SPEC_TWICE, {}, seed=2)
    assert result.status == "waiting"
    assert [w.task for w in result.offered] == ["a"]


SPEC_TREE = yf.loads(
    """
yawlflow: 1
id: wcp24_tree
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [sub, p]}
      sub: {net: child, flows: [j]}
      p: {external: true, flows: [b]}
      b: {trigger: {signal: go, persistent: true}, flows: [j]}
      j: {join: and, flows: [end]}
  child:
    input: cs
    output: ce
    tasks:
      q: {external: true, flows: [cb]}
      cb: {trigger: {signal: go, persistent: true}, flows: [ce]}
""",
    source="wcp24_tree.yaml",
)


@pytest.mark.anyio
@pytest.mark.parametrize("first", ["main", "child"])
async def test_one_kept_signal_is_consumed_once_in_the_whole_case(first: str) -> None:
    # Reading: a signal sent to a case is one signal, whether the task that will consume it sits
    # in the case itself or in one of its sub-cases: kept once, and consumed by whichever trigger
    # task is enabled first (none lost, none duplicated).
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_TREE, {})
        await case.idle()
        sub_id = next(e["case"] for e in case.trace if e["event"] == "case.started" and e["case"] != case.id)
        sub = engine.case(sub_id)
        await case.signal("go")  # one signal, sent before any trigger task is enabled
        (p,) = case.work_items("offered")
        (q,) = sub.work_items("offered")
        consumer, other = ("b", "cb") if first == "main" else ("cb", "b")
        if first == "main":
            await case.complete(p.id)  # b is enabled first: it consumes the kept signal
            await sub.complete(q.id)  # cb is enabled next: nothing is left for it
        else:
            await sub.complete(q.id)
            await case.complete(p.id)
        await case.idle()
        consumed = [e["task"] for e in _events(case.trace, "item.completed") if e["task"] in ("b", "cb")]
        assert consumed == [consumer]
        waiting = case.work_items() + sub.work_items()
        assert [(w.task, w.state) for w in waiting if w.task == other] == [(other, "enabled")]
        await case.signal("go")  # a second signal for the second consumer
        result = await case.result()
    assert result.status == "completed"
    consumed = [e["task"] for e in _events(result.trace, "item.completed") if e["task"] in ("b", "cb")]
    assert consumed == [consumer, other]


@pytest.mark.anyio
async def test_a_signal_kept_before_the_sub_case_exists_is_not_lost() -> None:
    # Same reading: the signal is sent to the case; the trigger task that will consume it lives in
    # a sub-case that does not exist yet. Kept until that task is enabled, then consumed.
    spec = yf.loads(
        """
yawlflow: 1
id: wcp24_later_subcase
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, flows: [sub]}
      sub: {net: child, flows: [end]}
  child:
    input: cs
    output: ce
    tasks:
      cb: {trigger: {signal: go, persistent: true}, flows: [ce]}
""",
        source="wcp24_later_subcase.yaml",
    )
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(spec, {})
        await case.signal("go")
        (a,) = case.work_items("offered")
        await case.complete(a.id)
        with anyio.fail_after(10):
            await case.idle()
        assert case.status == "completed", [(e["case"], e["event"], e["task"]) for e in case.trace]
    assert len(_events(case.trace, "item.completed", "cb")) == 1
