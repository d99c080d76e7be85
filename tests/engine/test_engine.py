"""The engine around the runner: handlers, data mapping, timers, retries, errors, idle/result."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from kit import inc

import yawlflow as yf
from yawlflow.testing import FakeClock

pytestmark = pytest.mark.anyio

SEQ = """
yawlflow: 1
id: seq
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, flows: [b]}
      b: {run: inc, flows: [end]}
"""


async def test_sync_handler_runs_off_the_event_loop_thread() -> None:
    threads: list[int] = []

    def blocking(data: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.get_ident())
        return {"n": 1}

    async with yf.Engine() as engine:
        engine.handlers.register("inc", blocking)
        case = await engine.start(yf.loads(SEQ))
        result = await case.result()
    assert result.status == "completed"
    assert threads and all(t != threading.get_ident() for t in threads)


async def test_quick_handler_runs_inline_in_the_same_step() -> None:
    async with yf.Engine() as engine:
        engine.handlers.register("inc", inc, quick=True)
        case = await engine.start(yf.loads(SEQ), {"n": 5})
        # No await between start and the check: quick handlers ran inside start's step.
        assert case.status == "completed"
        assert case.data == {"n": 7}


async def test_handler_context_carries_stable_idempotency_key() -> None:
    seen: list[yf.ItemContext] = []

    async def handler(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        seen.append(ctx)

    async with yf.Engine() as engine:
        engine.handlers.register("inc", handler)
        case = await engine.start(yf.loads(SEQ))
        await case.result()
    assert [c.task for c in seen] == ["a", "b"]
    assert seen[0].case_id == case.id and seen[0].attempt == 1
    assert seen[0].idempotency_key == f"{case.id}/{seen[0].item_id}"
    assert seen[0].idempotency_key != seen[1].idempotency_key


def test_input_and_output_mappings_use_cel() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: m
nets:
  main:
    input: s
    output: e
    tasks:
      price:
        run: price
        input: {qty: "order.qty", unit: "order.unit"}
        output: {total: "result * 2", order: "order"}
        flows: [e]
"""
    )
    got: list[dict[str, Any]] = []

    def price(data: dict[str, Any]) -> dict[str, Any]:
        got.append(data)
        return {"result": data["qty"] * data["unit"]}

    result = yf.run(spec, {"order": {"qty": 3, "unit": 5}}, handlers={"price": price})
    assert got == [{"qty": 3, "unit": 5}]
    assert result.status == "completed"
    assert result.data == {"order": {"qty": 3, "unit": 5}, "total": 30}


def test_failing_handler_fails_the_case_with_its_error_in_the_trace() -> None:
    def boom(data: dict[str, Any]) -> None:
        raise ValueError("no stock")

    result = yf.run(yf.loads(SEQ), handlers={"inc": boom})
    assert result.status == "failed"
    failed = [e for e in result.trace if e["event"] == "item.failed"]
    assert failed and failed[0]["data"] == {"attempt": 1, "error": "ValueError: no stock"}
    assert result.trace[-1]["event"] == "case.failed"
    assert "no stock" in result.trace[-1]["data"]["error"]


def test_non_critical_task_failure_lets_the_case_go_on() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: nc
nets:
  main:
    input: s
    output: e
    tasks:
      a: {run: boom, critical: false, flows: [b]}
      b: {run: ok, flows: [e]}
