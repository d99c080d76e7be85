"""WCP-37 Local Synchronizing Merge: in acyclic nets, the OR-join fires once, after every incoming
branch has delivered control or been shown, from local information, unable to deliver."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# Not a structured pair: the OR-join's inputs come from an AND-split, and branch b decides late
# (after an extra step) whether it delivers to the join or parks its token elsewhere.
SPEC = yf.loads(
    """
yawlflow: 1
id: wcp37
nets:
  main:
    input: start
    output: end
    termination: implicit
    conditions:
      parked: {}
    tasks:
      a: {split: and, flows: [b, c]}
      b: {external: true, flows: [b2]}
      b2:
        external: true
        split: xor
        flows:
          - {to: j, when: "deliver"}
          - {to: parked, default: true}
      c: {external: true, flows: [j]}
      j: {join: or, run: merge, flows: [end]}
""",
    source="wcp37.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp37_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    conditions:
      parked: {}
    tasks:
      a: {split: and, flows: [b, c, d]}
      b:
        run: work
        split: xor
        flows:
          - {to: j, when: "deliver_b"}
          - {to: parked, default: true}
      c: {run: work, flows: [j]}
      d:
        run: work
        split: xor
        flows:
          - {to: j, when: "deliver_d"}
          - {to: parked, default: true}
      j: {join: or, run: merge, flows: [end]}
""",
    source="wcp37_auto.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _handlers(log: list[str]) -> dict[str, Any]:
    def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        log.append(ctx.task)

    def merge(data: dict[str, Any]) -> None:
        log.append("j")

    return {"work": work, "merge": merge}


async def _complete(case: yf.Case, task: str, output: dict[str, Any] | None = None) -> None:
    (item,) = [w for w in case.work_items() if w.task == task]
    await case.complete(item.id, output)


@pytest.mark.anyio
@pytest.mark.parametrize("deliver", [True, False])
async def test_join_waits_until_the_undecided_branch_decides(deliver: bool) -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(SPEC, {})
        await _complete(case, "c")
        await case.idle()
        assert not _events(case.trace, task="j")  # b can still deliver
        await _complete(case, "b")
        await case.idle()
        assert not _events(case.trace, task="j")  # b2 can still deliver
        await _complete(case, "b2", {"deliver": deliver})
        result = await case.result()
    assert result.status == "completed", result.error
    assert log == ["j"]  # once, whether b delivered or was shown unable to
    trace = result.trace
    (j_enabled,) = _events(trace, "item.enabled", "j")
    assert _events(trace, "item.completed", "b2")[0]["seq"] < j_enabled["seq"]
    assert result.trace[-1]["data"].get("_tokens", {}) == ({} if deliver else {"parked": 1})


@pytest.mark.anyio
async def test_join_never_waits_for_a_branch_that_parked() -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(SPEC, {})
        await _complete(case, "b")
        await _complete(case, "b2", {"deliver": False})
        await case.idle()
        assert not _events(case.trace, task="j")  # no input marked yet: nothing to fire on
        before = len(case.trace)
        await _complete(case, "c")
        assert ("item.enabled", "j") in [(e["event"], e["task"]) for e in case.trace[before:]]
        result = await case.result()
    assert result.status == "completed"
    assert log == ["j"]


@pytest.mark.anyio
async def test_a_running_branch_holds_the_join() -> None:
    entered, release = anyio.Event(), anyio.Event()
    log: list[str] = []

    async def slow(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        entered.set()
        await release.wait()
        log.append(ctx.task)

    spec = yf.loads(
        """
yawlflow: 1
id: wcp37_running
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c]}
      b: {run: slow, flows: [j]}
      c: {flows: [j]}
      j: {join: or, run: merge, flows: [end]}
""",
        source="wcp37_running.yaml",
    )
    async with yf.Engine(clock=FakeClock(), handlers={**_handlers(log), "slow": slow}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(spec, {})
            await entered.wait()
            await anyio.wait_all_tasks_blocked()
            assert not _events(case.trace, task="j")
            release.set()
            result = await case.result()
    assert result.status == "completed"
    assert log == ["b", "j"]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("deliver_b", "deliver_d"), [(True, True), (True, False), (False, False)])
def test_seeded_join_fires_once_after_all_decisions(seed: int, deliver_b: bool, deliver_d: bool) -> None:
    log: list[str] = []
    data = {"deliver_b": deliver_b, "deliver_d": deliver_d}
    result = yf.run(SPEC_AUTO, data, seed=seed, handlers=_handlers(log))
    assert result.status == "completed", (seed, result.error)
    assert log.count("j") == 1 and log[-1] == "j", (seed, log)
    (j_enabled,) = _events(result.trace, "item.enabled", "j")
    for task in "bcd":
        assert _events(result.trace, "item.completed", task)[0]["seq"] < j_enabled["seq"], (seed, task)


@pytest.mark.anyio
@pytest.mark.parametrize("choice", ["to_join", "away"])
async def test_join_waits_on_an_undecided_deferred_choice_upstream(choice: str) -> None:
    # Branch b ends in a deferred choice: one alternative leads to the join, the other away.
    spec = yf.loads(
        """
yawlflow: 1
id: wcp37_deferred
nets:
  main:
    input: start
    output: end
    termination: implicit
    conditions:
      pick: {flows: [to_join, away]}
    tasks:
      a: {split: and, flows: [pick, c]}
      to_join: {external: true, flows: [j]}
      away: {external: true, flows: [end]}
      c: {external: true, flows: [j]}
      j: {join: or, run: merge, flows: [end]}
""",
        source="wcp37_deferred.yaml",
    )
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(spec, {})
        await _complete(case, "c")
        await case.idle()
        assert not _events(case.trace, task="j")  # to_join may still be chosen
        await _complete(case, choice)
        result = await case.result()
    assert result.status == "completed", result.error
    assert log == ["j"]
    (j_enabled,) = _events(result.trace, "item.enabled", "j")
    assert _events(result.trace, "item.completed", choice)[0]["seq"] < j_enabled["seq"]
