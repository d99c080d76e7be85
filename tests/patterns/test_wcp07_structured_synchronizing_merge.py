"""WCP-7 Structured Synchronizing Merge: paired with a multi-choice, it fires once, after all the
branches that split activated have completed; it never waits for branches not activated."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp07
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        split: or
        flows:
          - {to: b, when: "'b' in take"}
          - {to: c, when: "'c' in take"}
          - {to: d, when: "'d' in take"}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      j: {join: or, run: merge, flows: [end]}
""",
    source="wcp07.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp07_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        split: or
        flows:
          - {to: b, when: "'b' in take"}
          - {to: c, when: "'c' in take"}
          - {to: d, when: "'d' in take"}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      d: {run: work, flows: [j]}
      j: {join: or, run: merge, flows: [end]}
""",
    source="wcp07_auto.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _handlers(log: list[str]) -> dict[str, Any]:
    def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        log.append(ctx.task)

    def merge(data: dict[str, Any]) -> dict[str, Any]:
        log.append("j")
        return {"merged": data.get("merged", 0) + 1}

    return {"work": work, "merge": merge}


@pytest.mark.anyio
@pytest.mark.parametrize("take", [["b"], ["c", "d"], ["b", "c", "d"], ["b", "d"]], ids="".join)
async def test_fires_once_after_every_activated_branch(take: list[str]) -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(SPEC, {"take": take})
        items = {w.task: w.id for w in case.work_items("offered")}
        assert sorted(items) == take
        *first, last = take
        for task in first:
            await case.complete(items[task])
            await case.idle()
            assert not _events(case.trace, task="j"), f"the join fired with {last!r} still pending"
        before = len(case.trace)
        await case.complete(items[last])
        # The last activated branch completes and the join fires in the same step: it never
        # waits for the branches that were not activated.
        assert ("item.enabled", "j") in [(e["event"], e["task"]) for e in case.trace[before:]]
        result = await case.result()

    assert result.status == "completed"
    assert log == ["j"] and result.data["merged"] == 1
    trace = result.trace
    (j_enabled,) = _events(trace, "item.enabled", "j")
    for task in take:
        assert _events(trace, "item.completed", task)[0]["seq"] < j_enabled["seq"]
    for task in {"b", "c", "d"} - set(take):
        assert not _events(trace, task=task)


@pytest.mark.anyio
async def test_a_running_activated_branch_holds_the_join() -> None:
    entered, release = anyio.Event(), anyio.Event()
    log: list[str] = []

    async def slow(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        entered.set()
        await release.wait()
        log.append(ctx.task)

    spec = yf.loads(
        """
yawlflow: 1
id: wcp07_running
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        split: or
        flows:
          - {to: b, when: "true"}
          - {to: c, when: "true"}
          - {to: d, when: "false"}
      b: {run: slow, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      j: {join: or, run: merge, flows: [end]}
""",
        source="wcp07_running.yaml",
    )
    handlers = {**_handlers(log), "slow": slow}
    async with yf.Engine(clock=FakeClock(), handlers=handlers) as engine:
        with anyio.fail_after(10):
            case = await engine.start(spec, {})
            await entered.wait()
            (c,) = case.work_items("offered")
            await case.complete(c.id)
            await anyio.wait_all_tasks_blocked()
            assert not _events(case.trace, task="j")  # b is still running: it will deliver
            release.set()
            result = await case.result()
    assert result.status == "completed"
    assert log == ["b", "j"]
    assert len(_events(result.trace, "item.completed", "j")) == 1


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("take", [["b", "c"], ["b", "c", "d"]], ids="".join)
def test_seeded_join_fires_once_after_the_activated_branches(seed: int, take: list[str]) -> None:
    log: list[str] = []
    result = yf.run(SPEC_AUTO, {"take": take}, seed=seed, handlers=_handlers(log))
    assert result.status == "completed", (seed, result.error)
    assert sorted(log[:-1]) == take and log[-1] == "j", (seed, log)
    (j_enabled,) = _events(result.trace, "item.enabled", "j")
    assert all(_events(result.trace, "item.completed", t)[0]["seq"] < j_enabled["seq"] for t in take)
