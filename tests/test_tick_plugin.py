"""yawlflow.testing's tick certification, run as a user would: the `ticks` fixture, the
`tick_budget` marker and `--tick-certify`, through pytester (anyio's model for a shipped plugin).

Budgets here are far from anything measured (1 tick for a loop of a thousand additions, a billion
for a no-op), so the outcomes do not depend on the machine or its load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from yawlflow import _ticks
from yawlflow._hotpath import _ticks_py

OVER = """
import pytest

@pytest.mark.tick_budget(1)
def test_over(ticks):
    ticks(lambda: sum(range(1000)), rounds=3, name="summing")
"""

UNDER = """
import pytest

@pytest.mark.tick_budget(1_000_000_000)
def test_under(ticks):
    result = ticks(abs, args=range(-50, 50), rounds=3, name="abs")
    assert result.median <= 1_000_000_000
"""


def test_a_marked_test_over_its_budget_fails_naming_measured_and_budget(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_over=OVER)
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*tick budget exceeded:*",
        "*summing: median * ticks/op*",  # the name, and the measured median ...
        "*measured * > budget 1 ticks/op (*x the budget)*",  # ... against the budget
    ])


def test_a_marked_test_within_its_budget_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_under=UNDER)
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_a_budget_on_a_test_that_measured_nothing_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_nothing="""
        import pytest

        @pytest.mark.tick_budget(8)
        def test_nothing():
            pass

        @pytest.mark.tick_budget("fast")
        def test_bad_budget(ticks):
            ticks(abs, args=[1], rounds=1)
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*tick_budget(8) on a test that measured nothing: measure with the `ticks` fixture*"])
    result.stdout.fnmatch_lines(["*tick_budget takes a positive number of ticks per operation*not 'fast'*"])


def test_the_budget_is_not_checked_when_the_test_itself_failed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fails="""
        import pytest

        @pytest.mark.tick_budget(1)
        def test_fails(ticks):
            ticks(lambda: sum(range(1000)), rounds=1)
            assert False, "the test's own failure"
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test's own failure*"])
    result.stdout.no_fnmatch_line("*tick budget exceeded*")


def test_the_ticks_fixture_returns_positive_numbers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_numbers="""
        def test_numbers(ticks):
            each = ticks(abs, args=range(100), rounds=5)
            batch = ticks(lambda: [abs(i) for i in range(100)], ops=100, rounds=5, name="listcomp")
            for r in (each, batch):
                assert 0 < r.min <= r.p10 <= r.median <= r.p90 <= r.max
                assert r.rounds == 5 and r.ops_per_round >= 100
                assert r.ns_per_op > 0 and r.hz > 0
                assert r.unit in ("tick", "ns") and r.source in ("rdtsc", "perf_counter_ns")
                assert len(r.samples) == 5
            assert batch.name == "listcomp" and each.name == "abs"
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=1)


def test_tick_certify_writes_a_certificate_with_the_required_fields(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_over=OVER, test_under=UNDER)
    path = pytester.path / "out" / "cert.json"
    result = pytester.runpytest("-q", "--tick-certify", "--tick-certificate", str(path))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*yawlflow tick certificate*",
        "*counter: *GHz*",
        "*summing*ticks/op*(budget 1)  OVER BUDGET*",
        "*abs*ticks/op*within budget*",
        f"*certificate: {path}*",
    ])
    cert = json.loads(path.read_text(encoding="utf-8"))
    assert cert["format"] == _ticks.CERTIFICATE_FORMAT
    assert cert["passed"] is False  # one kernel is over its budget
    assert {"hostname", "system", "architecture", "cpus"} <= set(cert["machine"])
    assert cert["cpu"]["model"]
    assert cert["compiler"]["kernels"] and cert["compiler"]["python"]
    versions = cert["versions"]
    for key in ("python", "cython_compiled_with", "cython_installed", "numpy", "yawlflow", "yawlflow_kernels"):
        assert key in versions
    assert versions["python"] == sys.version.split()[0] and versions["yawlflow"] and versions["numpy"]
    assert cert["counter"]["source"] in ("rdtsc", "perf_counter_ns") and cert["counter"]["hz"] > 0
    by_name = {k["name"]: k for k in cert["kernels"]}
    assert set(by_name) == {"summing", "abs"}
    for entry in by_name.values():
        assert entry["median"] > 0 and entry["p10"] <= entry["median"] <= entry["p90"]
        assert entry["spread_pct"] >= 0 and entry["ns_per_op"] > 0 and entry["rounds"] == 3
        assert entry["test"].endswith(("::test_over", "::test_under"))
    assert by_name["summing"]["budget"] == 1 and by_name["summing"]["within_budget"] is False
    assert by_name["abs"]["within_budget"] is True


