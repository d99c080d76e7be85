"""The engine: an automatic step with a no-op handler against a bare task-group spawn+join, and
routing-only firings per second.

* **Auto steps.** A case of ``n`` automatic tasks in sequence, each running a no-op handler, in
  an Engine kept open on one event loop (``_kit.LoopHost``); per step = the case's time / ``n``.
  Two handlers: ``quick`` (a sync handler registered ``quick=True``: the engine calls it inline,
  no task) and ``async`` (an ``async def``: one task per step, by design). Baselines, measured
  in the same test on the same loop: ``asyncio.TaskGroup`` and an anyio task group spawning and
  joining ``n`` no-op tasks, per task. ``n`` is 100 and 10,000: the 10,000 row also gives the
  ratio of its per-step cost to the 100 row's (flat means <= 1.5x).
* **Routing.** ``NetRunner.start`` of routing-only nets (every task fires inside one step, ADR
  0001): firings per second with the kernels loaded against the same runner on the pure-Python
  twin (patched in for the baseline), at 100 and 10,000 tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from _kit import LoopHost, Report, Row, compare, fmt_speedup, fmt_time, verdict_at_least, verdict_at_most
from _shapes import auto_sequence, loop, parallel, sequence

import yawlflow._runner as runner_module
from yawlflow._compiled import compile_spec
from yawlflow._events import CaseStarted
from yawlflow._hotpath import _marking_py
from yawlflow._runner import NetRunner
from yawlflow._spec import from_data

STEP_GOAL = 5e-6  # an automatic step with a no-op handler: <= 5 µs
FLAT_GOAL = 1.5  # the 10,000 shapes within 1.5x of the 100 shapes, per step
FIRING_GOAL = 1_000_000  # routing-only firings per second

HANDLERS = {"quick": "quick sync no-op handler (inline)", "async": "async no-op handler (a task per step)"}
_per_step: dict[tuple[str, str], float] = {}  # (loop, handler) -> seconds per step at n=100
_per_firing: dict[str, float] = {}  # shape -> seconds per firing at 100


def _noop(data: dict[str, Any]) -> None:
    return None


async def _anoop(data: dict[str, Any]) -> None:
    return None


async def _asyncio_group(n: int) -> None:
    async def nothing() -> None:
        return None

    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(nothing())


async def _anyio_group(n: int) -> None:
    async def nothing() -> None:
        return None

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(nothing)


@pytest.fixture
def engine(host: LoopHost) -> Iterator[Any]:
    with host.engine() as eng:
        eng.handlers.register("quick", _noop, quick=True)
        eng.handlers.register("async", _anoop)
        yield eng


@pytest.mark.parametrize("handler", ["quick", "async"])
@pytest.mark.parametrize("n", [100, 10_000])
def test_auto_step_vs_task_group(benchmark: Any, report: Report, rounds: int, quick: bool, host: LoopHost,
                                 engine: Any, handler: str, n: int) -> None:
    if quick and n > 1_000:
        n = 2_000
    spec = from_data(auto_sequence(n, handler))

    async def one_case() -> None:
        case = await engine.start(spec)
        result = await case.result()
        assert result.status == "completed", result

    host.run(one_case())  # compiles the spec, builds the runner
    total, base = compare(benchmark, lambda: host.run(one_case()), {
        "asyncio": lambda: host.run(_asyncio_group(n)),
        "anyio": lambda: host.run(_anyio_group(n)),
    }, rounds)
    step, tg_asyncio, tg_anyio = total / n, base["asyncio"] / n, base["anyio"] / n
    flat = ""
    numbers: dict[str, Any] = {"s_per_step": step, "asyncio_taskgroup_s_per_task": tg_asyncio,
                               "anyio_taskgroup_s_per_task": tg_anyio, "n": n, "loop": host.kind}
    if n == 100:
        _per_step[(host.kind, handler)] = step
    elif (host.kind, handler) in _per_step:
        growth = step / _per_step[(host.kind, handler)]
        numbers["per_step_vs_100"] = growth
        flat = f"; {growth:.2f}x the 100-task step ({verdict_at_most(growth, FLAT_GOAL)} <= {FLAT_GOAL}x)"
    report.add(benchmark, Row(
        group="engine", name=f"auto step, {HANDLERS[handler]}, {n:,} tasks, {host.kind}",
        measured=f"{fmt_time(step)}/step",
        baseline=f"TaskGroup {fmt_time(tg_asyncio)}, anyio {fmt_time(tg_anyio)} /task",
        ratio=f"{step / tg_asyncio:.2g}x asyncio, {step / tg_anyio:.2g}x anyio{flat}",
        goal=f"<= {fmt_time(STEP_GOAL)}/step", verdict=verdict_at_most(step, STEP_GOAL), numbers=numbers,
    ))


SHAPES: dict[str, Callable[[int], tuple[dict[str, Any], dict[str, Any]]]] = {
    "sequence": lambda n: (sequence(n), {}),
    "parallel": lambda n: (parallel(n), {}),
    "xor-loop": lambda n: (loop(n), {"i": 0}),
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("n", [100, 10_000])
def test_routing_firings_per_second(benchmark: Any, report: Report, rounds: int, quick: bool,
                                    monkeypatch: pytest.MonkeyPatch, shape: str, n: int) -> None:
    if quick and n > 1_000:
        n = 2_000
    data, start_data = SHAPES[shape](n)
    runner = NetRunner(compile_spec(from_data(data)).net("main"))
    firings = runner.net.n_tasks if shape != "xor-loop" else n

    def run(on: NetRunner = runner) -> None:
        step = on.start(CaseStarted(case="c", net="main", data=start_data))
        assert step.state.status == "completed", step.state.error

    def pure_twins(patch: pytest.MonkeyPatch) -> None:
        for name in ("Marking", "RoutingProgram", "Worklist", "completed_records"):
            patch.setattr(runner_module, name, getattr(_marking_py, name))

    with monkeypatch.context() as patch:
        pure_twins(patch)
        pure_runner = NetRunner(runner.net)

    def run_pure() -> None:  # the baseline: the same runner on the pure twins
        with monkeypatch.context() as patch:
            pure_twins(patch)
            run(pure_runner)

    total, base = compare(benchmark, run, {"pure": run_pure}, rounds)
    per, pure = total / firings, base["pure"] / firings
    rate = 1 / per
    flat = ""
    numbers: dict[str, Any] = {"firings_per_s": rate, "s_per_firing": per, "pure_twin_s_per_firing": pure,
                               "n": n}
    if n == 100:
        _per_firing[shape] = per
    elif shape in _per_firing:
        growth = per / _per_firing[shape]
        numbers["per_firing_vs_100"] = growth
        flat = f"; {growth:.2f}x the 100-task firing ({verdict_at_most(growth, FLAT_GOAL)} <= {FLAT_GOAL}x)"
    report.add(benchmark, Row(
        group="engine", name=f"routing-only {shape}, {n:,} tasks (NetRunner, one step)",
        measured=f"{rate:,.0f} firings/s ({fmt_time(per)})",
        baseline=f"pure-twin runner {1 / pure:,.0f}/s",
        ratio=f"{fmt_speedup(pure / per)}{flat}", goal=f">= {FIRING_GOAL:,} firings/s",
        verdict=verdict_at_least(rate, FIRING_GOAL), numbers=numbers,
    ))
