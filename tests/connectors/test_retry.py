"""Retries on a virtual clock: backoff and jitter bounds, the deadline, the verdict, retry_after."""

from __future__ import annotations

import itertools
import random
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.connectors import (
    CircuitOpenError,
    ConnectorTimeoutError,
    Policy,
    RetryPolicy,
    backoff_ceiling,
    backoff_delay,
    call_with_resilience,
    should_retry,
)
from yawlflow.connectors.testing import ScriptedConnector, item_context
from yawlflow.testing import FakeClock

pytestmark = pytest.mark.anyio

FLAKY = yf.ConnectorError("503 from upstream", retryable=True)
FINAL = yf.ConnectorError("404 no such order", retryable=False)


def policy(**retry: Any) -> Policy:
    return Policy(retry=RetryPolicy(**retry), breaker=None, bulkhead=None)


# -- the arithmetic -------------------------------------------------------------------------------


def test_ceiling_doubles_from_backoff_up_to_max_backoff() -> None:
    r = RetryPolicy(attempts=10, backoff=0.1, max_backoff=1.0)
    assert [backoff_ceiling(r, n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff_ceiling(RetryPolicy(backoff=0.1), 5000) > 1e300  # no overflow on the 5,000th retry
    with pytest.raises(ValueError, match="retries count from 1"):
        backoff_ceiling(r, 0)


@pytest.mark.parametrize("seed", range(5))
def test_full_jitter_stays_in_zero_to_ceiling_and_spreads(seed: int) -> None:
    r = RetryPolicy(attempts=10, backoff=0.1, max_backoff=2.0)
    rng = random.Random(seed)
    for n in range(1, 9):
        delays = [backoff_delay(r, n, rng) for _ in range(400)]
        ceiling = backoff_ceiling(r, n)
        assert all(0.0 <= d <= ceiling for d in delays), f"seed {seed}, retry {n}"
        # uniform on [0, ceiling]: the sample spans most of it (a fixed fraction would not)
        assert min(delays) < 0.1 * ceiling and max(delays) > 0.9 * ceiling, f"seed {seed}, retry {n}"


def test_jitter_is_reproducible_with_a_seed_and_none_gives_the_ceiling() -> None:
    r = RetryPolicy(attempts=5, backoff=0.5)
    assert [backoff_delay(r, n, random.Random(7)) for n in (1, 2, 3)] == [
        backoff_delay(r, n, random.Random(7)) for n in (1, 2, 3)
    ]
    flat = RetryPolicy(attempts=5, backoff=0.5, jitter="none")
    assert [backoff_delay(flat, n, random.Random(1)) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


def test_the_verdict_decides_and_a_no_is_final() -> None:
    default = RetryPolicy(attempts=3)
    assert should_retry(FLAKY, default)
    assert not should_retry(FINAL, default)
    assert should_retry(TimeoutError(), default) and should_retry(ConnectionResetError(), default)
    assert not should_retry(ValueError("bad input"), default)
    by_class = RetryPolicy(attempts=3, on=("ValueError", "LookupError"))
    assert should_retry(ValueError(), by_class) and should_retry(KeyError("k"), by_class)  # KeyError is a LookupError
    assert not should_retry(TimeoutError(), by_class)
    assert not should_retry(FINAL, RetryPolicy(attempts=3, on=("ConnectorError",))), "retryable=False is final"


# -- the wrapper on a virtual clock ----------------------------------------------------------------


async def test_retries_follow_the_backoff_bounds(jumping: FakeClock) -> None:
    connector = ScriptedConnector(FLAKY, FLAKY, FLAKY, FLAKY, {"ok": True}, clock=jumping)
    starts: list[float] = []
    original = connector.call

    async def spy(config: Any, input: Any, ctx: Any) -> Any:
        starts.append(jumping.now())
        return await original(config, input, ctx)

    connector.call = spy  # type: ignore[method-assign]
    retries: list[tuple[int, str, float]] = []
    p = policy(attempts=5, backoff=1.0, max_backoff=3.0)
    out = await call_with_resilience(connector, connector.Config(), {}, item_context(), p, jumping,
                                     rng=random.Random(3), on_retry=lambda n, e, d: retries.append((n, str(e), d)))
    assert out == {"ok": True}
    assert [n for n, _, _ in retries] == [2, 3, 4, 5]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    for i, (gap, (_, _, delay)) in enumerate(zip(gaps, retries, strict=True)):
        assert gap == pytest.approx(delay, abs=1e-9), "each retry waits exactly the delay it announced"
        assert 0 <= gap <= min(1.0 * 2**i, 3.0), f"retry {i + 1}: {gap} outside its jitter bound"


async def test_a_seeded_rng_gives_the_same_schedule(jumping: FakeClock) -> None:
    schedules = []
    for _ in range(2):
        connector = ScriptedConnector(FLAKY, FLAKY, FLAKY, {}, clock=jumping)
        delays: list[float] = []
        await call_with_resilience(connector, connector.Config(), {}, item_context(), policy(attempts=4), jumping,
                                   rng=random.Random(42), on_retry=lambda n, e, d, delays=delays: delays.append(d))
        schedules.append(delays)
    assert schedules[0] == schedules[1] and len(schedules[0]) == 3


async def test_attempts_run_out_and_the_last_error_says_so(jumping: FakeClock) -> None:
    connector = ScriptedConnector(default=FLAKY, clock=jumping)
    with pytest.raises(yf.ConnectorError, match="503 from upstream") as info:
        await call_with_resilience(connector, connector.Config(), {}, item_context(), policy(attempts=3), jumping,
                                   name="orders")
    assert len(connector.calls) == 3
    assert "connector 'orders': gave up after 3 attempts (retry.attempts)" in info.value.__notes__


async def test_a_final_verdict_is_not_retried(jumping: FakeClock) -> None:
    connector = ScriptedConnector(FINAL, {}, clock=jumping)
    with pytest.raises(yf.ConnectorError, match="404"):
        await call_with_resilience(connector, connector.Config(), {}, item_context(), policy(attempts=5), jumping)
    assert len(connector.calls) == 1
    assert jumping.now() == 0


async def test_the_deadline_stops_retries(jumping: FakeClock) -> None:
    connector = ScriptedConnector(default=FLAKY, clock=jumping)
    p = policy(attempts=100, backoff=1.0, max_backoff=1.0, jitter="none", deadline=3.5)
    with pytest.raises(yf.ConnectorError) as info:
        await call_with_resilience(connector, connector.Config(), {}, item_context(), p, jumping, name="orders")
    # attempts at 0, 1, 2, 3; the next would start at 4 >= 3.5
    assert len(connector.calls) == 4
    assert jumping.now() == 3.0
    assert any("past the retry deadline of 3.5s" in note for note in info.value.__notes__)


async def test_no_backoff_sleeps_past_the_deadline_even_with_slow_attempts(jumping: FakeClock) -> None:
    async def slow_failure(input: Any, ctx: Any) -> Any:
        await jumping.sleep(2.0)
        raise FLAKY

    connector = ScriptedConnector(default=slow_failure, clock=jumping)
    p = policy(attempts=100, backoff=0.5, max_backoff=0.5, jitter="none", deadline=5.0)
    with pytest.raises(yf.ConnectorError):
        await call_with_resilience(connector, connector.Config(), {}, item_context(), p, jumping)
    # attempts start at 0, 2.5; the second ends at 4.5 and its backoff would end at 5.0 = the deadline
    assert len(connector.calls) == 2
    assert jumping.now() == 4.5


async def test_retry_after_is_a_floor_for_the_backoff(jumping: FakeClock) -> None:
    connector = ScriptedConnector(CircuitOpenError("open", retry_after=10.0), {}, clock=jumping)
    await call_with_resilience(connector, connector.Config(), {}, item_context(), policy(attempts=2, backoff=0.1),
                               jumping)
    assert jumping.now() == 10.0


async def test_a_timeout_is_retryable_and_counts_as_an_attempt(jumping: FakeClock) -> None:
    connector = ScriptedConnector(60.0, {"second": True}, clock=jumping)
    p = Policy(timeout=5.0, retry=RetryPolicy(attempts=2, backoff=0.0), breaker=None,
               bulkhead=None)
    assert await call_with_resilience(connector, connector.Config(), {}, item_context(), p, jumping) == {"second": True}
    assert jumping.now() == 5.0
    assert connector.cancelled == 1


async def test_the_same_context_goes_to_every_attempt(jumping: FakeClock) -> None:
    connector = ScriptedConnector(FLAKY, FLAKY, {}, clock=jumping)
    ctx = item_context("order-17")
    await call_with_resilience(connector, connector.Config(), {"n": 1}, ctx, policy(attempts=3), jumping)
    assert [c.idempotency_key for _, c in connector.calls] == ["order-17"] * 3


async def test_without_retries_a_timeout_error_names_the_task(clock: FakeClock) -> None:
    connector = ScriptedConnector(30.0, clock=clock)
    p = Policy(timeout=2.0, breaker=None, bulkhead=None)
    failed: list[BaseException] = []

    async def call() -> None:
        try:
            await call_with_resilience(connector, connector.Config(), {}, item_context(task="fetch"), p, clock)
        except ConnectorTimeoutError as exc:
            failed.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await clock.advance(1.999)
        assert not failed
        await clock.advance(0.001)
        assert failed
    assert str(failed[0]).startswith("connector 'ScriptedConnector': the call took longer than its timeout of 2s "
                                     "(task 'fetch', item 1)")
    assert connector.cancelled == 1
