"""benches: pytest-benchmark suites. Every number is reported against a baseline measured in the
same run (the pure-Python twin, a bare task group, SpiffWorkflow), never as a bare time.

Each benchmark adds a row to the session's report (and to ``benchmark.extra_info``); the rows
are printed as one table at the end of the run and written to ``.benchmarks/ratios.json``.
``benches/README.md`` says how to run and read them.

Options: ``--bench-rounds N`` (rounds of each timed subject and baseline, default 5) and
``--bench-quick`` (smaller shapes for a smoke run; the table says so, and its rows are not the
issue's goals).
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

# the helpers beside this file (_kit, _shapes): benches/ is not a package, and pytest imports
# its modules with --import-mode=importlib, which puts nothing on sys.path
sys.path.insert(0, str(Path(__file__).parent))

from _kit import LoopHost, Report, cpu_model

_REPORT = pytest.StashKey[Report]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("yawlflow benches")
    group.addoption("--bench-rounds", type=int, default=5, metavar="N",
                    help="rounds of each timed subject and of its baseline (default 5)")
    group.addoption("--bench-quick", action="store_true", default=False,
                    help="smaller shapes for a smoke run (the table says so; not the issue's goals)")


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("benchmark"):
        raise pytest.UsageError("benches/ needs pytest-benchmark: pip install -e '.[dev,bench]'")
    # the tick certificate goes beside pytest-benchmark's own files (.benchmarks/, ignored by git)
    if config.getoption("tick_certify", False) and not config.getoption("tick_certificate", None):
        config.option.tick_certificate = str(config.rootpath / ".benchmarks" / "tick-certificate.json")
    config.stash[_REPORT] = Report()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report is None or not report.rows:
        return
    from yawlflow._hotpath import IMPLEMENTATION

    tr = terminalreporter
    quick = " [--bench-quick: smaller shapes, not the issue's goals]" if config.getoption("bench_quick") else ""
    tr.write_sep("=", f"yawlflow benches: ratios against baselines measured in this run{quick}")
    tr.write_line(f"Python {platform.python_version()}, kernels: {IMPLEMENTATION}, CPU: {cpu_model()}; "
                  f"medians of {config.getoption('bench_rounds')} rounds")
    for line in report.table():
        tr.write_line(line)
    out = config.rootpath / ".benchmarks" / "ratios.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) for r in report.rows], indent=2, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    tr.write_line(f"rows written to {out}")


@pytest.fixture(scope="session")
def report(pytestconfig: pytest.Config) -> Report:
    """The session's report: each benchmark adds a row."""
    return pytestconfig.stash[_REPORT]


@pytest.fixture(scope="session")
def rounds(pytestconfig: pytest.Config) -> int:
    """``--bench-rounds``."""
    return max(1, int(pytestconfig.getoption("bench_rounds")))


@pytest.fixture(scope="session")
def quick(pytestconfig: pytest.Config) -> bool:
    """``--bench-quick``."""
    return bool(pytestconfig.getoption("bench_quick"))


def _loop_kinds() -> list[Any]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return ["asyncio", pytest.param("uvloop", marks=pytest.mark.skip(reason="uvloop is not installed"))]
    return ["asyncio", "uvloop"]


@pytest.fixture(scope="module", params=_loop_kinds())
def host(request: pytest.FixtureRequest) -> Iterator[LoopHost]:
    """An event loop kept for the module's benches, once per kind (asyncio, uvloop)."""
    h = LoopHost(request.param)
    yield h
    h.close()


@pytest.fixture(scope="module")
def default_host() -> Iterator[LoopHost]:
    """The engine's default loop: asyncio with uvloop where installed (as ``yf.run`` uses)."""
    try:
        h = LoopHost("uvloop")
    except ImportError:
        h = LoopHost("asyncio")
    yield h
    h.close()
