"""The work-stealing strategies (issue 8) against ``concurrent.futures``, measured in the same run.

* **fork-join**: 256 CPU-bound jobs of ~1 ms (a pure-Python loop, so threads share one GIL)
  submitted as one batch, ``submit_many``, on the ``thread`` and ``process`` strategies with 2
  workers, against the same jobs on a ``ThreadPoolExecutor`` / ``ProcessPoolExecutor`` (spawn)
  of 2 workers, awaited from the same loop (``loop.run_in_executor`` and ``gather``). The row
  gives the ratio and how many jobs were stolen per round.
* **tiny items**: 10,000 jobs that add two numbers, ``thread`` strategy vs ``ThreadPoolExecutor``
  (issue 8's goal: >= 2x its throughput). The pool wakes the loop once per batch, the executor
  once per job.
* **MI 64**: a multiple-instance task's 64 CPU-bound instances (~5 ms each): ``process`` vs
  ``inline`` (quick, one after another in the loop) and ``thread``; the speed-up with 2 workers
  and the projection for N cores.
* **scaling** (``pytest benches/test_steal.py --benchmark-only -k scaling``): the fork-join on
  1, 2, 4, 8 and 16 workers against 1 worker of the same strategy; and through the engine, a
  case whose multiple-instance task runs 64 CPU-bound instances on ``process`` (its instances
  reach the pool as one batch) with 2 to 16 workers against 1. This VM has 2 cores, so
  beyond 2 workers the rows measure overhead, not speed-up; run it on a bigger machine for the
  curve.

Pools are created once per module and warmed up (a round is not charged a process start).
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pytest
from _kit import LoopHost, Report, Row, compare, fmt_ratio, fmt_speedup, fmt_time, verdict_at_least

from yawlflow._strategies import InlineStrategy, ProcessStrategy, ThreadStrategy
from yawlflow._strategy import Job

# YAWLFLOW_BENCH_WORK=10 makes every CPU-bound job 10 times longer (for the scaling rows on a
# machine with many cores, where ~1 ms jobs measure the per-job overhead as much as the speed-up)
SCALE = float(os.environ.get("YAWLFLOW_BENCH_WORK", "1"))
WORK = int(7_000 * SCALE)  # one job: ~1 ms of pure-Python arithmetic on this machine
JOBS = 256
TINY = 10_000
TINY_GOAL = 2.0
MI = 64
MI_WORK = int(35_000 * SCALE)  # ~5 ms
CPUS = os.cpu_count() or 1


def burn(n: int) -> int:
    """CPU work that holds the GIL: a sum of ``n`` squares."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def tiny(a: int, b: int) -> int:
    return a + b


def burn_item(data: dict[str, Any]) -> dict[str, Any]:
    """An instance of the engine benchmark's multiple-instance task: ~5 ms of CPU."""
    return {"sum": burn(MI_WORK)}


# a worker process imports handlers by name: this module by its plain name (benches/ is on
# sys.path, see conftest.py), whatever name pytest gave the copy it runs
_by_name = importlib.import_module("test_steal")
BURN, TINY_FN = _by_name.burn, _by_name.tiny


def jobs(fn: Callable[..., Any], n: int, *args: Any) -> list[Job]:
    return [Job(id=i, handler=f"test_steal:{fn.__name__}", fn=fn, args=args) for i in range(n)]


def executor_batch(host: LoopHost, executor: Executor, fn: Callable[..., Any], n: int,
                   *args: Any) -> Callable[[], None]:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(executor, fn, *args) for _ in range(n)))

    return lambda: host.run(run())


def strategy_batch(host: LoopHost, strategy: Any, batch: list[Job]) -> Callable[[], None]:
    async def run() -> None:
        await strategy.submit_many(batch)

    return lambda: host.run(run())


def _close(host: LoopHost, strategy: Any) -> None:
    host.run(strategy.shutdown())


