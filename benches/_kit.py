"""What every bench shares: the report's rows, timing, and an event loop kept between rounds.

Theory of operation. A benchmark times its subject with pytest-benchmark (``bench``: the median
of ``--bench-rounds`` rounds), times its baseline here in the same test (``timed``: the same
rounds, the same median, gc collected before each round), and adds a :class:`Row` with both and
their ratio to the session's :class:`Report`, which ``conftest.py`` prints as one table at the
end. Engine benches run on a :class:`LoopHost`: one event loop for the whole module, with the
Engine open in a task on it, so a round times the work and not a loop's start-up.
"""

from __future__ import annotations

import asyncio
import gc
import platform
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = (
    "LoopHost",
    "Report",
    "Row",
    "bench",
    "compare",
    "cpu_model",
    "fmt_ratio",
    "fmt_speedup",
    "fmt_time",
    "timed",
    "verdict_at_least",
    "verdict_at_most",
)

T = TypeVar("T")


# -- formatting --------------------------------------------------------------------------------
def fmt_time(seconds: float) -> str:
    """``seconds`` in the unit that shows it best, 3 significant digits."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(value: float) -> str:
    """``12.3x``, ``1,234x``."""
    return f"{value:,.0f}x" if value >= 100 else f"{value:.3g}x"


def verdict_at_least(value: float, goal: float) -> str:
    """``met``, or how far short of the lower bound ``goal`` ``value`` is."""
    return "met" if value >= goal else f"NOT MET: {goal / value:.2g}x short"


def verdict_at_most(value: float, goal: float) -> str:
    """``met``, or how far over the upper bound ``goal`` ``value`` is."""
    return "met" if value <= goal else f"NOT MET: {value / goal:.2g}x over"


def cpu_model() -> str:
    """The CPU's model name."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- the report --------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the closing table: a measurement, its same-run baseline and their ratio."""

    group: str
    name: str
    measured: str
    baseline: str
    ratio: str
    goal: str = ""
    verdict: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)


class Report:
    """The rows of this run, in the order measured."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, benchmark: Any, row: Row) -> Row:
        """Keep ``row`` and copy it into ``benchmark.extra_info`` (pytest-benchmark's JSON)."""
        self.rows.append(row)
        if benchmark is not None:
            benchmark.extra_info.update({k: v for k, v in asdict(row).items() if k != "numbers"})
            benchmark.extra_info.update(row.numbers)
        return row

    def table(self) -> list[str]:
        """The rows as aligned text lines, with a header."""
        headers = ("group", "benchmark", "measured", "baseline (same run)", "ratio", "goal", "verdict")
        cells = [headers] + [(r.group, r.name, r.measured, r.baseline, r.ratio, r.goal, r.verdict) for r in self.rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
        out = []
        for i, line in enumerate(cells):
            out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
            if i == 0:
                out.append("  ".join("-" * w for w in widths))
        return out


# -- timing ------------------------------------------------------------------------------------
def timed(fn: Callable[[], object], rounds: int, *, setup: Callable[[], object] | None = None,
          warmup: int = 1) -> float:
    """The median seconds of ``fn()`` over ``rounds`` rounds; ``setup()`` runs untimed before each."""
    samples = []
    for i in range(warmup + rounds):
        if setup is not None:
            setup()
        gc.collect()
        t0 = time.perf_counter()
        fn()
        took = time.perf_counter() - t0
        if i >= warmup:
            samples.append(took)
    return statistics.median(samples)


def bench(benchmark: Any, fn: Callable[[], object], rounds: int, *, setup: Callable[[], object] | None = None,
          warmup: int = 1) -> float:
    """Time ``fn`` with pytest-benchmark over ``rounds`` rounds; return the median in seconds.

    Under ``--benchmark-disable`` the same rounds are timed by :func:`timed` instead.
    """
    if getattr(benchmark, "disabled", False):
        return timed(fn, rounds, setup=setup, warmup=warmup)

    def prepare() -> tuple[tuple[()], dict[str, Any]]:
        if setup is not None:
            setup()
        gc.collect()
        return (), {}

    benchmark.pedantic(fn, setup=prepare, rounds=rounds, warmup_rounds=warmup, iterations=1)
    return float(benchmark.stats.stats.median)


def compare(benchmark: Any, subject: Callable[[], object], baselines: Mapping[str, Callable[[], object]],
            rounds: int, *, warmup: int = 1) -> tuple[float, dict[str, float]]:
    """Time ``subject`` (with pytest-benchmark) and each baseline, interleaved round by round.

    Before each round of the subject, one round of every baseline runs and is timed here, so a
    load that comes and goes on a shared machine weighs on both sides alike. Returns the median
    seconds of the subject and of each baseline (warm-up rounds dropped).
    """
    samples: dict[str, list[float]] = {name: [] for name in baselines}

    def run_baselines() -> None:
        for name, fn in baselines.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
        gc.collect()

    if getattr(benchmark, "disabled", False):
        own = []
        for i in range(warmup + rounds):
            run_baselines()
            t0 = time.perf_counter()
            subject()
            if i >= warmup:
                own.append(time.perf_counter() - t0)
        median = statistics.median(own)
    else:

        def prepare() -> tuple[tuple[()], dict[str, Any]]:
            run_baselines()
            return (), {}

        benchmark.pedantic(subject, setup=prepare, rounds=rounds, warmup_rounds=warmup, iterations=1)
        median = float(benchmark.stats.stats.median)
    return median, {name: statistics.median(s[-rounds:]) for name, s in samples.items()}


def fmt_speedup(ratio: float) -> str:
    """``12x faster`` or ``1.6x slower``."""
    return f"{fmt_ratio(ratio)} faster" if ratio >= 1 else f"{fmt_ratio(1 / ratio)} slower"


# -- an event loop kept between rounds ---------------------------------------------------------
class LoopHost:
    """An event loop that lives across benchmark rounds.

    ``run(coro)`` runs a coroutine to its end; ``with host.engine() as engine:`` opens a yawlflow
    Engine in a task that holds it open across ``run`` calls, so every round reuses its compiled
    specs and runners, as a long-running program would.

    Args:
        kind: ``asyncio`` or ``uvloop``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "uvloop":
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop to its end."""
        return self.loop.run_until_complete(coro)

    @contextmanager
    def engine(self, **kwargs: Any) -> Iterator[Any]:
        """An Engine, open on this loop for the ``with`` block (a task on the loop holds it open)."""
        import yawlflow as yf

        stop = asyncio.Event()

        async def open_engine() -> tuple[Any, asyncio.Task[None]]:
            ready: asyncio.Future[Any] = self.loop.create_future()

            async def hold() -> None:
                async with yf.Engine(**kwargs) as engine:
                    ready.set_result(engine)
                    await stop.wait()

            task = self.loop.create_task(hold())
            return await ready, task

        engine, task = self.run(open_engine())
        try:
            yield engine
        finally:
            stop.set()
            self.run(asyncio.wait([task]))
            task.result()

    def close(self) -> None:
        """Close the loop."""
        self.loop.close()
