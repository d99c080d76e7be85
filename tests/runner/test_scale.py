"""Scale: long sequences, long loops and wide splits run to completion without recursion.

ADR 0001 §2: a step drains a worklist in a loop, so a 10,000-task routing sequence is one step
of 10,000 turns, with no recursion and no await. The nets are generated in code; each test
asserts the exact trace length, which pins down that every task fired exactly once (or every
iteration ran exactly once). Each test keeps well under ~10 s.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import yawlflow
from yawlflow._compiled import compile_spec
from yawlflow._effects import StartItem
from yawlflow._events import CaseStarted, ItemCompleted
from yawlflow._runner import NetRunner
from yawlflow._spec import from_data

N = 10_000
WIDTH = 1_000


def one_net(name: str, tasks: dict[str, Any]) -> dict[str, Any]:
    """A spec (as data) with one net ``main``: start -> tasks -> end."""
    return {"yawlflow": 1, "id": name, "nets": {"main": {"input": "start", "output": "end", "tasks": tasks}}}


def sequence_spec(n: int) -> dict[str, Any]:
    """t0 -> t1 -> ... -> t{n-1} -> end, all routing tasks."""
    return one_net(f"seq{n}", {f"t{i}": {"flows": [f"t{i + 1}" if i + 1 < n else "end"]} for i in range(n)})


def stack_depth() -> int:
    """How many frames are on the stack now."""
    frame: FrameType | None = sys._getframe()
    depth = 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def runner_for(data: dict[str, Any]) -> NetRunner:
    return NetRunner(compile_spec(from_data(data)).net("main"))


def drive_auto(runner: NetRunner, data: dict[str, Any], handler: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Start a case and complete every StartItem with ``handler(input)`` until nothing is left."""
    step = runner.start(CaseStarted(case="c", net="main", data=data))
    state = step.state
    trace = list(step.trace)
    pending = [e for e in step.effects if isinstance(e, StartItem)]
    while pending:
        effect = pending.pop(0) if len(pending) < 2 else pending.pop()
        step = runner.handle(state, ItemCompleted(item=effect.item, output=handler(effect.input)))
        state = step.state
        trace.extend(step.trace)
        pending.extend(e for e in step.effects if isinstance(e, StartItem))
    return state, trace


def test_ten_thousand_task_routing_sequence_is_one_step() -> None:
    runner = runner_for(sequence_spec(N))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(stack_depth() + 100)  # a step that recursed per task would fail at once
    try:
        step = runner.start(CaseStarted(case="c", net="main"))
    finally:
        sys.setrecursionlimit(limit)
    assert step.state.status == "completed"
    assert len(step.trace) == N + 2  # case.started, N item.completed, case.completed
    completed = [r["task"] for r in step.trace if r["event"] == "item.completed"]
    assert completed == [f"t{i}" for i in range(N)]
    assert [r["seq"] for r in step.trace] == list(range(N + 2))


def test_ten_thousand_iteration_structured_loop() -> None:
    # WCP-21: an auto task with loop {while: i < N}, one item per iteration; the handler
    # increments i.
    runner = runner_for(
        one_net("loop", {"inc": {"run": "h", "loop": {"while": f"i < {N}"}, "flows": ["end"]}})
    )
    state, trace = drive_auto(runner, {"i": 0}, lambda data: {"i": data["i"] + 1})
    assert state.status == "completed"
    assert state.data["i"] == N
    # case.started; per iteration item.enabled, item.started, item.completed; case.completed
    assert len(trace) == 3 * N + 2
    assert sum(1 for r in trace if r["event"] == "item.completed") == N
    assert len({r["item"] for r in trace if r["event"] == "item.completed"}) == N  # one item each


def test_ten_thousand_iteration_xor_back_edge_cycle() -> None:
    # WCP-10: the same loop as an arbitrary cycle, an XOR split back to the task itself.
    back = [{"to": "inc", "when": f"i < {N}"}, {"to": "end", "default": True}]
    runner = runner_for(one_net("cycle", {"inc": {"run": "h", "split": "xor", "flows": back}}))
    state, trace = drive_auto(runner, {"i": 0}, lambda data: {"i": data["i"] + 1})
    assert state.status == "completed"
    assert state.data["i"] == N
    assert len(trace) == 3 * N + 2
    assert [r["seq"] for r in trace] == list(range(3 * N + 2))


