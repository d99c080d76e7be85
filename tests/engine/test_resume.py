"""Recovery: a case stopped mid-way and resumed in a new Engine on the same SQLite store goes on
where it stopped and ends as an uninterrupted run would — the same final data and trace; auto
items that were running re-run once, with the same idempotency key; ``reconcile`` can settle them
instead; timers fire at their recorded deadlines; sub-cases are reattached."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from kit import APPROVE_OR_EXPIRE, AUTO_EXTERNAL_AUTO, NESTED_WITH_EXTERNALS, inc, sqlite_url

import yawlflow as yf
from yawlflow.testing import FakeClock

pytestmark = pytest.mark.anyio

AUTO = """
yawlflow: 1
id: auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, flows: [slow]}
      slow: {run: slow, flows: [c]}
      c: {run: inc, flows: [end]}
"""

PARALLEL = """
yawlflow: 1
id: parallel
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, split: and, flows: [slow, b]}
      slow: {run: slow, flows: [c]}
      b: {run: inc, flows: [c]}
      c: {join: and, run: inc, flows: [end]}
"""

Step = Callable[[yf.Case], Awaitable[None]]


async def complete_offered(case: yf.Case, task: str, output: dict[str, Any]) -> None:
    """Complete the offered item of ``task`` in ``case`` or one of its sub-cases."""
    await case.idle()
    for item in case._offered_in_tree():
        if item.task == task:
            target = case if item.case == case.id else case._engine.case(item.case)
            await target.complete(item.id, output)
            return
    raise AssertionError(f"no offered {task!r} in {case.id}: {case._offered_in_tree()}")


async def test_a_case_waiting_for_external_work_resumes_and_ends_as_an_uninterrupted_run(db: Path) -> None:
    spec = yf.loads(AUTO_EXTERNAL_AUTO)
    async with yf.Engine(seed=3, handlers={"inc": inc}) as engine:
        straight = await engine.start(spec, {"n": 0})
        await complete_offered(straight, "b", {"ok": True})
        expected = await straight.result()

    async with yf.Engine(store=sqlite_url(db), seed=3, handlers={"inc": inc}) as engine:
        case = await engine.start(spec, {"n": 0})
        await case.idle()
        before = case.trace
        case_id = case.id
    assert case_id == expected.case_id

    async with yf.Engine(store=sqlite_url(db), seed=3, handlers={"inc": inc}) as engine:
        resumed = await engine.resume()
        assert [c.id for c in resumed] == [case_id]
        case = engine.case(case_id)
        assert case is resumed[0]
        assert case.trace == before
        assert [i.task for i in case.work_items("offered")] == ["b"]
        await complete_offered(case, "b", {"ok": True})
        result = await case.result()
        assert await engine.resume() == []  # nothing left to resume
    assert result.status == "completed"
    assert result.data == expected.data == {"n": 2, "ok": True}
    assert result.trace == expected.trace


async def test_an_auto_item_in_flight_is_rerun_once_with_the_same_idempotency_key(db: Path) -> None:
    spec = yf.loads(AUTO)
    calls: list[tuple[str, int]] = []
    entered = anyio.Event()

    async def stuck(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        calls.append((ctx.idempotency_key, ctx.attempt))
        entered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def fine(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        calls.append((ctx.idempotency_key, ctx.attempt))
        return {"slow": ctx.idempotency_key}

    async with yf.Engine(handlers={"inc": inc, "slow": fine}, seed=1) as engine:
        expected = await (await engine.start(spec, {"n": 0})).result()
    calls.clear()

    async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc, "slow": stuck}, seed=1) as engine:
        case = await engine.start(spec, {"n": 0})
        await entered.wait()  # the slow item never finishes: leave while it runs
        case_id = case.id
    assert len(calls) == 1
    key = calls[0][0]
    assert key == f"{case_id}/{key.rsplit('/', 1)[1]}"

    async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc, "slow": fine}, seed=1) as engine:
        [case] = await engine.resume()
        result = await case.result()
    assert calls == [(key, 1), (key, 1)]  # the same item, the same key, run once more
    assert result.status == "completed"
    assert result.data == expected.data
    assert result.trace == expected.trace


async def test_every_item_in_flight_is_rerun(db: Path) -> None:
    # Seeded: the driver ran `slow` first and it hung, so `b` (started, not run) was in flight too.
    # After the resume both run once; with a seed, the order the driver takes ready items in
    # after a restart is drawn afresh, so only the outcome is compared, not the interleaving.
    spec = yf.loads(PARALLEL)
    entered = anyio.Event()
    keys: list[str] = []

    async def stuck(data: dict[str, Any]) -> None:
        entered.set()
        await anyio.sleep_forever()

    def counted(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        keys.append(ctx.idempotency_key)
        return inc(data)

    async with yf.Engine(handlers={"inc": inc, "slow": inc}, seed=1) as engine:
        expected = await (await engine.start(spec, {"n": 0})).result()
    async with yf.Engine(store=sqlite_url(db), handlers={"inc": counted, "slow": stuck}, seed=1) as engine:
        case = await engine.start(spec, {"n": 0})
        await entered.wait()
        in_flight = sorted(f"{case.id}/{i.id}" for i in case.work_items("started"))
    assert len(in_flight) == 2
    keys.clear()
    async with yf.Engine(store=sqlite_url(db), handlers={"inc": counted, "slow": counted}, seed=1) as engine:
        [case] = await engine.resume()
        result = await case.result()
    assert sorted(keys[:2]) == in_flight and len(keys) == 3  # both again, then c
    assert result.data == expected.data
    def steps(trace: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((r["event"], r["task"], r["item"]) for r in trace)

    assert steps(result.trace) == steps(expected.trace)


async def test_reconcile_settles_an_in_doubt_item_without_running_it_again(db: Path) -> None:
    spec = yf.loads(AUTO)
    entered = anyio.Event()
    asked: list[str] = []
    ran: list[str] = []

    async def stuck(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        entered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    def slow(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        ran.append(ctx.idempotency_key)
        return {"slow": "ran"}

    def reconcile(key: str) -> dict[str, Any] | None:
        asked.append(key)
        return {"slow": "reconciled"}

    async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc, "slow": stuck}) as engine:
        case = await engine.start(spec, {"n": 0})
        await entered.wait()
        case_id = case.id
    async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc}) as engine:
        engine.handlers.register("slow", slow, reconcile=reconcile)
        [case] = await engine.resume()
        result = await case.result()
    assert ran == []
    assert len(asked) == 1 and asked[0].startswith(f"{case_id}/")
    assert result.status == "completed"
    assert result.data["slow"] == "reconciled"
    done = [r for r in result.trace if r["event"] == "item.completed" and r["task"] == "slow"]
    assert [r["data"] for r in done] == [{"slow": "reconciled"}]


class Payments:
    """A handler object whose reconcile is a method (found without ``reconcile=``)."""

    def __init__(self, answer: Any = None, fail: bool = False) -> None:
        self.answer = answer
        self.fail = fail
        self.runs: list[str] = []
        self.asked: list[str] = []

    async def __call__(self, data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        self.runs.append(ctx.idempotency_key)
        return {"slow": "ran"}

    async def reconcile(self, key: str) -> Any:
        self.asked.append(key)
        if self.fail:
            raise ConnectionError("the payment service is down")
        return self.answer


@pytest.mark.parametrize(("answer", "fail"), [(None, False), (None, True), ("not a mapping", False)])
async def test_an_unsettled_reconcile_runs_the_item_again(db: Path, caplog: pytest.LogCaptureFixture,
                                                          answer: Any, fail: bool) -> None:
    spec = yf.loads(AUTO)
    entered = anyio.Event()

    async def stuck(data: dict[str, Any]) -> None:
        entered.set()
        await anyio.sleep_forever()

    async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc, "slow": stuck}) as engine:
        await engine.start(spec)
        await entered.wait()
    payments = Payments(answer, fail)
    with caplog.at_level(logging.WARNING, logger="yawlflow"):
        async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc, "slow": payments}) as engine:
            [case] = await engine.resume()
            result = await case.result()
    assert len(payments.asked) == 1
    assert payments.runs == payments.asked
    assert result.data["slow"] == "ran"
    if fail or answer is not None:
        assert any("running the item again" in r.getMessage() for r in caplog.records)


async def test_timers_fire_at_their_recorded_deadlines(db: Path) -> None:
    spec = yf.loads(APPROVE_OR_EXPIRE)
    clock = FakeClock()
    async with yf.Engine(store=sqlite_url(db), clock=clock, handlers={"inc": inc}) as engine:
        case = await engine.start(spec)
        await clock.advance(4)
        case_id = case.id
        assert case.status == "running"
    # the same clock (one process): 6 s are left
    async with yf.Engine(store=sqlite_url(db), clock=clock, handlers={"inc": inc}) as engine:
        [case] = await engine.resume()
        await clock.advance(5.9)
        assert case.status == "running"
        await clock.advance(0.2)
        result = await case.result()
    assert result.status == "completed"
    assert [r["task"] for r in result.trace if r["event"] == "item.completed"] == ["a", "expire"]
    assert case_id == result.case_id


async def test_a_deadline_from_another_clock_is_never_later_than_one_full_delay(db: Path) -> None:
    spec = yf.loads(APPROVE_OR_EXPIRE)
    late = FakeClock(start=10_000)
    async with yf.Engine(store=sqlite_url(db), clock=late, handlers={"inc": inc}) as engine:
        await engine.start(spec)
    fresh = FakeClock()  # e.g. a monotonic clock after a reboot: far behind the recorded deadline
    async with yf.Engine(store=sqlite_url(db), clock=fresh, handlers={"inc": inc}) as engine:
        [case] = await engine.resume()
        await fresh.advance(10)
        assert (await case.result()).status == "completed"


async def test_a_sub_case_is_reattached_and_reports_to_its_parent(db: Path) -> None:
    spec = yf.loads(NESTED_WITH_EXTERNALS)

    async def drive(case: yf.Case) -> None:
        await complete_offered(case, "y", {"y": 1})
        await complete_offered(case, "b", {"b": 1})

    async with yf.Engine(seed=5, handlers={"inc": inc}) as engine:
        straight = await engine.start(spec, {"n": 0})
        await drive(straight)
        expected = await straight.result()

    async with yf.Engine(store=sqlite_url(db), seed=5, handlers={"inc": inc}) as engine:
        case = await engine.start(spec, {"n": 0})
        await case.idle()
        before = case.trace
        sub_ids = [r.case for r in await engine.cases() if r.parent == case.id]
    assert len(sub_ids) == 1

    async with yf.Engine(store=sqlite_url(db), seed=5, handlers={"inc": inc}) as engine:
        [case] = await engine.resume()
        assert case.trace == before
        sub = engine.case(sub_ids[0])
        assert sub._parent is case and case._children[sub._parent_item or 0] is sub
        assert [i.task for i in sub.work_items("offered")] == ["y"]
        await drive(case)
        result = await case.result()
        assert sub.status == "completed"
    assert result.data == expected.data
    assert result.trace == expected.trace


async def test_a_dormant_case_waits_for_resume(db: Path) -> None:
    spec = yf.loads(AUTO)
    entered = anyio.Event()
    runs: list[str] = []

    async def stuck(data: dict[str, Any]) -> None:
        entered.set()
        await anyio.sleep_forever()

    def slow(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        runs.append(ctx.idempotency_key)
        return {}

    async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc, "slow": stuck}) as engine:
        case_id = (await engine.start(spec)).id
        await entered.wait()
    async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc, "slow": slow}) as engine:
        case = engine.case(case_id)  # folded back, dormant: its in-flight item is not run yet
        assert case.status == "running"
        assert [i.task for i in case.work_items("started")] == ["slow"]
        await anyio.wait_all_tasks_blocked()
        assert runs == []
        assert await engine.resume() == [case]
        assert (await case.result()).status == "completed"
        assert len(runs) == 1


async def test_a_dormant_case_can_be_cancelled_without_running_anything(db: Path) -> None:
    spec = yf.loads(NESTED_WITH_EXTERNALS)
    async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc}) as engine:
        case = await engine.start(spec)
        await case.idle()  # x ran in the sub-case; y and b are offered
        case_id = case.id
    async with yf.Engine(store=sqlite_url(db)) as engine:  # no handlers: nothing may run
        case = engine.case(case_id)
        await case.cancel()
        assert case.status == "cancelled"
        statuses = {r.case: r.status for r in await engine.cases()}
    assert set(statuses.values()) == {"cancelled"}
    assert len(statuses) == 2  # the sub-case went with it
