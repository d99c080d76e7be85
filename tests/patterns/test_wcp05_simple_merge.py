"""WCP-5 Simple Merge: each arrival passes control on, without synchronisation; after an
exclusive choice the successor runs exactly once."""

from __future__ import annotations

from typing import Any

import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp05
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        split: xor
        flows:
          - {to: b, when: "route == 'b'"}
          - {to: c, when: "route == 'c'"}
          - {to: d, default: true}
      b: {external: true, flows: [merge]}
      c: {external: true, flows: [merge]}
      d: {run: work, flows: [merge]}
      merge: {join: xor, run: count, flows: [end]}
""",
    source="wcp05.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _handlers(log: list[str]) -> dict[str, Any]:
    def work(data: dict[str, Any]) -> None:
        log.append("d")

    def count(data: dict[str, Any]) -> dict[str, Any]:
        log.append("merge")
        return {"merged": data.get("merged", 0) + 1}

    return {"work": work, "count": count}


@pytest.mark.anyio
@pytest.mark.parametrize("route", ["b", "c"])
async def test_merge_passes_the_single_arrival_on_at_once(route: str) -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(SPEC, {"route": route})
        (item,) = case.work_items("offered")
        assert item.task == route
        before = len(case.trace)
        await case.complete(item.id)
        step = case.trace[before:]
        # The merge is enabled and started in the very step the one branch completed: no waiting
        # for the branch that was not chosen.
        assert [(e["event"], e["task"]) for e in step[:4]] == [
            ("item.started", route), ("item.completed", route),
            ("item.enabled", "merge"), ("item.started", "merge"),
        ]
        result = await case.result()

    assert result.status == "completed"
    assert result.data["merged"] == 1
    assert log == ["merge"]
    trace = result.trace
    assert len(_events(trace, "item.completed", "merge")) == 1
    other = {"b": "c", "c": "b"}[route]
    assert not _events(trace, task=other) and not _events(trace, task="d")


@pytest.mark.parametrize("seed", range(3))
def test_auto_branch_merges_exactly_once(seed: int) -> None:
    log: list[str] = []
    result = yf.run(SPEC, {"route": "none"}, seed=seed, handlers=_handlers(log))
    assert result.status == "completed", result.error
    assert log == ["d", "merge"]
    assert result.data["merged"] == 1
    assert [e["task"] for e in _events(result.trace, "item.completed")] == ["a", "d", "merge"]
