"""The bulkhead under 1,000 concurrent calls, its queue and rejection; timeouts; cancellation."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from yawlflow.connectors import (
    Bulkhead,
    BulkheadFullError,
    BulkheadPolicy,
    Policy,
    call_with_resilience,
)
from yawlflow.connectors.testing import BLOCK, ScriptedConnector, item_context
from yawlflow.testing import FakeClock

pytestmark = pytest.mark.anyio

NO_GUARDS = Policy(breaker=None, bulkhead=None)


async def test_the_bulkhead_never_exceeds_its_limit_under_1000_concurrent_calls(clock: FakeClock) -> None:
    async def work(input: Any, ctx: Any) -> dict[str, Any]:
        for _ in range(5):  # yield to the others while holding the slot
            await anyio.lowlevel.checkpoint()
            assert bulkhead.in_flight <= 16
        return {"i": input["i"]}

    connector = ScriptedConnector(default=work, clock=clock)
    bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=16, queue=1000), clock, name="orders")
    outputs: list[dict[str, Any]] = []

    async def one(i: int) -> None:
        outputs.append(await call_with_resilience(connector, connector.Config(), {"i": i}, item_context(), NO_GUARDS,
                                                  clock, bulkhead=bulkhead))

    async with anyio.create_task_group() as tg:
        for i in range(1000):
            tg.start_soon(one, i)
    assert sorted(o["i"] for o in outputs) == list(range(1000))
    assert connector.peak == 16 and bulkhead.peak == 16, "never more than the limit, and the limit was reached"
    assert bulkhead.in_flight == 0 and bulkhead.waiting == 0


async def test_a_full_queue_rejects_at_once(clock: FakeClock) -> None:
    connector = ScriptedConnector(default=BLOCK, clock=clock)
    bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=2, queue=3), clock, name="orders")
    rejected: list[BulkheadFullError] = []

    async def one() -> None:
        try:
            await call_with_resilience(connector, connector.Config(), {}, item_context(), NO_GUARDS, clock,
                                       bulkhead=bulkhead)
        except BulkheadFullError as exc:
            rejected.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        assert (bulkhead.in_flight, bulkhead.waiting, len(rejected)) == (2, 3, 5)
        assert len(connector.calls) == 2
        tg.cancel_scope.cancel()
    assert str(rejected[0]).startswith(
        "connector 'orders': bulkhead full: 2 call(s) in flight (max_concurrent 2) and 3 queued (queue 3); raise"
    )
    assert rejected[0].retryable
    assert bulkhead.in_flight == 0 and bulkhead.waiting == 0


async def test_a_queued_call_gives_up_after_the_queue_timeout(clock: FakeClock) -> None:
    connector = ScriptedConnector(default=BLOCK, clock=clock)
    bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, queue=5, queue_timeout=3.0), clock)
    rejected: list[BulkheadFullError] = []

    async def one() -> None:
        try:
            await call_with_resilience(connector, connector.Config(), {}, item_context(), NO_GUARDS, clock,
                                       bulkhead=bulkhead, name="orders")
        except BulkheadFullError as exc:
            rejected.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
        await clock.advance(2.999)
        assert not rejected and bulkhead.waiting == 1
        await clock.advance(0.001)
        assert len(rejected) == 1 and "waited 3s for a bulkhead slot" in str(rejected[0])
        tg.cancel_scope.cancel()


async def test_cancelling_the_callers_scope_cancels_the_call_at_once(clock: FakeClock) -> None:
    """No clock time passes and no other task runs between the cancel and the call's end."""
    connector = ScriptedConnector(BLOCK, clock=clock)
    bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, queue=1), clock)
    policy = Policy(timeout=60.0, breaker=None, bulkhead=None)  # the watchdog path too
    ended = anyio.Event()

    async def caller() -> None:
        try:
            await call_with_resilience(connector, connector.Config(), {}, item_context(), policy, clock,
                                       bulkhead=bulkhead)
        finally:
            ended.set()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await anyio.wait_all_tasks_blocked()
            assert connector.in_flight == 1
            scope.cancel()
    assert ended.is_set() and connector.cancelled == 1 and connector.in_flight == 0
    assert bulkhead.in_flight == 0, "the slot went back"
    assert clock.now() == 0 and clock.next_deadline() is None, "the watchdog went with it"


async def test_cancelling_a_call_in_its_backoff_sleep(clock: FakeClock) -> None:
    import yawlflow as yf
    from yawlflow.connectors import RetryPolicy

    connector = ScriptedConnector(yf.ConnectorError("503", retryable=True), clock=clock)
    policy = Policy(retry=RetryPolicy(attempts=3, backoff=100.0), breaker=None, bulkhead=None)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(call_with_resilience, connector, connector.Config(), {}, item_context(), policy, clock)
            await anyio.wait_all_tasks_blocked()
            assert clock.next_deadline() is not None, "sleeping its backoff"
            scope.cancel()
    assert len(connector.calls) == 1 and clock.next_deadline() is None


async def test_a_timeout_on_the_system_clock_uses_the_loop_deadline() -> None:
    from yawlflow import SystemClock
    from yawlflow.connectors import ConnectorTimeoutError

    connector = ScriptedConnector(BLOCK)
    policy = Policy(timeout=0.01, breaker=None, bulkhead=None)
    with pytest.raises(ConnectorTimeoutError):
        await call_with_resilience(connector, connector.Config(), {}, item_context(), policy, SystemClock())
    assert connector.cancelled == 1
