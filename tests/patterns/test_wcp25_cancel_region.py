"""WCP-25 Cancel Region: a trigger withdraws an arbitrary set of tasks and conditions, connected
or not, enabled or running; nothing outside the set is affected."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# k's region: x (offered), y (running), t (waiting for a trigger), u (started by a person).
# Outside it: z (offered), w (running). None of them is connected to k.
SPEC_TASKS = yf.loads(
    """
yawlflow: 1
id: wcp25_tasks
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: and, flows: [x, y, t, u, z, w, k]}
      x: {external: true, flows: [end]}
      y: {run: stuck, flows: [end]}
      t: {trigger: {signal: go}, flows: [end]}
      u: {external: true, flows: [end]}
      z: {external: true, flows: [end]}
      w: {run: gated, flows: [end]}
      k: {external: true, cancels: [x, y, t, u], flows: [end]}
""",
    source="wcp25_tasks.yaml",
)

# k's region is the condition `held` only; q is an AND-join of `held` and r's output.
SPEC_CONDITION = yf.loads(
    """
yawlflow: 1
id: wcp25_condition
nets:
  main:
    input: start
    output: end
    termination: implicit
    conditions:
      held: {flows: [q]}
    tasks:
      a: {split: and, flows: [p, r, k, z]}
      p: {flows: [held]}
      r: {external: true, flows: [q]}
      q: {join: and, flows: [end]}
      z: {external: true, flows: [end]}
      k: {external: true, cancels: [held], flows: [end]}
""",
    source="wcp25_condition.yaml",
)

# A region that holds k's own output condition: the cancellation applies before k's own tokens.
SPEC_OWN_OUTPUT = yf.loads(
    """
yawlflow: 1
id: wcp25_own_output
nets:
  main:
    input: start
    output: end
    conditions:
      after_k: {flows: [fin]}
    tasks:
      a: {split: and, flows: [k, v]}
      v: {external: true, flows: [fin]}
      k: {external: true, cancels: [v, after_k], flows: [after_k]}
      fin: {flows: [end]}
