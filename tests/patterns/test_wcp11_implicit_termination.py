"""WCP-11 Implicit Termination: the case completes when nothing is enabled or running and
nothing can become so; no single end node is needed, and this is not a deadlock.

Contrast (ARCHITECTURE §3, Termination): the same net with `termination: explicit` fails as a
deadlock naming the stuck tokens.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

PARK_TEXT = """
yawlflow: 1
id: wcp11_park
nets:
  main:
    input: start
    output: end
    termination: TERMINATION
    conditions:
      parked: {}
    tasks:
      a:
        split: xor
        flows:
          - {to: parked, when: "park"}
          - {to: b, default: true}
      b: {flows: [end]}
"""
PARK_IMPLICIT = yf.loads(PARK_TEXT.replace("TERMINATION", "implicit"), source="wcp11_implicit.yaml")
PARK_EXPLICIT = yf.loads(PARK_TEXT.replace("TERMINATION", "explicit"), source="wcp11_explicit.yaml")

THREADS = yf.loads(
    """
yawlflow: 1
id: wcp11_threads
nets:
  main:
    input: start
    output: end
    termination: implicit
    conditions:
      parked: {}
    tasks:
      a: {split: and, flows: [b, c, w]}
      b: {external: true, flows: [end]}
      c:
        external: true
        split: xor
        flows:
          - {to: parked, when: "park"}
          - {to: d, default: true}
      d: {flows: [half]}
      w: {run: slow, flows: [half]}
      half: {join: and, flows: [after]}
      after: {external: true, flows: [end]}
""",
    source="wcp11_threads.yaml",
)

TRIGGER_WAIT = yf.loads(
    """
yawlflow: 1
id: wcp11_trigger
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: and, flows: [b, c]}
      b: {trigger: {signal: go}, flows: [end]}
      c: {flows: [end]}
""",
    source="wcp11_trigger.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


@pytest.mark.anyio
async def test_no_end_node_reached_is_completion_not_deadlock() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(PARK_IMPLICIT, {"park": True})
        result = await case.result()
    assert result.status == "completed"
    assert result.error is None
    last = result.trace[-1]
    assert last["event"] == "case.completed"
    assert last["data"]["_tokens"] == {"parked": 1}  # tokens left anywhere are listed
    assert not _events(result.trace, "case.failed")
    assert not _events(result.trace, task="b")


@pytest.mark.anyio
async def test_the_same_net_with_explicit_termination_is_a_deadlock() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(PARK_EXPLICIT, {"park": True})
        result = await case.result()
    assert result.status == "failed"
    assert result.error is not None
    assert "deadlock" in result.error and "parked (1)" in result.error
    assert result.trace[-1]["event"] == "case.failed"
    assert result.trace[-1]["data"] == {"error": result.error}


@pytest.mark.anyio
async def test_reaching_the_output_condition_only_ends_that_thread() -> None:
    release = anyio.Event()

    async def slow(data: dict[str, Any]) -> None:
        await release.wait()

    async with yf.Engine(clock=FakeClock(), handlers={"slow": slow}) as engine:
        case = await engine.start(THREADS, {"park": True})
        items = {w.task: w.id for w in case.work_items("offered")}
        await case.complete(items["b"])  # b's token reaches `end`
        await anyio.wait_all_tasks_blocked()
        assert case.status == "running"
        assert {w.task: w.state for w in case.work_items()} == {"c": "offered", "w": "started"}
        assert not _events(case.trace, "item.cancelled")

        await case.complete(items["c"])  # c's token is parked: w still runs
        await anyio.wait_all_tasks_blocked()
        assert case.status == "running"
        assert [w.task for w in case.work_items()] == ["w"]

        release.set()  # w finishes into an AND-join whose other input is dead: nothing can become enabled
        with anyio.fail_after(10):
            result = await case.result()

    assert result.status == "completed"
    last = result.trace[-1]
    assert last["event"] == "case.completed"
    tokens = last["data"]["_tokens"]
    assert tokens.get("parked") == 1
    assert sum(tokens.values()) == 2  # parked, and w's token waiting at the AND-join `half`
    assert not _events(result.trace, "item.cancelled")
    assert not _events(result.trace, task="half") and not _events(result.trace, task="after")


@pytest.mark.anyio
async def test_a_task_waiting_for_its_trigger_keeps_the_case_alive() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(TRIGGER_WAIT, {})
        await case.idle()
        assert case.status == "running"
        assert [(w.task, w.state) for w in case.work_items()] == [("b", "enabled")]
        await case.signal("go")
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "b")) == 1
    assert result.trace[-1]["event"] == "case.completed"


def test_run_reports_completion_for_implicit_and_failure_for_explicit() -> None:
    implicit = yf.run(PARK_IMPLICIT, {"park": True}, seed=1)
    explicit = yf.run(PARK_EXPLICIT, {"park": True}, seed=1)
    assert implicit.status == "completed"
    assert explicit.status == "failed" and "parked" in (explicit.error or "")
    # Where the output condition is reached, both complete.
    assert yf.run(PARK_IMPLICIT, {"park": False}, seed=1).status == "completed"
    assert yf.run(PARK_EXPLICIT, {"park": False}, seed=1).status == "completed"


@pytest.mark.anyio
async def test_an_implicit_sub_net_ends_only_when_all_its_threads_have() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp11_subnet
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      call: {net: child, flows: [after]}
      after: {flows: [end]}
  child:
    input: cs
    output: ce
    termination: implicit
    tasks:
      split: {split: and, flows: [quick, slow]}
      quick: {flows: [ce]}
      slow: {external: true, flows: [ce]}
""",
        source="wcp11_subnet.yaml",
    )
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(spec, {})
        await case.idle()
        sub_id = next(e["case"] for e in case.trace if e["event"] == "case.started" and e["case"] != case.id)
        sub = engine.case(sub_id)
        # quick reached the sub-net's output: that thread ended, the sub-case did not.
        assert _events(case.trace, "item.completed", "quick")
        assert sub.status == "running" and [w.task for w in sub.work_items()] == ["slow"]
        assert [(w.task, w.state) for w in case.work_items()] == [("call", "started")]
        (slow,) = sub.work_items()
        await sub.complete(slow.id)
        result = await case.result()
    assert result.status == "completed"
    assert not _events(result.trace, "item.cancelled")
    assert len(_events(result.trace, "item.completed", "after")) == 1
