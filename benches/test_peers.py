"""yawlflow against SpiffWorkflow 3.x on the same nets, in the same run.

Shapes (``_shapes.py``, BPMN from the templates in ``data/``): a sequence of 1,000 tasks, a
parallel split/join of 1,000 branches, an exclusive-choice loop of 1,000 iterations, and 1,000
small cases of a 5-task sequence. Routing-only on both sides (see ``_shapes``).

* yawlflow: ``engine.start(spec)`` then ``case.result()`` in an Engine kept open on one uvloop
  loop; the spec is compiled once (the first round, not timed), as a long-running program would.
  The small cases run in a fresh Engine per round (opened and closed inside the round), since an
  in-memory engine keeps every finished case and the garbage collector's passes grow with them.
* SpiffWorkflow: ``BpmnWorkflow(spec)`` then ``run_all(halt_on_manual=False)`` over BPMN
  ``task`` elements. ``do_engine_steps`` (which scans every READY task per pass, and needs script
  tasks instead of ``task`` elements) was 2-6x slower on 100- to 300-task versions of the
  sequence and the loop, and ~15 % faster on the 200-branch parallel shape, a difference far
  inside that shape's margin over its goal (README). Parsing is done once, not timed.

SpiffWorkflow grows with the square of the net (or worse), so a 1,000-task run takes seconds to
a minute: it gets one round when a round takes over half a second, ``--bench-rounds`` otherwise.
At 10,000 tasks it would take hours, so the 10,000 shapes run on yawlflow alone, against its
own 1,000 shapes, to show the per-step cost stays flat. Skipped, with the reason, when
SpiffWorkflow is not installed (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pytest
from _kit import LoopHost, Report, Row, bench, compare, fmt_ratio, fmt_time, verdict_at_least, verdict_at_most
from _shapes import bpmn_loop, bpmn_parallel, bpmn_sequence, loop, parallel, sequence

import yawlflow as yf
from yawlflow._spec import from_data

try:
    SPIFF_VERSION = version("SpiffWorkflow")
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
except (ImportError, PackageNotFoundError):
    pytest.skip(
        "SpiffWorkflow is not installed, so there is no peer to compare with: "
        "pip install -e '.[bench]' (SpiffWorkflow>=3)", allow_module_level=True,
    )
if int(SPIFF_VERSION.split(".")[0]) < 3:
    pytest.skip(f"SpiffWorkflow {SPIFF_VERSION} is installed; these benches need 3.x: pip install -e '.[bench]'",
                allow_module_level=True)

N = 1_000
SMALL_CASES = 1_000
LARGE_GOAL = 100.0  # >= 100x SpiffWorkflow on every 1,000-task shape
SMALL_GOAL = 10.0  # >= 10x on 1,000 small cases
FLAT_GOAL = 1.5
SLOW_ROUND = 0.5  # seconds: a SpiffWorkflow run slower than this gets one round

SHAPES: dict[str, tuple[Any, Any, dict[str, Any]]] = {
    # name: (yawlflow spec data for n, BPMN for n, initial data)
    "sequence": (sequence, bpmn_sequence, {}),
    "parallel": (parallel, bpmn_parallel, {}),
    "xor-loop": (loop, bpmn_loop, {"i": 0}),
}


@contextmanager
def deep_recursion(limit: int = 20_000) -> Iterator[None]:
    """SpiffWorkflow's parser recurses once per task of a sequence: 1,000 tasks pass Python's
    default limit of 1,000 frames."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def spiff_spec(xml: str) -> Any:
    parser = BpmnParser()
    parser.add_bpmn_str(xml.encode("utf-8"))
    with deep_recursion():
        return parser.get_spec("bench")


def spiff_run(spec: Any, data: dict[str, Any]) -> Any:
    with deep_recursion():
        workflow = BpmnWorkflow(spec)
        workflow.task_tree.data.update(data)
        workflow.run_all(halt_on_manual=False)
    return workflow