@pytest.fixture(scope="module")
def pools(default_host: LoopHost) -> Iterator[dict[str, Any]]:
    """The 2-worker pools of this module, warm."""
    made: dict[str, Any] = {
        "thread": ThreadStrategy(workers=2, seed=1),
        "process": ProcessStrategy(workers=2, seed=1),
        "tpe": ThreadPoolExecutor(max_workers=2),
        "ppe": ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")),
    }
    strategy_batch(default_host, made["process"], jobs(BURN, 4, 10))()  # both children up
    executor_batch(default_host, made["ppe"], BURN, 4, 10)()
    yield made
    _close(default_host, made["thread"])
    _close(default_host, made["process"])
    made["tpe"].shutdown()
    made["ppe"].shutdown()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_fork_join_vs_concurrent_futures(benchmark: Any, report: Report, rounds: int, quick: bool,
                                         default_host: LoopHost, pools: dict[str, Any], kind: str) -> None:
    n = 64 if quick else JOBS
    strategy = pools[kind]
    executor = pools["tpe" if kind == "thread" else "ppe"]
    stolen0 = strategy.metrics().stolen
    ours, base = compare(benchmark, strategy_batch(default_host, strategy, jobs(BURN, n, WORK)),
                         {"executor": executor_batch(default_host, executor, BURN, n, WORK)}, rounds)
    stolen = (strategy.metrics().stolen - stolen0) / (rounds + 1)  # warm-up round included
    ratio = base["executor"] / ours
    name = type(executor).__name__
    report.add(benchmark, Row(
        group="strategies", name=f"fork-join {n} x ~1 ms CPU jobs, 2 workers: {kind} strategy vs {name}",
        measured=f"{fmt_time(ours)} ({fmt_time(ours / n)}/job), {stolen:.0f} stolen/round",
        baseline=f"{name} {fmt_time(base['executor'])}", ratio=fmt_speedup(ratio), goal=">= 1x",
        verdict=verdict_at_least(ratio, 1.0),
        numbers={"ours_s": ours, "baseline_s": base["executor"], "ratio": ratio, "stolen_per_round": stolen,
                 "jobs": n, "workers": 2, "cpus": CPUS},
    ))


@pytest.mark.timeout(900)
def test_tiny_items_thread_strategy_vs_thread_pool_executor(benchmark: Any, report: Report, rounds: int,
                                                            quick: bool, default_host: LoopHost,
                                                            pools: dict[str, Any]) -> None:
    n = 2_000 if quick else TINY
    strategy = pools["thread"]
    ours, base = compare(benchmark, strategy_batch(default_host, strategy, jobs(TINY_FN, n, 1, 2)),
                         {"tpe": executor_batch(default_host, pools["tpe"], TINY_FN, n, 1, 2)}, rounds)
    ratio = base["tpe"] / ours
    report.add(benchmark, Row(
        group="strategies", name=f"{n:,} tiny items, 2 workers: thread strategy vs ThreadPoolExecutor",
        measured=f"{n / ours:,.0f} items/s", baseline=f"ThreadPoolExecutor {n / base['tpe']:,.0f} items/s",
        ratio=fmt_speedup(ratio), goal=f">= {TINY_GOAL:g}x", verdict=verdict_at_least(ratio, TINY_GOAL),
        numbers={"ours_s": ours, "baseline_s": base["tpe"], "ratio": ratio, "items": n},
    ))


