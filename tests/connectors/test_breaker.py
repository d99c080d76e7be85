"""The circuit breaker on a virtual clock: opens after the configured failures, rejects while open,
half-opens after the cool-down, closes on success; and the same through the resilience wrapper."""

from __future__ import annotations

import anyio
import pytest

import yawlflow as yf
from yawlflow.connectors import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitOpenError,
    Health,
    Policy,
    call_with_resilience,
)
from yawlflow.connectors.testing import BLOCK, ScriptedConnector, item_context
from yawlflow.testing import FakeClock

FLAKY = yf.ConnectorError("503", retryable=True)
FINAL = yf.ConnectorError("404", retryable=False)


def breaker(clock: FakeClock, **kw: object) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    settings: dict[str, object] = {"window": 4, "min_calls": 4, "failure_rate": 0.5, "cool_down": 10.0, "probes": 2}
    settings.update(kw)
    b = CircuitBreaker(BreakerPolicy(**settings), clock, name="orders",
                       on_change=lambda old, new, why: changes.append((old, new)))
    return b, changes


def fail(b: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        b.failure(b.admit(), FLAKY)


def succeed(b: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        b.success(b.admit())


def test_opens_once_the_window_holds_enough_failures(clock: FakeClock) -> None:
    b, changes = breaker(clock)
    succeed(b, 2)
    fail(b)
    assert b.state == "closed", "3 outcomes < min_calls"
    fail(b)
    assert b.state == "open", "2 of 4 failed = 50%"
    assert changes == [("closed", "open")]


def test_the_window_slides(clock: FakeClock) -> None:
    b, _ = breaker(clock, window=4, min_calls=4, failure_rate=0.75)
    fail(b, 2)
    succeed(b, 2)  # F F S S: 50%
    fail(b)  # F S S F: 50%
    assert b.state == "closed" and b.window() == (2, 4)
    fail(b)  # S S F F: 50%
    assert b.state == "closed" and b.window() == (2, 4)
    fail(b)  # S F F F: 75%
    assert b.state == "open"


def test_rejects_while_open_and_says_when_a_probe_may_go(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    fail(b, 4)
    with pytest.raises(CircuitOpenError, match=r"circuit open: 4 of the last 4 calls failed .* in 10s\)") as info:
        b.admit()
    assert info.value.retry_after == 10.0 and info.value.retryable
    assert b.retry_after() == 10.0


async def test_half_opens_after_the_cool_down_and_closes_after_the_probes(clock: FakeClock) -> None:
    b, changes = breaker(clock)
    fail(b, 4)
    await clock.advance(9.999)
    assert b.state == "open"
    await clock.advance(0.001)
    assert b.state == "half_open"
    first, second = b.admit(), b.admit()
    with pytest.raises(CircuitOpenError, match="half-open, 2 probe call"):
        b.admit()  # only `probes` at once
    b.success(first)
    assert b.state == "half_open"
    b.success(second)
    assert b.state == "closed" and b.window() == (0, 0)
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_a_failed_probe_opens_it_for_another_cool_down(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    fail(b, 4)
    await clock.advance(10)
    probe = b.admit()
    b.failure(probe, FLAKY)
    assert b.state == "open" and b.retry_after() == 10.0
    await clock.advance(10)
    assert b.state == "half_open"


async def test_a_cancelled_probe_frees_its_slot(clock: FakeClock) -> None:
    b, _ = breaker(clock, probes=1)
    fail(b, 4)
    await clock.advance(10)
    b.release(b.admit())
    b.success(b.admit())
    assert b.state == "closed"


def test_a_late_outcome_from_before_a_transition_is_dropped(clock: FakeClock) -> None:
    b, _ = breaker(clock)
    slow = b.admit()  # admitted while closed
    fail(b, 4)
    assert b.state == "open"
    b.success(slow)  # must not count, nor close anything
    assert b.state == "open" and b.window() == (0, 0)


async def test_health_checks_feed_it(clock: FakeClock) -> None:
    b, changes = breaker(clock)
    b.report_health(Health(ok=False, detail="db down"))
    with pytest.raises(CircuitOpenError, match="health check failed: db down"):
        b.admit()
    b.report_health(Health(ok=True))
    assert b.state == "half_open"
    assert changes == [("closed", "open"), ("open", "half_open")]


# -- through the wrapper ----------------------------------------------------------------------------

pytestmark = pytest.mark.anyio


async def test_the_wrapper_trips_rejects_without_calling_and_recovers(clock: FakeClock) -> None:
    connector = ScriptedConnector(FLAKY, FLAKY, FINAL, FLAKY, default={"ok": True}, clock=clock)
    b, changes = breaker(clock, window=3, min_calls=3, failure_rate=0.6, probes=1)
    p = Policy(breaker=None, bulkhead=None)

    async def call() -> dict[str, object]:
        return await call_with_resilience(connector, connector.Config(), {}, item_context(), p, clock, breaker=b,
                                          name="orders")

    for _ in range(2):
        with pytest.raises(yf.ConnectorError, match="503"):
            await call()
    with pytest.raises(yf.ConnectorError, match="404"):
        await call()  # a final verdict is no failure of the downstream: it does not count
    assert b.state == "closed" and b.window() == (2, 2)
    with pytest.raises(yf.ConnectorError, match="503"):
        await call()
    assert b.state == "open"
    made = len(connector.calls)
    with pytest.raises(CircuitOpenError):
        await call()
    assert len(connector.calls) == made, "an open breaker makes no call"
    await clock.advance(10)
    assert await call() == {"ok": True}
    assert b.state == "closed"
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_a_cancelled_call_is_no_verdict(clock: FakeClock) -> None:
    connector = ScriptedConnector(BLOCK, clock=clock)
    b, _ = breaker(clock, window=1, min_calls=1, failure_rate=1.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: call_with_resilience(connector, connector.Config(), {}, item_context(),
                                                   Policy(breaker=None, bulkhead=None), clock, breaker=b))
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert connector.cancelled == 1
    assert b.state == "closed" and b.window() == (0, 0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"failure_rate": 0}, r"failure_rate is 0\.0; write a share in \(0, 1\]"),
        ({"window": 5, "min_calls": 6}, r"min_calls \(6\) exceeds window \(5\)"),
        ({"probes": 0}, "window, min_calls and probes must each be at least 1"),
    ],
)
def test_bad_breaker_policies_are_refused(settings: dict[str, object], message: str) -> None:
    from yawlflow.connectors import ConnectorConfigError, parse_policy

    with pytest.raises(ConnectorConfigError, match=r"^config\.connectors\.x\.breaker: " + message):
        parse_policy({"breaker": settings}, "config.connectors.x")
