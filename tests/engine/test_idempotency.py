"""Exactly-once API (issue 6, item 4): ``complete``, ``start_item``, ``signal``, ``cancel_item`` and
``Engine.start`` take an idempotency key; a repeated call with the same key changes nothing and
returns as the first did (after a restart too: the keys are in the case's log); a key reused for
another call is refused; a late call for a withdrawn, cancelled or completed item is a clear error
that changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from kit import sqlite_url

import yawlflow as yf

pytestmark = pytest.mark.anyio

TWO_STEPS = """
yawlflow: 1
id: two
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, flows: [b]}
      b: {external: true, flows: [end]}
"""

CHOICE = """
yawlflow: 1
id: choice
nets:
  main:
    input: start
    output: end
    conditions:
      pick: {flows: [left, right]}
    tasks:
      go: {flows: [pick]}
      left: {external: true, flows: [end]}
      right: {external: true, flows: [end]}
"""

SIGNALLED = """
yawlflow: 1
id: signalled
nets:
  main:
    input: start
    output: end
    tasks:
      wait: {trigger: {signal: paid, persistent: true}, flows: [done]}
      done: {external: true, flows: [end]}
"""


def offered(case: yf.Case, task: str) -> yf.WorkItem:
    [item] = [i for i in case.work_items(state="offered") if i.task == task]
    return item


async def test_a_repeated_complete_with_the_same_key_changes_nothing() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(TWO_STEPS))
        a = offered(case, "a")
        assert await case.complete(a.id, {"x": 1}, key="k-1") is None
        after_first = case.trace
        assert await case.complete(a.id, {"x": 1}, key="k-1") is None  # the retry of a lost answer
        assert case.trace == after_first
        assert [r["task"] for r in case.trace if r["event"] == "item.completed"] == ["a"]
        # the same call without a key is not a repeat: the item is gone, and the error says so
        with pytest.raises(yf.InvalidEventError, match=r"item \d+ \('a'\) has already completed"):
            await case.complete(a.id, {"x": 1})
        assert case.trace == after_first


async def test_a_key_reused_for_another_call_is_refused_and_changes_nothing() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(TWO_STEPS))
        a = offered(case, "a")
        await case.complete(a.id, {"x": 1}, key="k-1")
        b = offered(case, "b")
        before = case.trace
        with pytest.raises(yf.InvalidEventError, match="idempotency key 'k-1' was used for another call"):
            await case.complete(b.id, {"x": 1}, key="k-1")  # another item
        with pytest.raises(yf.InvalidEventError, match="idempotency key 'k-1'"):
            await case.complete(a.id, {"x": 2}, key="k-1")  # other data
        assert case.trace == before
        assert offered(case, "b").id == b.id


async def test_start_item_and_cancel_item_with_a_key_are_applied_once() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(TWO_STEPS))
        a = offered(case, "a")
        await case.start_item(a.id, key="s")
        await case.start_item(a.id, key="s")  # without the key this would be "started, not offered"
        assert [r["event"] for r in case.trace if r["item"] == a.id].count("item.started") == 1
        with pytest.raises(yf.InvalidEventError, match="is started, not offered"):
            await case.start_item(a.id)
        await case.complete(a.id)
        b = offered(case, "b")
        await case.cancel_item(b.id, key="c")
        await case.cancel_item(b.id, key="c")
        assert [r["event"] for r in case.trace if r["item"] == b.id].count("item.cancelled") == 1


async def test_a_repeated_signal_with_the_same_key_is_received_once() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(SIGNALLED))
        await case.signal("paid", {"ref": "x1"}, key="pay-x1")
        await case.signal("paid", {"ref": "x1"}, key="pay-x1")
        assert [r["event"] for r in case.trace].count("signal.received") == 1
        with pytest.raises(yf.InvalidEventError, match="idempotency key 'pay-x1'"):
            await case.signal("paid", {"ref": "x2"}, key="pay-x1")
        done = offered(case, "done").id
        await case.complete(done, key="done")
        # the case has ended: a repeat of an acknowledged call still answers as the first did
        await case.signal("paid", {"ref": "x1"}, key="pay-x1")
        await case.complete(done, key="done")
        with pytest.raises(yf.InvalidEventError, match="has ended"):
            await case.complete(done)
        result = await case.result()
    assert result.status == "completed"
    assert [r["event"] for r in result.trace].count("signal.received") == 1


async def test_keys_survive_a_restart_of_a_durable_store(db: Path) -> None:
    spec = yf.loads(TWO_STEPS)
    async with yf.Engine(store=sqlite_url(db)) as engine:
        case = await engine.start(spec, key="order-17")
        case_id = case.id
        a = offered(case, "a")
        await case.complete(a.id, {"x": 1}, key="complete-a")
        trace = case.trace
    async with yf.Engine(store=sqlite_url(db)) as engine:
        again = await engine.start(spec, key="order-17")  # the caller never saw the first answer
        assert again.id == case_id
        await engine.resume()
        case = engine.case(case_id)
        await case.complete(a.id, {"x": 1}, key="complete-a")
        assert case.trace == trace
        with pytest.raises(yf.InvalidEventError, match="idempotency key 'complete-a'"):
            await case.complete(a.id, {"x": 9}, key="complete-a")
        await case.complete(offered(case, "b").id, {"y": 2}, key="complete-b")
        result = await case.result()
        assert [r.case for r in await engine.cases()] == [case_id]
    assert result.status == "completed"
    assert result.data == {"x": 1, "y": 2}


async def test_a_concurrent_repeat_of_a_durable_start_answers_once_the_first_step_is_applied(db: Path) -> None:
    # The repeat must not answer with a case that has not taken its first step (no offered items,
    # an empty trace). The store holds the first start just after its commit until every task
    # waits: the repeat, finding the start on disk, would answer there and then.
    spec = yf.loads(TWO_STEPS)
    async with yf.Engine(store=sqlite_url(db)) as engine:
        store = engine.store
        real, gate, calls = store.durable, anyio.Event(), [0]

        async def durable() -> None:
            calls[0] += 1
            first = calls[0] == 1
            await real()
            if first:
                await gate.wait()

        seen: list[tuple[str, list[str]]] = []

        async def start() -> None:
            case = await engine.start(spec, key="order-1")
            seen.append((case.id, [i.task for i in case.work_items()]))

        async def release() -> None:
            await anyio.wait_all_tasks_blocked()
            gate.set()

        store.durable = durable  # type: ignore[method-assign]
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(start)
                tg.start_soon(start)
                tg.start_soon(release)
        finally:
            store.durable = real  # type: ignore[method-assign]
        (first, items), (again, items_again) = seen
        assert again == first
        assert items == items_again == ["a"]


async def test_a_start_key_names_one_case_per_tenant_and_spec() -> None:
    async with yf.Engine() as engine:
        first = await engine.start(yf.loads(TWO_STEPS), {"n": 1}, key="k")
        second = await engine.start(yf.loads(TWO_STEPS), {"n": 2}, key="k")
        assert second is first
        assert first.data == {"n": 1}  # the repeat's data is not applied
        other_tenant = await engine.start(yf.loads(TWO_STEPS), key="k", tenant="acme")
        assert other_tenant.id != first.id
        with pytest.raises(yf.InvalidEventError, match=r"started case .* of spec 'two', not of 'choice'"):
            await engine.start(yf.loads(CHOICE), key="k")
        assert len(await engine.cases()) == 2


async def test_late_calls_for_withdrawn_or_cancelled_items_name_what_happened() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(CHOICE))
        left, right = offered(case, "left"), offered(case, "right")
        await case.complete(left.id, {"side": "left"})
        before = case.trace
        with pytest.raises(yf.InvalidEventError, match=r"item \d+ \('right'\) was withdrawn or cancelled"):
            await case.complete(right.id, {"side": "right"})
        with pytest.raises(yf.InvalidEventError, match=r"was withdrawn or cancelled"):
            await case.start_item(right.id)
        with pytest.raises(yf.InvalidEventError, match=r"no live item 999"):
            await case.cancel_item(999)
        assert case.trace == before
        assert case.data == {"side": "left"}


@pytest.mark.parametrize("key", ["", 7, "x" * 201, b"bytes"])
async def test_a_bad_key_is_refused_before_anything_changes(key: Any) -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(TWO_STEPS))
        before = case.trace
        with pytest.raises(yf.InvalidEventError, match="idempotency key must be a non-empty string"):
            await case.complete(offered(case, "a").id, key=key)
        with pytest.raises(yf.InvalidEventError, match="idempotency key must be a non-empty string"):
            await engine.start(yf.loads(TWO_STEPS), key=key)
        assert case.trace == before
        assert len(await engine.cases()) == 1


async def test_a_durable_engine_forgets_finished_cases_and_reads_them_back(db: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # a server runs for days: the engine must not hold every case it ever ran
    from yawlflow import _engine

    monkeypatch.setattr(_engine, "KEEP_FINISHED", 8)
    spec = yf.loads(TWO_STEPS)
    async with yf.Engine(store=sqlite_url(db)) as engine:
        engine._sweep_at = 8
        waiting = await engine.start(spec, key="waits")
        ended: dict[str, list[dict[str, Any]]] = {}
        a_items: dict[str, int] = {}
        for n in range(30):
            case = await engine.start(spec, key=f"order-{n}")
            a_items[case.id] = offered(case, "a").id
            await case.complete(a_items[case.id], {"n": n}, key=f"a-{n}")
            await case.complete(offered(case, "b").id, {}, key=f"b-{n}")
            ended[case.id] = case.trace
            await anyio.wait_all_tasks_blocked()  # a sweep that was due has run
        held = len(engine._cases)
        assert held < 30  # swept: about twice what a sweep left, never all of them
        assert engine.case(waiting.id) is waiting  # a running case is never forgotten
        for case_id, trace in ended.items():
            again = engine.case(case_id)  # folded back from the store if it was forgotten
            assert again.status == "completed" and again.trace == trace
        first = next(iter(ended))
        same = await engine.start(spec, key="order-0")  # the keys are in the log: still the same case
        assert same.id == first
        await engine.case(first).complete(a_items[first], {"n": 0}, key="a-0")  # a repeat of a call: a no-op
        assert engine.case(first).trace == ended[first]
