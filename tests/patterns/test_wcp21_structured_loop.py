"""WCP-21 Structured Loop: a task or sub-net repeats while (pre-test) or until (post-test) a
condition holds, with one entry and one exit; one item per iteration."""

from __future__ import annotations

from typing import Any

import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

LOOP_TEXT = """
yawlflow: 1
id: wcp21
nets:
  main:
    input: start
    output: end
    tasks:
      before: {flows: [body]}
      body: {BODY, loop: LOOP, flows: [after]}
      after: {run: after, flows: [end]}
"""


def _spec(body: str, loop: str) -> yf.Spec:
    return yf.loads(LOOP_TEXT.replace("{BODY,", "{" + body + ",").replace("LOOP", loop), source="wcp21.yaml")


WHILE = _spec("run: step", '{while: "n < limit"}')
UNTIL = _spec("run: step", '{until: "n >= limit"}')
WHILE_EXTERNAL = _spec("external: true", '{while: "n < limit"}')
UNTIL_EXTERNAL = _spec("external: true", '{until: "n >= limit"}')


# The body is a sub-net: each iteration is a new sub-case.
SUBNET_UNTIL = yf.loads(
    """
yawlflow: 1
id: wcp21_subnet
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      body: {net: round, loop: {until: "n >= limit"}, flows: [after]}
      after: {run: after, flows: [end]}
  round:
    input: rs
    output: re
    tasks:
      first: {run: step, flows: [second]}
      second: {flows: [re]}
""",
    source="wcp21_subnet.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _handlers(log: list[str]) -> dict[str, Any]:
    def step(data: dict[str, Any]) -> dict[str, Any]:
        log.append(f"step n={data['n']}")
        return {"n": data["n"] + 1}

    def after(data: dict[str, Any]) -> None:
        log.append(f"after n={data['n']}")

    return {"step": step, "after": after}


def _check_iterations(trace: list[dict[str, Any]], iterations: int) -> None:
    started = _events(trace, "item.started", "body")
    completed = _events(trace, "item.completed", "body")
    assert len(started) == len(completed) == iterations
    assert len({e["item"] for e in started}) == iterations  # one item per iteration
    for done, nxt in zip(completed, started[1:], strict=False):  # each iteration ends before the next begins
        assert done["seq"] < nxt["seq"]
    (after,) = _events(trace, "item.enabled", "after")  # one exit: the successor once, at the end
    assert after["seq"] > completed[-1]["seq"]


@pytest.mark.anyio
@pytest.mark.parametrize(("n", "limit", "iterations"), [(0, 3, 3), (0, 1, 1), (2, 5, 3)])
async def test_while_loop_runs_while_the_condition_holds(n: int, limit: int, iterations: int) -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(WHILE, {"n": n, "limit": limit})
        result = await case.result()
    assert result.status == "completed", result.error
    assert log == [f"step n={i}" for i in range(n, limit)] + [f"after n={limit}"]
    assert result.data["n"] == limit
    _check_iterations(result.trace, iterations)


@pytest.mark.anyio
@pytest.mark.parametrize(("n", "limit"), [(3, 3), (9, 3)])
async def test_while_false_at_the_start_means_zero_iterations(n: int, limit: int) -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(WHILE, {"n": n, "limit": limit})
        result = await case.result()
    assert result.status == "completed", result.error
    assert log == [f"after n={n}"]  # the body's handler never ran
    trace = result.trace
    # Like a routing task: one item.completed, no item.enabled or item.started of its own.
    assert [e["event"] for e in _events(trace, task="body")] == ["item.completed"]
    (body_done,) = _events(trace, "item.completed", "body")
    assert body_done["seq"] < _events(trace, "item.enabled", "after")[0]["seq"]
    assert result.data["n"] == n


@pytest.mark.anyio
@pytest.mark.parametrize(("n", "limit", "iterations"), [(0, 3, 3), (3, 3, 1), (9, 3, 1)])
async def test_until_loop_tests_after_each_iteration(n: int, limit: int, iterations: int) -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(UNTIL, {"n": n, "limit": limit})
        result = await case.result()
    assert result.status == "completed", result.error
    assert log == [f"step n={i}" for i in range(n, n + iterations)] + [f"after n={n + iterations}"]
    _check_iterations(result.trace, iterations)


@pytest.mark.anyio
@pytest.mark.parametrize("spec", [WHILE_EXTERNAL, UNTIL_EXTERNAL], ids=["while", "until"])
async def test_external_body_is_offered_once_per_iteration(spec: yf.Spec) -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(spec, {"n": 0, "limit": 3})
        ids = []
        for i in range(3):
            live = case.work_items()
            assert [(w.task, w.state) for w in live] == [("body", "offered")], i
            assert not _events(case.trace, task="after")
            ids.append(live[0].id)
            await case.complete(live[0].id, {"n": i + 1})
        result = await case.result()
    assert result.status == "completed"
    assert len(set(ids)) == 3
    assert log == ["after n=3"]
    assert len(_events(result.trace, "item.offered", "body")) == 3
    _check_iterations(result.trace, 3)


@pytest.mark.parametrize("seed", [0, 5])
def test_seeded_loops_are_reproducible(seed: int) -> None:
    runs = [
        yf.run(WHILE, {"n": 0, "limit": 4}, seed=seed, handlers=_handlers([])),
        yf.run(WHILE, {"n": 0, "limit": 4}, seed=seed, handlers=_handlers([]), backend="trio"),
    ]
    assert runs[0].status == "completed"
    assert runs[0].trace == runs[1].trace


@pytest.mark.anyio
async def test_a_sub_net_body_repeats_one_sub_case_per_iteration() -> None:
    log: list[str] = []
    async with yf.Engine(clock=FakeClock(), handlers=_handlers(log)) as engine:
        case = await engine.start(SUBNET_UNTIL, {"n": 0, "limit": 3})
        result = await case.result()
    assert result.status == "completed", result.error
    assert log == ["step n=0", "step n=1", "step n=2", "after n=3"]
    trace = result.trace
    subs = [e["case"] for e in _events(trace, "case.started") if e["case"] != case.id]
    assert len(subs) == len(set(subs)) == 3
    own = [e for e in trace if e["case"] == case.id]
    _check_iterations(own, 3)
