"""WCP-38 General Synchronizing Merge: in any net, loops included, the OR-join fires when at least
one input is marked and no unmarked input can still become marked from the current state without
the join firing. It neither fires early nor deadlocks."""

from __future__ import annotations

from typing import Any

import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

# A token circles in the loop p → spin → p upstream of the join's (empty) input from p.
SPEC_LOOP_UPSTREAM = yf.loads(
    """
yawlflow: 1
id: wcp38_loop_upstream
nets:
  main:
    input: start
    output: end
    conditions:
      spin: {flows: [p]}
    tasks:
      a: {split: and, flows: [spin, q]}
      p:
        external: true
        split: xor
        flows:
          - {to: spin, when: "again"}
          - {to: j, default: true}
      q: {external: true, flows: [j]}
      j: {join: or, run: merge, flows: [end]}
""",
    source="wcp38_loop_upstream.yaml",
)

# A token circles in a loop that cannot reach the join: the join must not wait for it.
SPEC_LOOP_ELSEWHERE = yf.loads(
    """
yawlflow: 1
id: wcp38_loop_elsewhere
nets:
  main:
    input: start
    output: end
    termination: implicit
    conditions:
      spin: {flows: [s]}
    tasks:
      a: {split: and, flows: [spin, o]}
      s:
        external: true
        split: xor
        flows:
          - {to: spin, when: "again"}
          - {to: end, default: true}
      o:
        split: or
        flows:
          - {to: q, when: "true"}
          - {to: r, when: "false"}
      q: {flows: [j]}
      r: {flows: [j]}
      j: {join: or, external: true, flows: [end]}
""",
    source="wcp38_loop_elsewhere.yaml",
)

# The OR-join inside a loop: each iteration activates a data-chosen subset of {b, c}.
SPEC_JOIN_IN_LOOP = yf.loads(
    """
yawlflow: 1
id: wcp38_join_in_loop
nets:
  main:
    input: start
    output: end
    tasks:
      s:
        run: plan
        split: or
        flows:
          - {to: b, when: "'b' in cur"}
          - {to: c, when: "'c' in cur"}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      j: {join: or, run: merge, flows: [d]}
      d:
        split: xor
        flows:
          - {to: s, when: "n < size(take)"}
          - {to: end, default: true}
""",
    source="wcp38_join_in_loop.yaml",
)

# The OR-join next to a cancellation set: k withdraws c (task) or `up` (the condition before it).
SPEC_CANCEL_TEXT = """
yawlflow: 1
id: wcp38_cancel
nets:
  main:
    input: start
    output: end
    conditions:
      up: {flows: [c]}
    tasks:
      a: {split: and, flows: [b, up, k]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      k: {external: true, cancels: [REGION], flows: [j]}
      j: {join: or, run: merge, flows: [end]}
"""


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _handlers(log: list[str]) -> dict[str, Any]:
    def plan(data: dict[str, Any]) -> dict[str, Any]:
        log.append(f"s{data['n']}")
        return {"cur": data["take"][data["n"]]}

    def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        log.append(ctx.task)

    def merge(data: dict[str, Any]) -> dict[str, Any]:
        log.append("j")
        return {"n": data.get("n", 0) + 1}

    return {"plan": plan, "work": work, "merge": merge}


async def _complete(case: yf.Case, task: str, output: dict[str, Any] | None = None) -> None:
    (item,) = [w for w in case.work_items() if w.task == task]
    await case.complete(item.id, output)


@pytest.mark.anyio
@pytest.mark.parametrize("held_as", ["offered", "started"])
async def test_join_waits_while_a_token_in_an_upstream_loop_can_reach_it(held_as: str) -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(SPEC_LOOP_UPSTREAM, {"n": 0})
        await _complete(case, "q")
        await case.idle()
        assert not _events(case.trace, task="j")  # q's input is marked, p's can still be
        for _ in range(3):
            (p,) = case.work_items()
            assert (p.task, p.state) == ("p", "offered")
            if held_as == "started":  # the token now sits in a busy item, not a condition
                await case.start_item(p.id)
                await case.idle()
                assert not _events(case.trace, task="j")
            await _complete(case, "p", {"again": True})  # round the loop: still upstream
            await case.idle()
            assert not _events(case.trace, task="j")
        (p,) = case.work_items()
        if held_as == "started":
            await case.start_item(p.id)
        before = len(case.trace)
        await _complete(case, "p", {"again": False})  # out of the loop, into the join
        assert ("item.enabled", "j") in [(e["event"], e["task"]) for e in case.trace[before:]]
        result = await case.result()
    assert result.status == "completed", result.error
    assert log == ["j"]  # exactly once
    assert len(_events(result.trace, "item.completed", "p")) == 4


@pytest.mark.anyio
async def test_join_waits_for_the_other_branch_when_the_loop_exits_first() -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(SPEC_LOOP_UPSTREAM, {"n": 0})
        await _complete(case, "p", {"again": True})
        await _complete(case, "p", {"again": False})
        await case.idle()
        assert not _events(case.trace, task="j")  # q is offered: its token can still arrive
        await _complete(case, "q")
        result = await case.result()
    assert result.status == "completed"
    assert log == ["j"]


