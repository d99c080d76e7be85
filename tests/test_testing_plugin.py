"""yawlflow.testing: the pytest plugin's fixtures and the virtual clock, run as a user would."""

from __future__ import annotations

import pytest

THIRTY_DAYS = '''
import anyio
import pytest
import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads("""
yawlflow: 1
id: month
nets:
  main:
    input: s
    output: e
    tasks:
      wait: {timer: {after: 30d}, flows: [e]}
""")


@pytest.fixture(scope="SCOPE")
def clock():
    return FakeClock()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.mark.anyio
async def test_thirty_days(clock):
    start = clock.now()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(SPEC)
        await clock.advance(30 * 86400 - 1)
        assert case.status == "running"
        await clock.advance(1)
        result = await case.result()
    assert result.status == "completed"
    assert clock.now() - start == 30 * 86400


@pytest.mark.anyio
async def test_plugin_fixtures(fake_clock, engine):
    case = await engine.start(SPEC)
    await fake_clock.advance(30 * 86400)
    assert (await case.result()).status == "completed"
'''


@pytest.mark.parametrize("scope", ["function", "module", "session"])
def test_a_thirty_day_timer_runs_at_once_at_any_fixture_scope(pytester: pytest.Pytester, scope: str) -> None:
    pytester.makepyfile(test_month=THIRTY_DAYS.replace("SCOPE", scope))
    result = pytester.runpytest_subprocess("-p", "anyio", "--timeout", "60", "-q")
    result.assert_outcomes(passed=4)
    duration = float(result.outlines[-1].split(" in ")[-1].split("s")[0])
    assert duration < 30, result.outlines[-1]  # a generous bound: 30 virtual days, not real ones


def test_the_plugin_is_registered_by_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixture="""
        def test_has_fixture(fake_clock):
            assert fake_clock.now() == 0.0
        """
    )
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1)