def spiff_time(fn: Any, rounds: int) -> tuple[float, int]:
    """Median seconds of ``fn`` and the rounds run: one round if the first is slow."""
    samples = []
    t0 = time.perf_counter()
    fn()
    samples.append(time.perf_counter() - t0)
    if samples[0] < SLOW_ROUND:
        samples.clear()
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    samples.sort()
    return samples[len(samples) // 2], len(samples)


@pytest.fixture
def engine(default_host: LoopHost) -> Iterator[Any]:
    """An Engine for one test: what it keeps of earlier cases (the in-memory store) is its own."""
    with default_host.engine() as eng:
        yield eng


def _yawlflow_case(host: LoopHost, engine: Any, spec: Any, data: dict[str, Any]) -> Any:
    async def one() -> Any:
        case = await engine.start(spec, data)
        return await case.result()

    return lambda: host.run(one())


@pytest.mark.timeout(900)
@pytest.mark.parametrize("shape", list(SHAPES))
def test_large_shape_vs_spiffworkflow(benchmark: Any, report: Report, rounds: int, quick: bool,
                                      default_host: LoopHost, engine: Any, shape: str) -> None:
    n = 100 if quick else N
    make_spec, make_bpmn, data = SHAPES[shape]
    spec, bpmn = from_data(make_spec(n)), spiff_spec(make_bpmn(n))
    run_yawlflow = _yawlflow_case(default_host, engine, spec, data)
    result = run_yawlflow()  # compiles the spec once; checks the outcome
    assert result.status == "completed" and result.data.get("i", n) == n, result
    workflow = spiff_run(bpmn, data)
    assert workflow.completed and workflow.data.get("i", n) == n, workflow.data

    spiff, spiff_rounds = spiff_time(lambda: spiff_run(bpmn, data), rounds)
    ours = bench(benchmark, run_yawlflow, rounds)
    ratio = spiff / ours
    report.add(benchmark, Row(
        group="peers", name=f"{shape}, {n:,} tasks: yawlflow vs SpiffWorkflow {SPIFF_VERSION}",
        measured=f"{fmt_time(ours)} ({fmt_time(ours / n)}/task)",
        baseline=f"Spiff {fmt_time(spiff)} ({fmt_time(spiff / n)}/task, {spiff_rounds} round(s))",
        ratio=f"{fmt_ratio(ratio)} faster", goal=f">= {LARGE_GOAL:g}x", verdict=verdict_at_least(ratio, LARGE_GOAL),
        numbers={"yawlflow_s": ours, "spiff_s": spiff, "speedup": ratio, "n": n, "spiff_rounds": spiff_rounds},
    ))


@pytest.mark.timeout(600)
def test_small_cases_vs_spiffworkflow(benchmark: Any, report: Report, rounds: int, quick: bool,
                                      default_host: LoopHost) -> None:
    cases = 100 if quick else SMALL_CASES
    spec, bpmn = from_data(sequence(5)), spiff_spec(bpmn_sequence(5))

    async def many() -> None:  # a fresh engine per round: it opens, runs the cases, closes
        async with yf.Engine() as engine:
            started = [await engine.start(spec) for _ in range(cases)]
            for case in started:
                assert (await case.result()).status == "completed"

    def spiff_many() -> None:
        for _ in range(cases):
            assert spiff_run(bpmn, {}).completed

    ours, base = compare(benchmark, lambda: default_host.run(many()), {"spiff": spiff_many}, rounds)
    spiff = base["spiff"]
    ratio = spiff / ours
    report.add(benchmark, Row(
        group="peers", name=f"{cases:,} cases of a 5-task sequence: yawlflow vs SpiffWorkflow {SPIFF_VERSION}",
        measured=f"{fmt_time(ours / cases)}/case ({fmt_time(ours / cases / 5)}/task)",
        baseline=f"Spiff {fmt_time(spiff / cases)}/case ({fmt_time(spiff / cases / 5)}/task)",
        ratio=f"{fmt_ratio(ratio)} faster", goal=f">= {SMALL_GOAL:g}x", verdict=verdict_at_least(ratio, SMALL_GOAL),
        numbers={"yawlflow_s_per_case": ours / cases, "spiff_s_per_case": spiff / cases, "speedup": ratio},
    ))


@pytest.mark.parametrize("shape", list(SHAPES))
def test_ten_thousand_stays_flat(benchmark: Any, report: Report, rounds: int, quick: bool,
                                 default_host: LoopHost, engine: Any, shape: str) -> None:
    small, large = (100, 2_000) if quick else (N, 10 * N)
    make_spec, _, data = SHAPES[shape]
    run_small = _yawlflow_case(default_host, engine, from_data(make_spec(small)), data)
    run_large = _yawlflow_case(default_host, engine, from_data(make_spec(large)), data)
    run_small(), run_large()  # compile both
    total, base = compare(benchmark, run_large, {"small": run_small}, rounds)
    per_large, per_small = total / large, base["small"] / small
    growth = per_large / per_small
    report.add(benchmark, Row(
        group="peers", name=f"{shape}, {large:,} tasks (yawlflow; Spiff would take hours)",
        measured=f"{fmt_time(per_large)}/task", baseline=f"{small:,} tasks {fmt_time(per_small)}/task",
        ratio=f"{growth:.2f}x per task", goal=f"<= {FLAT_GOAL}x", verdict=verdict_at_most(growth, FLAT_GOAL),
        numbers={"s_per_task": per_large, "small_s_per_task": per_small, "growth": growth},
    ))
