"""Durable cases: 1,000 small cases on the SQLite store against the same cases in memory, same run.

The shape is the peers' small cases (``_shapes.sequence(5)``, routing only): ``engine.start`` then
``case.result()``, 1,000 times, in a fresh Engine per round (opened and closed inside the round,
as ``test_peers.py`` does; with SQLite, on a fresh file, so opening creates it and closing
commits the last writes). Each case is three store writes — ``create``, its ``case_started``
(``engine.start`` waits for it to be on disk) and its status — since routing ends the case in
its first step.

* **one at a time**: ``await engine.start(spec)`` then ``await case.result()``, case after case:
  each start waits for its own commit, so SQLite pays one commit (with ``synchronous=FULL`` an
  fsync of the WAL) and one hand-off to the writer thread and back per case;
* **concurrent**: the 1,000 starts in one task group, then every result: commits are shared
  (group commit).

Each against ``memory://`` in the same mode, interleaved round by round; ``synchronous=FULL``
(the default) and ``NORMAL``. Goal (issue 6): SQLite within 3x of memory. The store is checked
once, untimed: every case is in it, completed, and its chain verifies.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from _kit import LoopHost, Report, Row, compare, fmt_ratio, fmt_time, verdict_at_most
from _shapes import sequence

import yawlflow as yf
from yawlflow._provenance import verify
from yawlflow._spec import from_data
from yawlflow._sqlite import SqliteStore

CASES = 1_000
GOAL = 3.0  # SQLite within 3x of memory://


def run_cases(host: LoopHost, spec: Any, store: Callable[[], str], cases: int, concurrent: bool) -> Callable[[], None]:
    """One round: a fresh Engine on ``store()``, ``cases`` cases started and run to their end."""

    async def sequential() -> None:
        async with yf.Engine(store=store()) as engine:
            for _ in range(cases):
                case = await engine.start(spec)
                assert (await case.result()).status == "completed"

    async def together() -> None:
        async with yf.Engine(store=store()) as engine:
            started: list[yf.Case] = []

            async def start() -> None:
                started.append(await engine.start(spec))

            async with anyio.create_task_group() as tg:
                for _ in range(cases):
                    tg.start_soon(start)
            for case in started:
                assert (await case.result()).status == "completed"
            assert len(started) == cases

    return lambda: host.run(together() if concurrent else sequential())


@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["one-at-a-time", "concurrent"])
@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_durable_cases_vs_memory(benchmark: Any, report: Report, rounds: int, quick: bool, default_host: LoopHost,
                                 tmp_path: Path, synchronous: str, mode: str) -> None:
    cases = 100 if quick else CASES
    spec = from_data(sequence(5))
    files = (tmp_path / f"round{i}.db" for i in itertools.count())
    opened: list[Path] = []

    def sqlite_url() -> str:  # a fresh file per round
        path = next(files)
        opened.append(path)
        return f"sqlite:///{path}" + ("" if synchronous == "FULL" else f"?synchronous={synchronous}")

    concurrent = mode == "concurrent"
    durable = run_cases(default_host, spec, sqlite_url, cases, concurrent)
    memory = run_cases(default_host, spec, lambda: "memory://", cases, concurrent)

    durable()  # checks the outcome, once, untimed: every case is on disk, completed, its chain whole
    with SqliteStore(opened[-1], readonly=True) as store:
        records = store.records()
        assert len(records) == cases and all(r.status == "completed" for r in records)
        assert len(store.events(records[-1].case)) == 1  # routing only: its case_started
    assert verify(opened[-1]) == []

    ours, base = compare(benchmark, durable, {"memory": memory}, rounds)
    mem = base["memory"]
    ratio = ours / mem
    report.add(benchmark, Row(
        group="durable",
        name=f"{cases:,} cases of a 5-task sequence, {mode}: sqlite (synchronous={synchronous}) vs memory://",
        measured=f"{cases / ours:,.0f} cases/s ({fmt_time(ours / cases)}/case)",
        baseline=f"memory:// {cases / mem:,.0f} cases/s ({fmt_time(mem / cases)}/case)",
        ratio=f"{fmt_ratio(ratio)} memory's time", goal=f"<= {GOAL:g}x", verdict=verdict_at_most(ratio, GOAL),
        numbers={"sqlite_s_per_case": ours / cases, "memory_s_per_case": mem / cases, "ratio": ratio,
                 "synchronous": synchronous, "mode": mode, "cases": cases},
    ))
