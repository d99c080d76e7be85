"""WCP-2 Parallel Split: when A completes, every outgoing branch is enabled in the same case;
each runs once, in any interleaving; none is skipped."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

BRANCHES = ("b", "c", "d")

SPEC_EXTERNAL = yf.loads(
    """
yawlflow: 1
id: wcp02_external
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, split: and, flows: [b, c, d]}
      b: {external: true, flows: [e]}
      c: {external: true, flows: [e]}
      d: {external: true, flows: [e]}
      e: {join: and, flows: [end]}
""",
    source="wcp02_external.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp02_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [e]}
      c: {run: work, flows: [e]}
      d: {run: work, flows: [e]}
      e: {join: and, run: work, flows: [end]}
""",
    source="wcp02_auto.yaml",
)

SPEC_RENDEZVOUS = yf.loads(
    """
yawlflow: 1
id: wcp02_rendezvous
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, c]}
      b: {run: meet_b, flows: [e]}
      c: {run: meet_c, flows: [e]}
      e: {join: and, flows: [end]}
""",
    source="wcp02_rendezvous.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _counting(log: list[str]) -> dict[str, Any]:
    def work(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        log.append(ctx.task)
        return {f"ran_{ctx.task}": True}

    return {"work": work}


@pytest.mark.anyio
@pytest.mark.parametrize("order", list(itertools.permutations(BRANCHES)), ids="-".join)
async def test_every_branch_is_enabled_in_the_same_step_and_runs_once(order: tuple[str, ...]) -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {})
        (a,) = case.work_items("offered")
        before = len(case.trace)
        await case.complete(a.id)
        step = case.trace[before:]  # everything one API call applied
        assert [(e["event"], e["task"]) for e in step] == [
            ("item.started", "a"),
            ("item.completed", "a"),
            ("item.enabled", "b"), ("item.offered", "b"),
            ("item.enabled", "c"), ("item.offered", "c"),
            ("item.enabled", "d"), ("item.offered", "d"),
        ]
        assert {w.task: w.state for w in case.work_items()} == dict.fromkeys(BRANCHES, "offered")
        assert all(w.case == case.id for w in case.work_items())

        items = {w.task: w.id for w in case.work_items()}
        for done, task in enumerate(order, start=1):
            await case.complete(items[task], {task: done})
            live = {w.task for w in case.work_items()}
            assert live == set(BRANCHES) - set(order[:done])  # the others are untouched
        result = await case.result()

    assert result.status == "completed"
    trace = result.trace
    for task in BRANCHES:
        assert len(_events(trace, "item.enabled", task)) == 1
        assert len(_events(trace, "item.completed", task)) == 1
    assert [e["task"] for e in _events(trace, "item.completed") if e["task"] in BRANCHES] == list(order)
    assert len(_events(trace, "item.completed", "e")) == 1
    assert not _events(trace, "item.cancelled")
    assert result.data == {task: i for i, task in enumerate(order, start=1)}


@pytest.mark.anyio
async def test_branches_really_run_concurrently_without_a_seed() -> None:
    # Each branch waits for the other to have begun: a sequential engine would hang here.
    b_in, c_in = anyio.Event(), anyio.Event()

    async def meet_b(data: dict[str, Any]) -> dict[str, Any]:
        b_in.set()
        await c_in.wait()
        return {"b": True}

    async def meet_c(data: dict[str, Any]) -> dict[str, Any]:
        c_in.set()
        await b_in.wait()
        return {"c": True}

    async with yf.Engine(clock=FakeClock(), handlers={"meet_b": meet_b, "meet_c": meet_c}) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_RENDEZVOUS, {})
            result = await case.result()
    assert result.status == "completed"
    assert result.data == {"b": True, "c": True}
    assert len(_events(result.trace, "item.completed", "e")) == 1


@pytest.mark.parametrize("seed", range(5))
def test_seeded_interleaving_runs_each_branch_once(seed: int) -> None:
    log: list[str] = []
    result = yf.run(SPEC_AUTO, {}, seed=seed, handlers=_counting(log))
    assert result.status == "completed", (seed, result.error)
    assert log[0] == "a" and log[-1] == "e", (seed, log)
    assert sorted(log[1:4]) == sorted(BRANCHES), (seed, log)
    trace = result.trace
    done_a = _events(trace, "item.completed", "a")[0]["seq"]
    enabled = [e["seq"] for t in BRANCHES for e in _events(trace, "item.enabled", t)]
    assert len(enabled) == 3 and all(s > done_a for s in enabled), seed
    # One step enables (and, being auto, starts) every branch, before any branch completes.
    step = trace[done_a + 1 : done_a + 7]
    assert [(e["event"], e["task"]) for e in step] == [
        (kind, t) for t in BRANCHES for kind in ("item.enabled", "item.started")
    ], seed
    for task in (*BRANCHES, "e"):
        assert len(_events(trace, "item.completed", task)) == 1, (seed, task)


@pytest.mark.parametrize("seed", [0, 7])
def test_seeded_trace_is_identical_across_runs_and_backends(seed: int) -> None:
    runs = [
        yf.run(SPEC_AUTO, {"k": 1}, seed=seed, handlers=_counting([])),
        yf.run(SPEC_AUTO, {"k": 1}, seed=seed, handlers=_counting([])),
        yf.run(SPEC_AUTO, {"k": 1}, seed=seed, handlers=_counting([]), backend="trio"),
    ]
    assert runs[0].trace == runs[1].trace == runs[2].trace, seed
    assert runs[0].case_id == runs[1].case_id == runs[2].case_id, seed
    other = yf.run(SPEC_AUTO, {"k": 1}, seed=seed + 1, handlers=_counting([]))
    assert other.case_id != runs[0].case_id  # case ids derive from the seed


def test_the_seed_chooses_the_interleaving() -> None:
    # "handlers run one at a time in a seed-chosen order": over 20 seeds, not one fixed order.
    orders = set()
    for seed in range(20):
        log: list[str] = []
        assert yf.run(SPEC_AUTO, {}, seed=seed, handlers=_counting(log)).status == "completed"
        orders.add(tuple(log[1:4]))
    assert len(orders) > 1, orders