@pytest.mark.anyio
async def test_join_does_not_wait_for_a_loop_that_cannot_reach_it() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_LOOP_ELSEWHERE, {})
        await case.idle()
        # The spinning token can never mark r's input; r was not activated: j is offered at once.
        assert {w.task: w.state for w in case.work_items()} == {"s": "offered", "j": "offered"}
        await _complete(case, "s", {"again": True})
        await _complete(case, "j")
        await _complete(case, "s", {"again": False})
        result = await case.result()
    assert result.status == "completed"
    assert len(_events(result.trace, "item.completed", "j")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "take",
    [[["b"], ["b", "c"], ["c"]], [["b", "c"], ["b", "c"]], [["c"], ["b"], ["c"], ["b", "c"]]],
    ids=["b-bc-c", "bc-bc", "c-b-c-bc"],
)
async def test_join_inside_a_loop_fires_once_per_iteration(take: list[list[str]]) -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(SPEC_JOIN_IN_LOOP, {"n": 0, "take": take})
        result = await case.result()
    assert result.status == "completed", result.error
    expected: list[str] = []
    for i, branches in enumerate(take):
        expected += [f"s{i}", *sorted(branches), "j"]
    # The branches of one iteration may run in either order; the join closes each iteration.
    got: list[str] = []
    chunk: list[str] = []
    for name in log:
        chunk.append(name)
        if name == "j":
            got += [chunk[0], *sorted(chunk[1:-1]), "j"]
            chunk = []
    assert got == expected
    assert result.data["n"] == len(take)


@pytest.mark.parametrize("seed", range(5))
def test_seeded_join_inside_a_loop_is_reproducible(seed: int) -> None:
    take = [["b", "c"], ["c"], ["b", "c"]]
    log: list[str] = []
    first = yf.run(SPEC_JOIN_IN_LOOP, {"n": 0, "take": take}, seed=seed, handlers=_handlers(log))
    assert first.status == "completed", (seed, first.error)
    assert log.count("j") == 3, (seed, log)
    data = {"n": 0, "take": take}
    again = yf.run(SPEC_JOIN_IN_LOOP, data, seed=seed, handlers=_handlers([]), backend="trio")
    assert first.trace == again.trace, seed


@pytest.mark.anyio
@pytest.mark.parametrize("region", ["c", "up"])
async def test_a_cancellation_that_removes_the_upstream_token_lets_the_join_fire(region: str) -> None:
    spec = yf.loads(SPEC_CANCEL_TEXT.replace("REGION", region), source=f"wcp38_cancel_{region}.yaml")
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(spec, {})
        await _complete(case, "b")
        await case.idle()
        assert not _events(case.trace, task="j")  # c and k are both still pending
        before = len(case.trace)
        await _complete(case, "k")
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert ("item.cancelled", "c") in step
        assert step.index(("item.cancelled", "c")) < step.index(("item.enabled", "j"))
        result = await case.result()
    assert result.status == "completed", result.error
    assert log == ["j"]
    assert not _events(result.trace, "item.started", "c")


@pytest.mark.anyio
async def test_join_waits_for_a_branch_whose_canceller_has_not_run() -> None:
    spec = yf.loads(SPEC_CANCEL_TEXT.replace("REGION", "c"), source="wcp38_cancel_c.yaml")
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(spec, {})
        await _complete(case, "b")
        await _complete(case, "c")
        await case.idle()
        assert not _events(case.trace, task="j")  # k can still deliver
        await _complete(case, "k")  # nothing left to cancel
        result = await case.result()
    assert result.status == "completed"
    assert log == ["j"]
    assert not _events(result.trace, "item.cancelled")


@pytest.mark.anyio
async def test_join_does_not_wait_for_a_token_that_an_and_join_blocks_forever() -> None:
    # x's token can reach j only through the AND-join y, whose other input `dead` was bypassed.
    spec = yf.loads(
        """
yawlflow: 1
id: wcp38_dead_and
nets:
  main:
    input: start
    output: end
    conditions:
      dead: {flows: [y]}
    tasks:
      a:
        split: xor
        flows:
          - {to: p, when: "false"}
          - {to: s, default: true}
      p: {flows: [dead]}
      s: {split: and, flows: [b, x]}
      b: {external: true, flows: [j]}
      x: {external: true, flows: [y]}
      y: {join: and, flows: [j]}
      j: {join: or, flows: [end]}
""",
        source="wcp38_dead_and.yaml",
    )
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(spec, {})
        before = len(case.trace)
        await _complete(case, "b")  # x is still offered, but its token can never get past y
        step = [(e["event"], e["task"]) for e in case.trace[before:]]
        assert ("item.completed", "j") in step  # no deadlock: j fires on b alone
        result = await case.result()
    assert result.status == "completed", result.error
    assert len(_events(result.trace, "item.completed", "j")) == 1
    assert [e["task"] for e in _events(result.trace, "item.cancelled")] == ["x"]  # withdrawn at the end


@pytest.mark.anyio
async def test_join_waits_for_a_running_sub_case_upstream() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wcp38_subcase
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: and, flows: [b, sub]}
      b: {flows: [j]}
      sub: {net: inner, flows: [j]}
      j: {join: or, run: merge, flows: [end]}
  inner:
    input: i
    output: o
    tasks:
      w: {external: true, flows: [o]}
""",
        source="wcp38_subcase.yaml",
    )
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(spec, {})
        await case.idle()
        assert not _events(case.trace, task="j")  # the composite item is busy: it will deliver
        sub_id = next(e["case"] for e in case.trace if e["event"] == "case.started" and e["case"] != case.id)
        sub = engine.case(sub_id)
        (w,) = sub.work_items()
        await sub.complete(w.id)
        result = await case.result()
    assert result.status == "completed", result.error
    assert log == ["j"]
