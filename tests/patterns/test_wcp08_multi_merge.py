"""WCP-8 Multi-Merge: every arrival triggers the successor separately: k threads arriving give
k runs of the successor (into an offered task: k offered items)."""

from __future__ import annotations

from typing import Any

import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# Implicit termination: the first thread that reaches `end` must not withdraw the others.
SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp08_auto
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {run: work, flows: [m]}
      c: {run: work, flows: [m]}
      d: {run: work, flows: [m]}
      m: {join: xor, run: merge, flows: [after]}
      after: {run: work, flows: [end]}
""",
    source="wcp08_auto.yaml",
)

SPEC_OFFERED = yf.loads(
    """
yawlflow: 1
id: wcp08_offered
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {flows: [m]}
      c: {flows: [m]}
      d: {external: true, flows: [m]}
      m: {join: xor, external: true, flows: [end]}
""",
    source="wcp08_offered.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _handlers(log: list[str]) -> dict[str, Any]:
    def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        log.append(ctx.task)

    def merge(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        log.append("m")
        return {"runs": data.get("runs", 0) + 1}

    return {"work": work, "merge": merge}


@pytest.mark.anyio
async def test_three_arrivals_give_three_runs_of_the_successor() -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(SPEC_AUTO, {})
        result = await case.result()
    assert result.status == "completed", result.error
    assert log.count("m") == 3 and log.count("after") == 3
    trace = result.trace
    runs = _events(trace, "item.started", "m")
    assert len(runs) == 3 and len({e["item"] for e in runs}) == 3  # three separate items
    assert len(_events(trace, "item.completed", "after")) == 3


@pytest.mark.anyio
async def test_arrivals_into_an_offered_task_give_one_offer_each() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_OFFERED, {})
        # b and c (routing) arrived in the same step as the split: two offers, not one.
        offered = case.work_items("offered")
        assert sorted(w.task for w in offered) == ["d", "m", "m"]
        m_items = [w.id for w in offered if w.task == "m"]
        assert len(set(m_items)) == 2

        (d,) = [w for w in offered if w.task == "d"]
        await case.complete(d.id)
        m_items = [w.id for w in case.work_items("offered") if w.task == "m"]
        assert len(m_items) == 3  # the third arrival: a third offer, the first two untouched

        # Claiming one offer does not withdraw the others (this is no deferred choice).
        await case.start_item(m_items[0])
        assert sorted((w.id, w.state) for w in case.work_items()) == sorted(
            [(m_items[0], "started"), (m_items[1], "offered"), (m_items[2], "offered")]
        )
        for item in m_items:
            await case.complete(item)
        result = await case.result()

    assert result.status == "completed"
    trace = result.trace
    assert len(_events(trace, "item.offered", "m")) == 3
    assert len(_events(trace, "item.completed", "m")) == 3
    assert not _events(trace, "item.cancelled")


@pytest.mark.anyio
async def test_case_waits_while_a_merged_offer_is_pending() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_OFFERED, {})
        m_items = [w.id for w in case.work_items("offered") if w.task == "m"]
        await case.complete(m_items[0])
        await case.idle()
        assert case.status == "running"  # one run of m done, the other offer still stands
        assert [w.id for w in case.work_items() if w.task == "m"] == [m_items[1]]
        await case.cancel()


@pytest.mark.parametrize("seed", range(5))
def test_seeded_k_arrivals_give_k_runs(seed: int) -> None:
    log: list[str] = []
    result = yf.run(SPEC_AUTO, {}, seed=seed, handlers=_handlers(log))
    assert result.status == "completed", (seed, result.error)
    assert log.count("m") == 3 and log.count("after") == 3, (seed, log)
    for e in _events(result.trace, "item.started", "m"):
        assert e["seq"] > min(x["seq"] for t in "bcd" for x in _events(result.trace, "item.completed", t))


@pytest.mark.parametrize("seed", [2, 9])
def test_seeded_trace_is_identical_across_runs_and_backends(seed: int) -> None:
    runs = [
        yf.run(SPEC_AUTO, {}, seed=seed, handlers=_handlers([])),
        yf.run(SPEC_AUTO, {}, seed=seed, handlers=_handlers([])),
        yf.run(SPEC_AUTO, {}, seed=seed, handlers=_handlers([]), backend="trio"),
    ]
    assert runs[0].trace == runs[1].trace == runs[2].trace, seed


@pytest.mark.parametrize("seed", [None, 0, 1])
def test_arrivals_in_one_step_into_an_auto_task_give_one_run_each(seed: int | None) -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp08_same_step
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {split: and, flows: [b, c, d]}
      b: {flows: [m]}
      c: {flows: [m]}
      d: {flows: [m]}
      m: {join: xor, run: merge, flows: [end]}
""",
        source="wcp08_same_step.yaml",
    )
    log: list[str] = []
    result = yf.run(spec, {}, seed=seed, handlers=_handlers(log))
    assert result.status == "completed", result.error
    assert log == ["m", "m", "m"]
    assert len({e["item"] for e in _events(result.trace, "item.started", "m")}) == 3
