"""The batch kernel: ``Marking.fire_routing`` firing whole routing-only nets in one call.

Subject: the compiled twin firing every task of a 10,000-task routing net (the runner's own
RoutingProgram for it, so exactly what ``NetRunner`` hands the kernel), without trace records;
baseline: the pure-Python twin on the same program, timed in the same run, interleaved. The
goal of issue 5 for routing-only nets in batch mode is >= 1,000,000 firings per second, and the
compiled kernel >= 20x its twin. ``test_engine.py`` measures the same nets through the whole
``NetRunner.start`` (trace records included).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from _kit import Report, Row, compare, fmt_speedup, fmt_time, verdict_at_least
from _shapes import parallel, sequence

from yawlflow import _runner as runner_module
from yawlflow._compiled import compile_spec
from yawlflow._runner import NetRunner
from yawlflow._spec import from_data

FIRING_GOAL = 1_000_000
TWIN_GOAL = 20.0
SHAPES: dict[str, Callable[[int], dict[str, Any]]] = {"sequence": sequence, "parallel": parallel}


def _twin(name: str) -> Any:
    try:
        return importlib.import_module(f"yawlflow._hotpath._marking_{name}")
    except ImportError as exc:
        pytest.skip(f"the compiled kernels are not built ({exc}): YAWLFLOW_CYTHON=1 pip install -e .")


def _program(twin: Any, net: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(runner_module, "RoutingProgram", twin.RoutingProgram)
        patch.setattr(runner_module, "Worklist", twin.Worklist)
        return NetRunner(net)._program


@pytest.mark.parametrize("shape", list(SHAPES))
def test_fire_routing_compiled_vs_pure(benchmark: Any, report: Report, rounds: int, quick: bool,
                                       monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    cy, py = _twin("cy"), _twin("py")
    n = 2_000 if quick else 10_000
    net = compile_spec(from_data(SHAPES[shape](n))).net("main")
    progs = {twin: _program(twin, net, monkeypatch) for twin in (cy, py)}

    def fire(twin: Any) -> Callable[[], None]:
        prog = progs[twin]

        def run() -> None:
            m = twin.Marking(net.kernel)
            m.add(0, 1)  # the input condition, as CaseStarted marks it
            wl = twin.Worklist(net.n_tasks)
            for t in net.consumers[0]:
                wl.touch(t)
            fired, why, _ = m.fire_routing(prog, wl, 10 * n)
            assert len(fired) == net.n_tasks and why == twin.FIRE_END, (len(fired), why)

        return run

    total, base = compare(benchmark, fire(cy), {"pure": fire(py)}, rounds)
    per, pure = total / net.n_tasks, base["pure"] / net.n_tasks
    rate, ratio = 1 / per, pure / per
    report.add(benchmark, Row(
        group="kernels", name=f"Marking.fire_routing, {shape} {net.n_tasks:,} tasks (batch, compiled)",
        measured=f"{rate:,.0f} firings/s ({fmt_time(per)})", baseline=f"pure twin {1 / pure:,.0f}/s",
        ratio=f"{fmt_speedup(ratio)} ({verdict_at_least(ratio, TWIN_GOAL)} >= {TWIN_GOAL:g}x)",
        goal=f">= {FIRING_GOAL:,} firings/s", verdict=verdict_at_least(rate, FIRING_GOAL),
        numbers={"firings_per_s": rate, "s_per_firing": per, "pure_s_per_firing": pure, "speedup": ratio},
    ))
