"""Ray's per-item overhead against ``process`` (issue 8), measured in the same run.

The same tiny job (add two numbers), so the time is all overhead: handing the job over,
running it in another process, bringing the value back, waking the loop.

* **one at a time**: 200 jobs, each awaited before the next is submitted (the latency one
  work item pays): ``ray`` in task mode and in actor mode against ``process`` (2 workers).
* **batch**: 200 jobs as one ``submit_many`` batch (the throughput a multiple-instance task
  sees): ``ray`` tasks against ``process``.

Ray starts once for the module on a local cluster of 2 CPUs, its temp dir under /tmp (Ray's
socket paths must stay short), usage stats off; this module is importable in its workers by
name (``PYTHONPATH``). Skipped, with the reason, where Ray is not installed.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _kit import LoopHost, Report, Row, compare, fmt_ratio, fmt_time

from yawlflow._strategies import ProcessStrategy
from yawlflow._strategy import Job

HERE = Path(__file__).resolve().parent
N = 200


def tiny(a: int, b: int) -> int:
    return a + b


# a worker imports handlers by name: this module by its plain name (benches/ is on sys.path, see
# conftest.py), whatever name pytest gave the copy it runs
TINY = importlib.import_module("test_ray").tiny


def _jobs(n: int) -> list[Job]:
    return [Job(id=i, handler="test_ray:tiny", fn=TINY, args=(i, 1)) for i in range(n)]


@pytest.fixture(scope="module")
def ray_up() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is not installed here (pip install 'yawlflow[ray]')")
    temp_dir = tempfile.mkdtemp(dir="/tmp", prefix="yf-ray-bench-")
    pythonpath = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, _node_ip_address="127.0.0.1",
                 runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
        try:
            yield ray
        finally:
            ray.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def strategies(ray_up: Any, default_host: LoopHost) -> Iterator[dict[str, Any]]:
    from yawlflow._ray import RayStrategy

    made: dict[str, Any] = {"process": ProcessStrategy(workers=2, seed=1), "ray": RayStrategy(),
                            "ray-actor": RayStrategy(mode="actor", actors=2)}
    for s in made.values():  # every worker and actor up before the first round
        default_host.run(s.submit_many(_jobs(8)))
    yield made
    for s in made.values():
        default_host.run(s.shutdown())


def _one_at_a_time(host: LoopHost, strategy: Any, n: int) -> Callable[[], None]:
    async def run() -> None:
        for job in _jobs(n):
            if await strategy.submit(job) != job.args[0] + 1:
                raise AssertionError(f"job {job.id}: wrong value")

    return lambda: host.run(run())


def _batch(host: LoopHost, strategy: Any, n: int) -> Callable[[], None]:
    async def run() -> None:
        values = await strategy.submit_many(_jobs(n))
        if values != [i + 1 for i in range(n)]:
            raise AssertionError("the batch's values are wrong")

    return lambda: host.run(run())


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", ["ray", "ray-actor"])
def test_ray_per_item_overhead_vs_process(benchmark: Any, report: Report, rounds: int, quick: bool,
                                          default_host: LoopHost, strategies: dict[str, Any], mode: str) -> None:
    n = 50 if quick else N
    ours, base = compare(benchmark, _one_at_a_time(default_host, strategies[mode], n),
                         {"process": _one_at_a_time(default_host, strategies["process"], n)}, rounds)
    ratio = ours / base["process"]
    report.add(benchmark, Row(
        group="ray", name=f"{n} tiny items one at a time: {mode} ({'tasks' if mode == 'ray' else '2 actors'}) "
                          "vs process",
        measured=f"{fmt_time(ours / n)} an item", baseline=f"process {fmt_time(base['process'] / n)} an item",
        ratio=f"{fmt_ratio(ratio)} process's per-item cost", goal="", verdict="measured (no goal)",
        numbers={"ours_s": ours, "process_s": base["process"], "ratio": ratio, "items": n},
    ))


@pytest.mark.timeout(600)
def test_ray_batch_vs_process(benchmark: Any, report: Report, rounds: int, quick: bool, default_host: LoopHost,
                              strategies: dict[str, Any]) -> None:
    n = 50 if quick else N
    ours, base = compare(benchmark, _batch(default_host, strategies["ray"], n),
                         {"process": _batch(default_host, strategies["process"], n)}, rounds)
    ratio = ours / base["process"]
    report.add(benchmark, Row(
        group="ray", name=f"{n} tiny items as one batch: ray tasks vs process",
        measured=f"{fmt_time(ours)} ({fmt_time(ours / n)} an item)",
        baseline=f"process {fmt_time(base['process'])} ({fmt_time(base['process'] / n)} an item)",
        ratio=f"{fmt_ratio(ratio)} process's time", goal="", verdict="measured (no goal)",
        numbers={"ours_s": ours, "process_s": base["process"], "ratio": ratio, "items": n},
    ))