def test_without_tick_certify_no_certificate_is_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_under=UNDER)
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "tick-certificate.json").exists()
    result.stdout.no_fnmatch_line("*yawlflow tick certificate*")


def test_the_options_and_the_marker_are_documented(pytester: pytest.Pytester) -> None:
    pytester.runpytest("--help").stdout.fnmatch_lines(["*--tick-certify*", "*--tick-certificate=PATH*"])
    pytester.runpytest("--markers").stdout.fnmatch_lines(["*tick_budget(n): fail when the median CPU ticks*"])


def test_the_tick_types_are_public_and_load_on_first_use() -> None:
    import yawlflow.testing as testing

    assert testing.TickMeter is _ticks.TickMeter and testing.TickStats is _ticks.TickStats
    assert {"TickMeter", "TickStats"} <= set(testing.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        testing.Nope  # noqa: B018


def test_loading_the_plugin_does_not_load_the_measuring_code() -> None:
    code = "import sys, yawlflow.testing; print('yawlflow._ticks' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# -- the measurement itself, over both drivers -------------------------------------------------


def _drivers() -> list[Any]:
    params: list[Any] = [pytest.param(_ticks_py, id="py")]
    try:
        from yawlflow._hotpath import _ticks_cy  # type: ignore[attr-defined]
    except ImportError:
        params.append(pytest.param(None, id="cy", marks=pytest.mark.skip(reason="compiled twin not built")))
    else:
        params.append(pytest.param(_ticks_cy, id="cy"))
    return params


@pytest.mark.parametrize("driver", _drivers())
def test_the_twins_share_an_api_and_time_a_batch(driver: ModuleType) -> None:
    assert sorted(driver.__all__) == sorted(_ticks_py.__all__)
    calls: list[int] = []
    clock = iter(range(0, 1000, 7)).__next__
    assert driver.run_each(calls.append, (1, 2, 3), clock) == 7
    assert calls == [1, 2, 3]
    assert driver.run_repeat(lambda: calls.append(0), 4, clock) == 7
    assert calls == [1, 2, 3, 0, 0, 0, 0]
    assert driver.CallFloor().op(5) == 0
    with pytest.raises(TypeError):
        driver.run_each(calls.append, [1, 2], clock)
    if not driver.RDTSC:
        with pytest.raises(RuntimeError, match="pass a clock"):
            driver.run_each(calls.append, (1,))
        with pytest.raises(RuntimeError):
            driver.rdtsc()
    else:
        assert driver.rdtsc() > 0


@pytest.mark.parametrize(
    ("driver", "forced"),
    [pytest.param(_ticks_py, "", id="pure-driver"), pytest.param(None, "perf_counter", id="forced-perf-counter")],
)
def test_the_fallback_counter_measures_in_ticks_or_says_ns(
    monkeypatch: pytest.MonkeyPatch, driver: ModuleType | None, forced: str
) -> None:
    if driver is not None:
        monkeypatch.setattr(_ticks, "_driver", driver)
    monkeypatch.setenv("YAWLFLOW_TICKS", forced)
    monkeypatch.setattr(_ticks, "_COUNTER", None)
    stats = _ticks.measure(abs, args=range(10), rounds=3, target_ns=20_000)
    c = _ticks.counter()
    assert c.source == "perf_counter_ns"
    assert (c.unit == "ns") == (c.hz == 1e9 and "no CPU frequency" in c.hz_source)
    assert stats.source == "perf_counter_ns" and stats.median > 0
    if driver is not None:
        assert c.driver == "python"


def test_measure_rejects_nonsense() -> None:
    bad: list[Callable[[], object]] = [
        lambda: _ticks.measure(abs, args=[], rounds=1),
        lambda: _ticks.measure(abs, args=[1], ops=0),
        lambda: _ticks.measure(abs, args=[1], rounds=0),
    ]
    for call in bad:
        with pytest.raises(ValueError):
            call()


def test_cython_versions_are_decoded() -> None:
    assert _ticks._cython_from_hex(0x030301F0) == "3.3.1"
    assert _ticks._cython_from_hex(0x030100B2) == "3.1.0b2"
    assert _ticks._cython_from_hex(0) is None


def test_a_certificate_without_results_passes_and_names_the_machine(tmp_path: Path) -> None:
    cert = _ticks.certificate([])
    assert cert["passed"] is True and cert["kernels"] == []
    assert cert["machine"]["architecture"]