"""
    )

    def boom(data: dict[str, Any]) -> None:
        raise RuntimeError("down")

    result = yf.run(spec, handlers={"boom": boom, "ok": lambda d: {"ok": True}})
    assert result.status == "completed"
    assert [e["event"] for e in result.trace if e["task"] == "a"] == ["item.enabled", "item.started", "item.failed"]
    assert result.data == {"ok": True}


def test_handler_returning_a_non_dict_fails_the_item_clearly() -> None:
    result = yf.run(yf.loads(SEQ), handlers={"inc": lambda d: 42})
    assert result.status == "failed"
    assert "returned int; return a dict or None" in result.trace[-1]["data"]["error"]


def test_unknown_handler_fails_the_case_naming_it() -> None:
    result = yf.run(yf.loads(SEQ))
    assert result.status == "failed"
    assert "no handler named 'inc'" in (result.error or "")


async def test_retry_backs_off_on_the_engine_clock_then_succeeds() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: r
nets:
  main:
    input: s
    output: e
    tasks:
      a: {run: flaky, retry: {attempts: 3, backoff: 10s}, flows: [e]}
"""
    )
    calls: list[int] = []

    def flaky(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("try again")
        return {"done": True}

    clock = FakeClock()
    async with yf.Engine(clock=clock, seed=1) as engine:
        engine.handlers.register("flaky", flaky, quick=True)
        case = await engine.start(spec)
        await clock.advance(0)
        assert calls == [1]
        await clock.advance(10)  # first backoff: up to 10 s (full jitter)
        await clock.advance(20)  # second: up to 20 s
        result = await case.result()
    assert calls == [1, 2, 3]
    assert result.status == "completed"
    retried = [e["data"] for e in result.trace if e["event"] == "item.retried"]
    assert retried == [{"attempt": 1, "error": "ConnectionError: try again"},
                       {"attempt": 2, "error": "ConnectionError: try again"}]
    items = {e["item"] for e in result.trace if e["task"] == "a"}
    assert len(items) == 1  # the same item id across attempts


def test_retry_on_lists_the_retried_error_classes() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: r
nets:
  main:
    input: s
    output: e
    tasks:
      a: {run: bad, retry: {attempts: 5, on: [ConnectionError]}, flows: [e]}
"""
    )

    def bad(data: dict[str, Any]) -> None:
        raise KeyError("x")

    result = yf.run(spec, handlers={"bad": bad})
    assert result.status == "failed"
    assert not [e for e in result.trace if e["event"] == "item.retried"]


async def test_timeout_fails_the_item_on_the_engine_clock() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: t
nets:
  main:
    input: s
    output: e
    tasks:
      a: {run: slow, timeout: 30s, flows: [e]}
"""
    )
    cancelled = anyio.Event()

    async def slow(data: dict[str, Any]) -> None:
        try:
            await anyio.Event().wait()
        finally:
            cancelled.set()

    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        engine.handlers.register("slow", slow)
        case = await engine.start(spec)
        await clock.advance(29.999)
        assert case.status == "running"
        await clock.advance(0.001)
        result = await case.result()
    assert cancelled.is_set()
    assert result.status == "failed"
    assert "timed out after 30s" in (result.error or "")


async def test_a_thirty_day_timer_finishes_at_once_with_autojump() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: wait
nets:
  main:
    input: s
    output: e
    tasks:
      wait: {timer: {after: 30d}, flows: [e]}
"""
    )
    clock = FakeClock(autojump=True)
    with anyio.fail_after(5):
        async with yf.Engine(clock=clock) as engine:
            case = await engine.start(spec)
            result = await case.result()
    assert result.status == "completed"
    assert clock.now() == pytest.approx(30 * 86400)
    assert [e["event"] for e in result.trace if e["task"] == "wait"] == [
        "item.enabled", "item.started", "item.completed"
    ]


TIMEOUT_CHOICE = """
yawlflow: 1
id: tc
nets:
  main:
    input: s
    output: e
    conditions:
      s: {flows: [approve, expire]}
    tasks:
      approve: {external: true, flows: [e]}
      expire: {timer: {after: 1h}, flows: [e]}
