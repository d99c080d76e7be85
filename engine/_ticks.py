"""Ticks per operation: the measurement behind ``yawlflow.testing``'s tick certification.

Theory of operation. An operation too quick to time on its own is timed in *batches*: read a
counter, call the operation ``n`` times (one C loop in the compiled driver, no Python frame
between calls), read the counter again; ticks per operation is the difference divided by the
operations done. A round is sized to last at least ``TARGET_ROUND_NS`` (200 µs), so the two
counter reads (tens of ticks) weigh under 0.1 %, and each measurement takes the median of
``rounds`` rounds, with the garbage collector off, after ``warmup`` rounds that are discarded.
Nothing is subtracted: the call into the operation is part of what it costs its caller.

The counter, in order of preference:

1. ``rdtsc``: the CPU's time-stamp counter, read inline by the compiled driver
   (``yawlflow._hotpath._ticks_cy``) on x86-64. Its frequency is measured against
   ``time.perf_counter_ns`` (the median of five 10 ms windows) to report nanoseconds too.
2. ``perf_counter_ns``: everywhere else (another architecture, the pure-Python build,
   ``YAWLFLOW_PURE_PYTHON=1``, or ``YAWLFLOW_TICKS=perf_counter`` to force it). Ticks are then
   nanoseconds times the CPU's nominal frequency as the OS reports it (Linux:
   ``/sys/devices/system/cpu/cpu0/tsc_freq_khz``, cpufreq ``base_frequency``, ``cpu MHz`` of
   ``/proc/cpuinfo``, cpufreq ``cpuinfo_max_freq``); where none is known, one tick is one
   nanosecond and the unit says ``ns``. These ticks are an estimate: the certificate says which.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

__all__ = (
    "CERTIFICATE_FORMAT",
    "TARGET_ROUND_NS",
    "Counter",
    "TickMeter",
    "TickStats",
    "certificate",
    "counter",
    "describe_machine",
    "driver",
    "measure",
)

if TYPE_CHECKING:
    from ._hotpath import _ticks_py as _driver
else:
    try:
        if os.environ.get("YAWLFLOW_PURE_PYTHON") == "1":
            raise ImportError("YAWLFLOW_PURE_PYTHON=1")
        from ._hotpath import _ticks_cy as _driver
    except ImportError:
        from ._hotpath import _ticks_py as _driver

driver = _driver
"""The batch drivers in use: ``yawlflow._hotpath._ticks_cy`` (compiled) or ``_ticks_py``."""

CERTIFICATE_FORMAT = "yawlflow-tick-certificate/1"
_MAX_BATCH = 1 << 22
TARGET_ROUND_NS = 200_000
"""A round lasts at least this long (nanoseconds), so the counter reads weigh under 0.1 %."""


@dataclass(frozen=True)
class Counter:
    """The counter measurements read, and how its ticks relate to time.

    Attributes:
        source: ``rdtsc`` or ``perf_counter_ns``.
        unit: ``tick`` (CPU ticks, measured or estimated) or ``ns`` (no frequency known).
        hz: ticks per second.
        hz_source: how ``hz`` was found.
        driver: ``compiled`` (C batch loop) or ``python`` (interpreter loop).
    """

    source: str
    unit: str
    hz: float
    hz_source: str
    driver: str

    def read(self) -> Callable[[], int] | None:
        """The clock to hand the drivers: ``None`` means their inline ``rdtsc``."""
        return None if self.source == "rdtsc" else time.perf_counter_ns

    def to_ticks(self, raw: int) -> float:
        """A counter difference, in ticks."""
        return float(raw) if self.source == "rdtsc" else raw * self.hz / 1e9


_COUNTER: Counter | None = None


def counter() -> Counter:
    """The counter this process measures with (chosen and calibrated once)."""
    global _COUNTER
    if _COUNTER is None:
        _COUNTER = _choose_counter()
    return _COUNTER


def _choose_counter() -> Counter:
    driver = "compiled" if _driver.__name__.endswith("_cy") else "python"
    forced = os.environ.get("YAWLFLOW_TICKS", "")
    if _driver.RDTSC and forced != "perf_counter":
        return Counter("rdtsc", "tick", _calibrate_tsc(), "rdtsc against perf_counter_ns, median of 5 x 10 ms",
                       driver)
    hz, how = _nominal_hz()
    if hz is None:
        return Counter("perf_counter_ns", "ns", 1e9, "no CPU frequency known: 1 tick = 1 ns", driver)
    return Counter("perf_counter_ns", "tick", hz, f"perf_counter_ns x nominal frequency ({how})", driver)


def _calibrate_tsc() -> float:
    rates = []
    for _ in range(5):
        n0, c0 = time.perf_counter_ns(), _driver.rdtsc()
        while time.perf_counter_ns() - n0 < 10_000_000:
            pass
        n1, c1 = time.perf_counter_ns(), _driver.rdtsc()
        rates.append((c1 - c0) * 1e9 / (n1 - n0))
    return statistics.median(rates)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _cpuinfo_field(name: str) -> str | None:
    text = _read("/proc/cpuinfo")
    if text is None:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == name:
            return value.strip()
    return None


def _nominal_hz() -> tuple[float | None, str]:
    for path, scale in (
        ("/sys/devices/system/cpu/cpu0/tsc_freq_khz", 1e3),
        ("/sys/devices/system/cpu/cpu0/cpufreq/base_frequency", 1e3),
    ):
        text = _read(path)
        if text and text.strip().isdigit():
            return int(text.strip()) * scale, path
    mhz = _cpuinfo_field("cpu MHz")
    if mhz:
        try:
            return float(mhz) * 1e6, "/proc/cpuinfo cpu MHz"
        except ValueError:
            pass
    text = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if text and text.strip().isdigit():
        return int(text.strip()) * 1e3, "cpufreq cpuinfo_max_freq"
    return None, "none"


@dataclass
class TickStats:
    """One measurement: ticks per operation over ``rounds`` rounds.

    Attributes:
        name: what was measured (a kernel's name).
        median: the median ticks per operation.
        p10: the 10th percentile.
        p90: the 90th percentile.
        min: the fastest round.
        max: the slowest round.
        rounds: rounds kept (after warm-up).
        ops_per_round: operations in each round.
        unit: ``tick`` or ``ns`` (see :class:`Counter`).
        source: the counter.
        hz: ticks per second.
        driver: ``compiled`` or ``python`` batch loop.
        note: what the number includes, in words.
        samples: ticks per operation of each round.
        budget: the test's ``tick_budget``, once the plugin has checked it.
        test: the test that measured it, once the plugin has recorded it.
    """

    name: str
    median: float
    p10: float
    p90: float
    min: float
    max: float
    rounds: int
    ops_per_round: int
    unit: str
    source: str
    hz: float
    driver: str
    note: str = ""
    samples: list[float] = field(default_factory=list, repr=False)
    budget: float | None = None
    test: str | None = None

    @property
    def ns_per_op(self) -> float:
        """The median in nanoseconds."""
        return self.median * 1e9 / self.hz

    @property
    def within_budget(self) -> bool | None:
        """Whether the median is within the budget (``None``: no budget)."""
        return None if self.budget is None else self.median <= self.budget

    def describe(self) -> str:
        """One line: median, spread, rounds, counter."""
        ghz = self.hz / 1e9
        return (
            f"{self.name}: median {self.median:.1f} {self.unit}s/op (p10-p90 {self.p10:.1f}-{self.p90:.1f}, "
            f"{self.rounds} rounds x {self.ops_per_round:,} ops, {self.source} at {ghz:.2f} GHz, "
            f"{self.driver} batch loop; {self.ns_per_op:.2f} ns/op)"
        )

    def as_json(self) -> dict[str, Any]:
        """The certificate's entry (without the raw samples)."""
        out = asdict(self)
        del out["samples"]
        out["ns_per_op"] = self.ns_per_op
        out["within_budget"] = self.within_budget
        out["spread_pct"] = (self.p90 - self.p10) / self.median * 100 if self.median else 0.0
        return out


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def measure(
    fn: Callable[..., object],
    *,
    args: Iterable[Any] | None = None,
    ops: int = 1,
    rounds: int = 21,
    warmup: int = 2,
    name: str | None = None,
    note: str = "",
    target_ns: int = TARGET_ROUND_NS,
) -> TickStats:
    """Measure ticks per operation of ``fn``, amortised over batches.

    Args:
        fn: the operation. Called as ``fn(a)`` for each ``a`` in ``args``, or as ``fn()``.
        args: one argument per call; the batch is ``args`` (repeated until a round is long enough).
        ops: operations one call does (a batch kernel over 1,000 tasks: ``ops=1000``).
        rounds: rounds to keep; the result is their median.
        warmup: rounds run first and thrown away.
        name: what to call it in messages and the certificate (default: ``fn``'s qualified name).
        note: what the number includes, for the certificate.
        target_ns: the shortest round, in nanoseconds.

    Raises:
        ValueError: ``ops`` or ``rounds`` is not positive, or ``args`` is empty.
    """
    if ops < 1 or rounds < 1:
        raise ValueError(f"ops and rounds must be positive, not ops={ops}, rounds={rounds}")
    c = counter()
    clock = c.read()
    label = name or getattr(fn, "__qualname__", None) or repr(fn)
    if args is not None:
        base = tuple(args)
        if not base:
            raise ValueError("args is empty: give at least one argument per batch")

        def run(k: int) -> int:
            return _driver.run_each(fn, base * k, clock)

        unit_ops = len(base) * ops
        cap = max(1, _MAX_BATCH // len(base))  # the batch is a tuple: keep it under ~32 MB
    else:

        def run(k: int) -> int:
            return _driver.run_repeat(fn, k, clock)

        unit_ops = ops
        cap = _MAX_BATCH
    enabled = gc.isenabled()
    gc.disable()
    try:
        k = _batch_size(run, c, target_ns, cap)
        for _ in range(warmup):
            run(k)
        samples = [c.to_ticks(run(k)) / (k * unit_ops) for _ in range(rounds)]
    finally:
        if enabled:
            gc.enable()
    ordered = sorted(samples)
    return TickStats(
        name=label, median=statistics.median(ordered), p10=_quantile(ordered, 0.1), p90=_quantile(ordered, 0.9),
        min=ordered[0], max=ordered[-1], rounds=rounds, ops_per_round=k * unit_ops, unit=c.unit, source=c.source,
        hz=c.hz, driver=c.driver, note=note, samples=samples,
    )


def _batch_size(run: Callable[[int], int], c: Counter, target_ns: int, cap: int) -> int:
    """The repetitions (at most ``cap``) that make a round last at least ``target_ns``."""
    target = target_ns * c.hz / 1e9  # in ticks
    k = 1
    while True:
        took = c.to_ticks(run(k))
        if took >= target or k >= cap:
            return k
        k = min(cap, k * 2 if took <= 0 else max(k * 2, int(k * target / took * 1.2) + 1))


class TickMeter:
    """What the ``ticks`` fixture hands a test: call it to measure; it keeps every result.

    Args:
        test: the test's node id, recorded with each result.
    """

    def __init__(self, test: str | None = None) -> None:
        self.test = test
        self.results: list[TickStats] = []

    def __call__(
        self,
        fn: Callable[..., object],
        *,
        args: Iterable[Any] | None = None,
        ops: int = 1,
        rounds: int = 21,
        warmup: int = 2,
        name: str | None = None,
        note: str = "",
    ) -> TickStats:
        """Measure ``fn`` (see :func:`measure`) and keep the result for the budget and certificate."""
        stats = measure(fn, args=args, ops=ops, rounds=rounds, warmup=warmup, name=name, note=note)
        stats.test = self.test
        self.results.append(stats)
        return stats

    @property
    def counter(self) -> Counter:
        """The counter in use."""
        return counter()


# -- the certificate ----------------------------------------------------------------------------
def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _cython_from_hex(value: int) -> str | None:
    if not value:
        return None
    major, minor, micro = (value >> 24) & 0xFF, (value >> 16) & 0xFF, (value >> 8) & 0xFF
    level, serial = (value >> 4) & 0xF, value & 0xF
    tail = {0xA: f"a{serial}", 0xB: f"b{serial}", 0xC: f"rc{serial}"}.get(level, "")
    return f"{major}.{minor}.{micro}{tail}"


def _cpu_model() -> str:
    for key in ("model name", "Model", "Processor", "cpu model", "uarch"):
        value = _cpuinfo_field(key)
        if value:
            return value
    return platform.processor() or platform.machine() or "unknown"


def describe_machine() -> dict[str, Any]:
    """The machine, CPU, compiler and versions a certificate names."""
    from . import __version__
    from ._hotpath import IMPLEMENTATION

    c = counter()
    flags = (_cpuinfo_field("flags") or "").split()
    return {
        "machine": {
            "hostname": platform.node(),
            "system": platform.system(),
            "release": platform.release(),
            "architecture": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "cpu": {
            "model": _cpu_model(),
            "tsc_flags": [f for f in ("constant_tsc", "nonstop_tsc", "tsc_known_freq", "rdtscp") if f in flags],
        },
        "counter": {"source": c.source, "unit": c.unit, "hz": c.hz, "hz_source": c.hz_source, "driver": c.driver},
        "compiler": {
            "kernels": _driver.COMPILER,
            "python": platform.python_compiler(),
        },
        "versions": {
            "python": sys.version.split()[0],
            "python_implementation": platform.python_implementation(),
            "cython_compiled_with": _cython_from_hex(_driver.CYTHON_HEX),
            "cython_installed": _version("Cython"),
            "numpy": _version("numpy"),
            "yawlflow": __version__,
            "yawlflow_kernels": IMPLEMENTATION,
            "pytest": _version("pytest"),
            "pytest_benchmark": _version("pytest-benchmark"),
        },
    }


def certificate(results: Sequence[TickStats]) -> dict[str, Any]:
    """The certificate for ``results``: the machine, then each kernel's ticks per operation.

    ``passed`` is false when any result is over its budget.
    """
    entries = [r.as_json() for r in results]
    return {
        "format": CERTIFICATE_FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **describe_machine(),
        "kernels": entries,
        "passed": all(r.within_budget is not False for r in results),
    }