@pytest.mark.timeout(900)
def test_mi_64_cpu_bound_instances_process_vs_thread_vs_inline(benchmark: Any, report: Report, rounds: int,
                                                                quick: bool, default_host: LoopHost,
                                                                pools: dict[str, Any]) -> None:
    n = 16 if quick else MI
    inline = InlineStrategy(quick=["test_steal:burn"])
    batch = jobs(BURN, n, MI_WORK)
    ours, base = compare(benchmark, strategy_batch(default_host, pools["process"], batch),
                         {"inline": strategy_batch(default_host, inline, batch),
                          "thread": strategy_batch(default_host, pools["thread"], batch)}, rounds)
    speedup = base["inline"] / ours
    report.add(benchmark, Row(
        group="strategies", name=f"MI task, {n} CPU-bound instances (~5 ms), 2 workers: process vs inline",
        measured=f"process {fmt_time(ours)}",
        baseline=f"inline {fmt_time(base['inline'])}, thread {fmt_time(base['thread'])}",
        ratio=f"{fmt_ratio(speedup)} inline's speed (thread: {fmt_ratio(base['inline'] / base['thread'])})",
        goal=f"~{min(2, CPUS)}x on {CPUS} CPUs",
        verdict=f"N cores: ~{speedup / 2:.2f} x N (efficiency {speedup / 2:.0%} per worker)",
        numbers={"process_s": ours, "inline_s": base["inline"], "thread_s": base["thread"], "speedup": speedup,
                 "instances": n, "cpus": CPUS},
    ))


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("workers", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_scaling(benchmark: Any, report: Report, rounds: int, quick: bool, default_host: LoopHost,
                 kind: str, workers: int) -> None:
    n = 64 if quick else JOBS
    make = ThreadStrategy if kind == "thread" else ProcessStrategy
    wide, one = make(workers=workers, seed=1), make(workers=1, seed=1)
    try:
        batch = jobs(BURN, n, WORK)
        for s in (wide, one):  # every worker up (a process starts in ~0.3 s)
            strategy_batch(default_host, s, jobs(BURN, 4 * workers, 10))()
        ours, base = compare(benchmark, strategy_batch(default_host, wide, batch),
                             {"one": strategy_batch(default_host, one, batch)}, rounds)
        stolen = wide.metrics().stolen
    finally:
        _close(default_host, wide)
        _close(default_host, one)
    speedup = base["one"] / ours
    report.add(benchmark, Row(
        group="scaling", name=f"fork-join {n} x ~{SCALE:g} ms CPU jobs: {kind}, {workers} workers ({CPUS} CPUs here)",
        measured=f"{fmt_time(ours)}, {stolen} stolen in all", baseline=f"1 worker {fmt_time(base['one'])}",
        ratio=f"{fmt_ratio(speedup)} 1 worker's speed", goal="", verdict="",
        numbers={"ours_s": ours, "one_worker_s": base["one"], "speedup": speedup, "workers": workers,
                 "kind": kind, "cpus": CPUS, "stolen": stolen},
    ))


ENGINE_MI = """
yawlflow: 1
id: mi_burn
nets:
  main:
    input: start
    output: end
    tasks:
      a: {{run: "test_steal:burn_item", strategy: process, instances: {{count: {n}}}, flows: [end]}}
"""


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("workers", [2, 4, 8, 16])
def test_engine_mi_scaling(benchmark: Any, report: Report, rounds: int, quick: bool, default_host: LoopHost,
                           workers: int) -> None:
    import yawlflow as yf

    n = 16 if quick else MI
    spec = yf.loads(ENGINE_MI.format(n=n))

    def config(w: int) -> dict[str, Any]:
        return {"handlers": {"allow": ["test_steal"]}, "execution": {"process": {"workers": w}}}

    def one_case(engine: Any) -> Callable[[], None]:
        async def run() -> None:
            result = await (await engine.start(spec)).result()
            if result.status != "completed":
                raise AssertionError(f"the benchmark's case ended {result.status}")

        return lambda: default_host.run(run())

    with default_host.engine(config=config(workers)) as wide, default_host.engine(config=config(1)) as one:
        for run in (one_case(wide), one_case(one)):  # every worker process up
            run()
        ours, base = compare(benchmark, one_case(wide), {"one": one_case(one)}, rounds)
        m = wide.metrics()["strategies"]["process"]
    speedup = base["one"] / ours
    report.add(benchmark, Row(
        group="scaling", name=f"engine: MI task of {n} CPU-bound instances (~{5 * SCALE:g} ms), process, "
                              f"{workers} workers ({CPUS} CPUs here)",
        measured=f"{fmt_time(ours)} a case, {m['batches']} batches, {m['stolen']} stolen in all",
        baseline=f"1 worker {fmt_time(base['one'])}",
        ratio=f"{fmt_ratio(speedup)} 1 worker's speed", goal="", verdict=f"efficiency {speedup / workers:.0%}",
        numbers={"ours_s": ours, "one_worker_s": base["one"], "speedup": speedup, "workers": workers,
                 "cpus": CPUS, "batches": m["batches"], "stolen": m["stolen"]},
    ))
