"""Memory: 10,000 concurrent cases, each waiting for an external work item.

Measured with ``tracemalloc`` (Python allocations, the compiled kernels' ``PyMem`` blocks
included): the peak while the cases are started and all wait, above what was allocated before
the first one. Baselines in the same run: 10,000 bare anyio tasks each waiting on an
``anyio.Event`` (the least a case that owns a task can cost), and, when installed, 10,000
SpiffWorkflow workflows each waiting at a manual task. Goal: <= 100 MB (stretch: 50 MB).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from _kit import LoopHost, Report, Row, verdict_at_most
from _shapes import bpmn_sequence, waiting

import yawlflow as yf
from yawlflow._spec import from_data

N = 10_000
GOAL_MB = 100.0
STRETCH_MB = 50.0
MB = 1024 * 1024


def traced(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated by ``fn()`` above what was allocated when it began."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


@pytest.fixture(scope="module")
def loop_host() -> Iterator[LoopHost]:
    try:
        h = LoopHost("uvloop")
    except ImportError:
        h = LoopHost("asyncio")
    yield h
    h.close()


def _yawlflow(host: LoopHost, n: int) -> Callable[[], Any]:
    spec = from_data(waiting())
    yf.Engine()  # import the engine's modules before tracing: their code is not per case

    async def cases() -> None:
        async with yf.Engine() as engine:
            started = [await engine.start(spec) for _ in range(n)]
            await anyio.wait_all_tasks_blocked()
            assert all(c.status == "running" and c.work_items("offered") for c in started[:: max(1, n // 100)])
            assert len(started) == n

    return lambda: host.run(cases())


def _anyio_tasks(host: LoopHost, n: int) -> Callable[[], Any]:
    async def tasks() -> None:
        release = anyio.Event()
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(release.wait)
            await anyio.wait_all_tasks_blocked()
            release.set()

    return lambda: host.run(tasks())


def _spiff(n: int) -> Callable[[], Any] | None:
    try:
        from SpiffWorkflow.bpmn import BpmnWorkflow
        from SpiffWorkflow.bpmn.parser import BpmnParser
    except ImportError:
        return None
    parser = BpmnParser()
    parser.add_bpmn_str(bpmn_sequence(1).encode("utf-8"))
    spec = parser.get_spec("bench")

    def workflows() -> None:
        kept = []
        for _ in range(n):
            workflow = BpmnWorkflow(spec)
            workflow.run_all()  # stops at the manual task: the workflow waits
            kept.append(workflow)
        assert not kept[-1].completed

    return workflows


def test_ten_thousand_waiting_cases(benchmark: Any, report: Report, quick: bool, loop_host: LoopHost) -> None:
    n = 1_000 if quick else N
    _yawlflow(loop_host, 10)()  # warm: first-use imports, the CEL runtime, caches
    ours = 0

    def measure() -> None:
        nonlocal ours
        ours = traced(_yawlflow(loop_host, n))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    bare = traced(_anyio_tasks(loop_host, n))
    spiff_fn = _spiff(n)
    spiff = traced(spiff_fn) if spiff_fn is not None else None
    mb = ours / MB
    scale = N / n  # --bench-quick measures fewer cases: the goal is read at 10,000
    verdict = verdict_at_most(mb * scale, GOAL_MB)
    if verdict == "met":
        verdict += f" (stretch {STRETCH_MB:g} MB: {verdict_at_most(mb * scale, STRETCH_MB)})"
    spiff_text = f", Spiff {spiff / MB:.1f} MB ({spiff / n / 1024:.1f} KiB/case)" if spiff is not None else ""
    report.add(benchmark, Row(
        group="memory", name=f"{n:,} waiting cases (tracemalloc peak)",
        measured=f"{mb:.1f} MB ({ours / n / 1024:.1f} KiB/case)",
        baseline=f"bare anyio tasks {bare / MB:.1f} MB{spiff_text}",
        ratio=f"{ours / bare:.2g}x bare tasks" + (f", {ours / spiff:.2g}x Spiff" if spiff else ""),
        goal=f"<= {GOAL_MB:g} MB at {N:,}", verdict=verdict,
        numbers={"bytes": ours, "bytes_per_case": ours / n, "anyio_bytes": bare, "spiff_bytes": spiff, "n": n},
    ))