""",
    source="wcp25_own_output.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


class Handlers:
    def __init__(self) -> None:
        self.y_in = anyio.Event()
        self.w_in = anyio.Event()
        self.y_halted = anyio.Event()
        self.w_halted = False
        self.w_release = anyio.Event()
        self._never = anyio.Event()

    async def stuck(self, data: dict[str, Any]) -> None:
        self.y_in.set()
        try:
            await self._never.wait()
        except anyio.get_cancelled_exc_class():
            self.y_halted.set()
            raise

    async def gated(self, data: dict[str, Any]) -> dict[str, Any]:
        self.w_in.set()
        try:
            await self.w_release.wait()
        except anyio.get_cancelled_exc_class():
            self.w_halted = True
            raise
        return {"w": "done"}


@pytest.mark.anyio
async def test_region_withdraws_exactly_its_tasks_in_every_state() -> None:
    h = Handlers()
    async with yf.Engine(clock=FakeClock(), handlers={"stuck": h.stuck, "gated": h.gated}) as engine:
        case = await engine.start(SPEC_TASKS, {})
        with anyio.fail_after(10):
            await h.y_in.wait()
            await h.w_in.wait()
        items = {w.task: w.id for w in case.work_items()}
        await case.start_item(items["u"])
        assert {w.task: w.state for w in case.work_items()} == {
            "x": "offered", "y": "started", "t": "enabled", "u": "started",
            "z": "offered", "w": "started", "k": "offered",
        }

        before = len(case.trace)
        await case.complete(items["k"])
        step = case.trace[before:]
        assert sorted(e["task"] for e in _events(step, "item.cancelled")) == ["t", "u", "x", "y"]
        with anyio.fail_after(10):
            await h.y_halted.wait()
        await anyio.wait_all_tasks_blocked()
        # Outside the region nothing moved: z is still offered, w still runs.
        assert {w.task: w.state for w in case.work_items()} == {"z": "offered", "w": "started"}
        assert not h.w_halted

        await case.signal("go")  # t was withdrawn with its token: the signal finds nobody
        with pytest.raises(yf.InvalidEventError):
            await case.complete(items["u"])
        h.w_release.set()
        await case.complete(items["z"])
        with anyio.fail_after(10):
            result = await case.result()

    assert result.status == "completed", result.error
    assert result.data == {"w": "done"}
    trace = result.trace
    assert sorted(e["task"] for e in _events(trace, "item.cancelled")) == ["t", "u", "x", "y"]
    assert {e["task"] for e in _events(trace, "item.completed")} == {"a", "k", "z", "w"}
    for task in ("t", "u", "x", "y"):
        assert not _events(trace, "item.completed", task)


@pytest.mark.anyio
async def test_region_removes_the_token_of_a_condition() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_CONDITION, {})
        items = {w.task: w.id for w in case.work_items("offered")}
        assert set(items) == {"r", "z", "k"}
        before = len(case.trace)
        await case.complete(items["k"])
        assert not _events(case.trace[before:], "item.cancelled")  # a token, not an item, went
        assert {w.task for w in case.work_items()} == {"r", "z"}  # r and z untouched

        await case.complete(items["r"])  # q's other input: `held` is empty now, so q cannot fire
        assert not _events(case.trace, task="q")
        await case.complete(items["z"])
        result = await case.result()

    assert result.status == "completed"
    tokens = result.trace[-1]["data"]["_tokens"]
    assert "held" not in tokens and sum(tokens.values()) == 1  # held's token is gone, r's is left
    assert not _events(result.trace, task="q")


@pytest.mark.anyio
async def test_without_the_trigger_the_condition_keeps_its_token() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_CONDITION, {})
        items = {w.task: w.id for w in case.work_items("offered")}
        await case.complete(items["r"])
        assert len(_events(case.trace, "item.completed", "q")) == 1  # held was marked all along
        await case.complete(items["k"])  # nothing left to cancel: no effect on anything else
        await case.complete(items["z"])
        result = await case.result()
    assert result.status == "completed"
    assert "_tokens" not in result.trace[-1]["data"]


@pytest.mark.anyio
async def test_the_region_applies_before_the_triggers_own_output() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_OWN_OUTPUT, {})
        items = {w.task: w.id for w in case.work_items("offered")}
        await case.complete(items["k"])
        result = await case.result()
    assert result.status == "completed", result.error
    trace = result.trace
    assert [e["task"] for e in _events(trace, "item.cancelled")] == ["v"]
    assert len(_events(trace, "item.completed", "fin")) == 1  # k's own token reached fin


@pytest.mark.anyio
async def test_a_region_halts_a_running_sub_case_and_spares_its_neighbour() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp25_subcase
root: main
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: and, flows: [inside, outside, k]}
      inside: {net: child, flows: [end]}
      outside: {net: child, flows: [end]}
      k: {external: true, cancels: [inside], flows: [end]}
  child:
    input: cs
    output: ce
    tasks:
      w: {external: true, flows: [ce]}
""",
        source="wcp25_subcase.yaml",
    )
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(spec, {})
        await case.idle()
        # Sub-cases start in the order their composite items started.
        started = _events(case.trace, "item.started")
        callers = [e["task"] for e in started if e["task"] in ("inside", "outside")]
        sub_ids = [e["case"] for e in _events(case.trace, "case.started") if e["case"] != case.id]
        by_task = {task: engine.case(cid) for task, cid in zip(callers, sub_ids, strict=True)}
        (k,) = case.work_items("offered")
        await case.complete(k.id)
        assert by_task["inside"].status == "cancelled"
        assert by_task["outside"].status == "running"
        (w,) = by_task["outside"].work_items()
        await by_task["outside"].complete(w.id)
        result = await case.result()
    assert result.status == "completed", result.error
    own = [e for e in result.trace if e["case"] == case.id]
    assert [e["task"] for e in _events(own, "item.cancelled")] == ["inside"]
    assert len(_events(own, "item.completed", "outside")) == 1