def test_ten_thousand_iteration_routing_cycle_with_an_auto_step() -> None:
    # A cycle of a routing task and an auto task: the routing task fires inside each step.
    out = [{"to": "inc", "when": f"i < {N}"}, {"to": "end", "default": True}]
    runner = runner_for(
        one_net(
            "cycle2",
            {
                "check": {"split": "xor", "flows": out},
                "inc": {"run": "h", "flows": ["check"]},
            },
        )
    )
    state, trace = drive_auto(runner, {"i": 0}, lambda data: {"i": data["i"] + 1})
    assert state.status == "completed"
    assert state.data["i"] == N
    # case.started; N+1 check completions; N x (inc enabled, started, completed); case.completed
    assert len(trace) == 1 + (N + 1) + 3 * N + 1


def wide_spec(width: int, *, kind: str, join: str = "and", split: str = "and") -> dict[str, Any]:
    branch: dict[str, Any] = {"flows": ["j"]}
    if kind == "auto":
        branch["run"] = "h"
    elif kind == "external":
        branch["external"] = True
    tasks: dict[str, Any] = {"s": {"split": split, "flows": [f"b{i}" for i in range(width)]}}
    tasks.update({f"b{i}": dict(branch) for i in range(width)})
    tasks["j"] = {"join": join, "flows": ["end"]}
    return one_net(f"wide{width}", tasks)


def test_thousand_branch_and_split_into_thousand_input_and_join_routing() -> None:
    runner = runner_for(wide_spec(WIDTH, kind="routing"))
    step = runner.start(CaseStarted(case="c", net="main"))
    assert step.state.status == "completed"
    # case.started, s, the branches, j, case.completed
    assert len(step.trace) == WIDTH + 4
    assert [r["task"] for r in step.trace if r["event"] == "item.completed"][-1] == "j"


def test_thousand_branch_and_split_into_thousand_input_and_join_auto() -> None:
    runner = runner_for(wide_spec(WIDTH, kind="auto"))
    step = runner.start(CaseStarted(case="c", net="main"))
    starts = [e for e in step.effects if isinstance(e, StartItem)]
    assert len(starts) == WIDTH
    state = step.state
    trace = list(step.trace)
    for k, effect in enumerate(reversed(starts)):
        step = runner.handle(state, ItemCompleted(item=effect.item))
        state = step.state
        trace.extend(step.trace)
        fired = any(r["task"] == "j" for r in step.trace)
        assert fired == (k == WIDTH - 1), k  # the AND-join fires with the last branch only
    assert state.status == "completed"
    # case.started, s, WIDTH x (enabled, started), WIDTH completed, j, case.completed
    assert len(trace) == 3 * WIDTH + 4


def test_thousand_branch_or_split_into_thousand_input_or_join() -> None:
    # WCP-6/7 at width 1,000, every branch taken and busy: after each completion the OR-join must
    # see that the still-busy branches will deliver and wait, and fire with the last one. Every
    # one of those decisions is "a busy task directly feeds an empty input", so the whole run
    # should take about as long as the AND-join's (the speed itself is benches' business; the
    # suite's timeout stops an oracle that would hang).
    runner = runner_for(wide_spec(WIDTH, kind="auto", join="or", split="or"))
    step = runner.start(CaseStarted(case="c", net="main"))
    starts = [e for e in step.effects if isinstance(e, StartItem)]
    assert len(starts) == WIDTH
    state = step.state
    trace = list(step.trace)
    for k, effect in enumerate(starts):
        step = runner.handle(state, ItemCompleted(item=effect.item))
        state = step.state
        trace.extend(step.trace)
        assert any(r["task"] == "j" for r in step.trace) == (k == WIDTH - 1), k
    assert state.status == "completed"
    assert len(trace) == 3 * WIDTH + 4


def test_public_api_runs_the_ten_thousand_task_sequence() -> None:
    spec = from_data(sequence_spec(N))
    result = yawlflow.run(spec, {"n": 1})
    assert result.status == "completed"
    assert len(result.trace) == N + 2
    assert result.trace[0]["event"] == "case.started"
    assert result.trace[-1]["event"] == "case.completed"
    assert [r["seq"] for r in result.trace] == list(range(N + 2))


def test_public_api_runs_the_ten_thousand_iteration_loop_with_a_handler() -> None:
    spec = from_data(
        one_net("loop", {"inc": {"run": "inc", "loop": {"while": f"i < {N}"}, "flows": ["end"]}})
    )

    def inc(data: dict[str, Any]) -> dict[str, Any]:
        return {"i": data["i"] + 1}

    result = yawlflow.run(spec, {"i": 0}, handlers={"inc": inc}, seed=1)
    assert result.status == "completed", result.error
    assert result.data["i"] == N
    assert len(result.trace) == 3 * N + 2