"""


async def test_timer_against_an_offer_is_a_deferred_choice() -> None:
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(yf.loads(TIMEOUT_CHOICE))
        assert len(case.work_items(state="offered")) == 1
        await clock.advance(3599)
        assert case.work_items(state="offered")
        await clock.advance(1)
        result = await case.result()
    events = [(e["event"], e["task"]) for e in result.trace]
    assert ("item.cancelled", "approve") in events
    assert ("item.completed", "expire") in events
    assert ("item.started", "approve") not in events


async def test_starting_the_offer_disarms_the_timer() -> None:
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(yf.loads(TIMEOUT_CHOICE))
        [offer] = case.work_items(state="offered")
        await case.start_item(offer.id)
        await clock.advance(7200)
        assert case.status == "running"
        await case.complete(offer.id, {"ok": True})
        result = await case.result()
    assert not [e for e in result.trace if e["task"] == "expire" and e["event"] != "item.enabled"
                and e["event"] != "item.cancelled"]
    assert result.status == "completed"


async def test_api_errors_name_the_item_and_change_nothing() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(TIMEOUT_CHOICE))
        [offer] = case.work_items(state="offered")
        before = case.trace
        with pytest.raises(yf.InvalidEventError, match=r"no live item 999"):
            await case.complete(999)
        with pytest.raises(yf.InvalidEventError, match=r"must be a mapping"):
            await case.complete(offer.id, ["not", "a", "dict"])  # type: ignore[arg-type]
        with pytest.raises(yf.InvalidEventError, match=r"JSON values"):
            await case.complete(offer.id, {"x": object()})
        assert case.trace == before
        await case.cancel()
        with pytest.raises(yf.InvalidEventError, match=r"has ended \(cancelled\)"):
            await case.start_item(offer.id)


async def test_completing_an_automatic_item_through_the_api_is_refused() -> None:
    gate = anyio.Event()

    async def wait(data: dict[str, Any]) -> None:
        await gate.wait()

    async with yf.Engine() as engine:
        engine.handlers.register("inc", wait)
        case = await engine.start(yf.loads(SEQ))
        await anyio.wait_all_tasks_blocked()
        [item] = case.work_items(state="started")
        with pytest.raises(yf.InvalidEventError, match="automatic item"):
            await case.complete(item.id, {})
        gate.set()
        assert (await case.result()).status == "completed"


async def test_idle_returns_when_only_external_work_remains() -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: i
nets:
  main:
    input: s
    output: e
    tasks:
      a: {run: slow, flows: [b]}
      b: {external: true, flows: [e]}
"""
    )
    step = anyio.Event()

    async def slow(data: dict[str, Any]) -> dict[str, Any]:
        await step.wait()
        return {"a": 1}

    async with yf.Engine() as engine:
        engine.handlers.register("slow", slow)
        case = await engine.start(spec)
        async with anyio.create_task_group() as tg:
            tg.start_soon(case.idle)
            await anyio.wait_all_tasks_blocked()
            assert not case.work_items(state="offered")
            step.set()
        assert [i.task for i in case.work_items(state="offered")] == ["b"]
        assert case.status == "running"


async def test_bad_start_arguments_are_clear_errors() -> None:
    async with yf.Engine() as engine:
        with pytest.raises(yf.InvalidEventError, match="case data must be a mapping"):
            await engine.start(yf.loads(SEQ), [1, 2])  # type: ignore[arg-type]
    with pytest.raises(yf.ConfigError, match="engine is not running"):
        await yf.Engine().start(yf.loads(SEQ))
    with pytest.raises(yf.ConfigError, match="unknown store URL"):
        yf.Engine(store="ftp://x")
    with pytest.raises(yf.ConfigError, match="seed must be an int"):
        yf.Engine(seed="7")  # type: ignore[arg-type]


async def test_engine_exit_cancels_running_work() -> None:
    stopped = anyio.Event()

    async def forever(data: dict[str, Any]) -> None:
        try:
            await anyio.Event().wait()
        finally:
            stopped.set()

    async with yf.Engine() as engine:
        engine.handlers.register("inc", forever)
        await engine.start(yf.loads(SEQ))
        await anyio.wait_all_tasks_blocked()
    assert stopped.is_set()


async def test_cases_lists_and_filters() -> None:
    async with yf.Engine() as engine:
        done = await engine.start(yf.loads(SEQ), tenant="acme")
        await engine.start(yf.loads(TIMEOUT_CHOICE), tenant="other")
        await anyio.wait_all_tasks_blocked()
        engine.handlers.register("inc", inc, quick=True)
        assert [c.case for c in await engine.cases(tenant="acme")] == [done.id]
        assert len(await engine.cases()) == 2
        assert engine.case(done.id) is done
        with pytest.raises(yf.InvalidEventError, match="no case 'nope'"):
            engine.case("nope")


def test_logs_go_to_module_loggers_and_leave_the_root_logger_alone(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    root_handlers = list(logging.getLogger().handlers)
    root_level = logging.getLogger().level

    def boom(data: dict[str, Any]) -> None:
        raise ValueError("no stock")

    with caplog.at_level(logging.DEBUG, logger="yawlflow"):
        result = yf.run(yf.loads(SEQ), handlers={"inc": boom})
    assert result.status == "failed"
    failed = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert failed and failed[0].name.startswith("yawlflow.")
    assert getattr(failed[0], "case_id", None) == result.case_id
    assert "no stock" in failed[0].getMessage()
    assert logging.getLogger().handlers == root_handlers
    assert logging.getLogger().level == root_level


def test_fold_of_the_stored_log_equals_the_live_state() -> None:
    from yawlflow._runner import NetRunner

    spec = yf.loads(TIMEOUT_CHOICE)

    async def main() -> None:
        async with yf.Engine() as engine:
            case = await engine.start(spec)
            [offer] = case.work_items(state="offered")
            await case.start_item(offer.id)
            await case.complete(offer.id, {"ok": 1})
            await case.result()
            events = engine.store.events(case.id)
            runner = NetRunner(case._runner.net)
            state = runner.initial_state(events[0])  # type: ignore[arg-type]
            trace: list[dict[str, Any]] = []
            for event in events:
                trace.extend(runner.handle(state, event).trace)
            assert state == case._state
            assert trace == case.trace

    anyio.run(main)


REVIEW_WITH_TIMEOUT = """
yawlflow: 1
id: t
nets:
  main:
    input: s
    output: e
    tasks:
      review: {external: true, timeout: 1h, flows: [e]}
"""


async def test_timeout_fails_a_started_external_item_on_the_engine_clock() -> None:
    spec = yf.loads(REVIEW_WITH_TIMEOUT)
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(spec)
        [offer] = case.work_items(state="offered")
        await clock.advance(7200)  # offered, not started: the timeout has not begun
        await case.start_item(offer.id)
        await clock.advance(3599)
        assert case.status == "running"
        await clock.advance(1)
        result = await case.result()
    assert result.status == "failed"
    assert [e["data"] for e in result.trace if e["event"] == "item.failed"] == [
        {"attempt": 1, "error": "TimeoutError: task 'review' timed out after 3600s"}
    ]


async def test_completing_in_time_disarms_the_timeout() -> None:
    spec = yf.loads(REVIEW_WITH_TIMEOUT)
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(spec)
        [offer] = case.work_items(state="offered")
        await case.start_item(offer.id)
        await clock.advance(10)
        await case.complete(offer.id, {"ok": True})
        result = await case.result()
        await clock.advance(7200)
    assert result.status == "completed"


async def test_a_net_that_starts_itself_without_end_fails_with_a_clear_error() -> None:
    spec = yf.loads("""
yawlflow: 1
id: endless
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      again: {net: main, flows: [end]}
""")
    async with yf.Engine() as engine:
        result = await (await engine.start(spec)).result()
    assert result.status == "failed"
    assert "would be nested 51 deep (at most 50)" in (result.error or "")
    assert "give its recursion a way out" in (result.error or "")
