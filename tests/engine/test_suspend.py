"""The lifecycle of a case (issue 6, item 6): created -> running <-> suspended -> completed |
cancelled | failed. A suspended case starts nothing new (no handler, no timer) and keeps its
offered items, which cannot be started or completed until it is resumed; handlers already running
finish. The suspension is persisted: a case suspended when its engine stopped is suspended after a
restart. Items can be suspended one by one too. Spec versions: a case goes on with the version it
started with; new cases take the new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from kit import APPROVE_OR_EXPIRE

import yawlflow as yf
from yawlflow.cli import main
from yawlflow.testing import FakeClock

pytestmark = pytest.mark.anyio

CHAIN = """
yawlflow: 1
id: chain
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: slow, flows: [b]}
      b: {run: count, flows: [c]}
      c: {external: true, flows: [end]}
"""

OFFER = """
yawlflow: 1
id: offer
nets:
  main:
    input: start
    output: end
    tasks:
      approve: {external: true, flows: [after]}
      after: {run: count, flows: [end]}
"""

NESTED = """
yawlflow: 1
id: nested
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      sub: {net: inner, flows: [end]}
  inner:
    input: s
    output: e
    tasks:
      x: {external: true, flows: [y]}
      y: {run: count, flows: [e]}
"""


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {"count": self.calls}


def only(case: yf.Case, task: str, state: str = "offered") -> yf.WorkItem:
    [item] = [i for i in case.work_items(state=state) if i.task == task]
    return item


async def test_a_suspended_case_finishes_running_handlers_but_starts_nothing_new() -> None:
    gate = anyio.Event()
    count = Counter()

    async def slow(data: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()
        return {"slow": True}

    async with yf.Engine(handlers={"slow": slow, "count": count}) as engine:
        case = await engine.start(yf.loads(CHAIN))
        await anyio.wait_all_tasks_blocked()
        await case.suspend()
        assert case.status == "suspended"
        gate.set()
        await case.idle()
        assert case.data == {"slow": True}  # a's result was applied ...
        assert count.calls == 0  # ... but b, which it enabled, did not start
        assert not case.work_items(state="offered")
        await case.resume()
        assert case.status == "running"
        await case.idle()
        assert count.calls == 1
        await case.complete(only(case, "c").id)
        result = await case.result()
    assert result.status == "completed"
    assert [r["task"] for r in result.trace if r["event"] == "item.completed"] == ["a", "b", "c"]


async def test_a_suspended_case_keeps_its_offered_items_and_refuses_to_start_or_complete_them() -> None:
    count = Counter()
    async with yf.Engine(handlers={"count": count}) as engine:
        case = await engine.start(yf.loads(OFFER))
        item = only(case, "approve")
        await case.suspend()
        before = case.trace
        with pytest.raises(yf.InvalidEventError, match="is suspended"):
            await case.start_item(item.id)
        with pytest.raises(yf.InvalidEventError, match="is suspended"):
            await case.complete(item.id, {"ok": True})
        with pytest.raises(yf.InvalidEventError, match="is suspended"):
            await case.signal("anything")
        with pytest.raises(yf.InvalidEventError, match="already suspended"):
            await case.suspend()
        assert case.trace == before
        assert only(case, "approve").id == item.id  # still offered
        await case.resume()
        with pytest.raises(yf.InvalidEventError, match="not suspended"):
            await case.resume()
        await case.complete(item.id, {"ok": True})
        result = await case.result()
    assert result.status == "completed"
    assert count.calls == 1


async def test_a_timer_due_while_suspended_fires_on_resume() -> None:
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(yf.loads(APPROVE_OR_EXPIRE))
        await case.suspend()
        await clock.advance(30)
        assert case.status == "suspended"
        assert not [r for r in case.trace if r["task"] == "expire" and r["event"] == "item.completed"]
        await case.resume()
        result = await case.result()
    assert result.status == "completed"
    assert [r["task"] for r in result.trace if r["event"] == "item.completed"] == ["a", "expire"]


async def test_a_suspended_case_can_be_cancelled() -> None:
    async with yf.Engine(handlers={"count": Counter()}) as engine:
        case = await engine.start(yf.loads(OFFER))
        await case.suspend()
        await case.cancel()
        assert (await case.result()).status == "cancelled"
        with pytest.raises(yf.InvalidEventError, match="has ended"):
            await case.resume()


async def test_suspending_a_case_suspends_its_sub_cases() -> None:
    count = Counter()
    async with yf.Engine(handlers={"count": count}) as engine:
        case = await engine.start(yf.loads(NESTED))
        [sub] = [c for c in case._children.values()]
        await case.suspend()
        assert sub.status == "suspended"
        with pytest.raises(yf.InvalidEventError, match="is suspended"):
            await sub.complete(only(sub, "x").id)
        await case.resume()
        assert sub.status == "running"
        await sub.complete(only(sub, "x").id)
        result = await case.result()
    assert result.status == "completed"
    assert count.calls == 1


async def test_the_suspension_is_persisted_and_held_work_starts_after_resume(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    gate = anyio.Event()
    count = Counter()

    async def slow(data: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()
        return {"slow": True}

    async with yf.Engine(store=store, handlers={"slow": slow, "count": count}) as engine:
        case = await engine.start(yf.loads(CHAIN))
        case_id = case.id
        await case.suspend()
        gate.set()
        await case.idle()
        assert [r.status for r in await engine.cases()] == ["suspended"]
    assert count.calls == 0
    async with yf.Engine(store=store, handlers={"slow": slow, "count": count}) as engine:
        [case] = await engine.resume()
        assert case.id == case_id
        assert case.status == "suspended"
        await case.idle()
        assert count.calls == 0  # b is held: the case is still suspended
        await case.resume()
        await case.idle()
        assert count.calls == 1
        assert [r.status for r in await engine.cases()] == ["running"]
        await case.complete(only(case, "c").id)
        assert (await case.result()).status == "completed"


async def test_one_item_can_be_suspended_and_resumed() -> None:
    async with yf.Engine(handlers={"count": Counter()}) as engine:
        case = await engine.start(yf.loads(OFFER))
        item = only(case, "approve")
        await case.suspend_item(item.id)
        assert only(case, "approve").suspended
        with pytest.raises(yf.InvalidEventError, match=r"item \d+ \('approve'\) is suspended"):
            await case.complete(item.id)
        with pytest.raises(yf.InvalidEventError, match="already suspended"):
            await case.suspend_item(item.id)
        await case.resume_item(item.id)
        assert not only(case, "approve").suspended
        with pytest.raises(yf.InvalidEventError, match="not suspended"):
            await case.resume_item(item.id)
        await case.complete(item.id)
        assert (await case.result()).status == "completed"


async def test_a_running_handler_cannot_be_suspended_alone() -> None:
    gate = anyio.Event()

    async def slow(data: dict[str, Any]) -> None:
        await gate.wait()

    async with yf.Engine(handlers={"slow": slow, "count": Counter()}) as engine:
        case = await engine.start(yf.loads(CHAIN))
        await anyio.wait_all_tasks_blocked()
        running = only(case, "a", "started")
        with pytest.raises(yf.InvalidEventError, match="is running its handler"):
            await case.suspend_item(running.id)
        gate.set()
        await case.idle()
        assert only(case, "c").task == "c"


async def test_a_running_case_goes_on_with_its_own_spec_version_and_new_cases_take_the_new_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    v1 = yf.loads(OFFER)
    v2 = yf.loads(OFFER.replace("after: {run: count, flows: [end]}", "after: {run: count, flows: [extra]}\n"
                                "      extra: {run: count, flows: [end]}"))
    count = Counter()
    async with yf.Engine(store=store, handlers={"count": count}) as engine:
        old = await engine.start(v1)
    async with yf.Engine(store=store, handlers={"count": count}) as engine:
        [old] = await engine.resume()
        new = await engine.start(v2)  # the same spec id, a new version
        for case in (old, new):
            await case.complete(only(case, "approve").id)
        old_result, new_result = await old.result(), await new.result()
    done = [r["task"] for r in old_result.trace if r["event"] == "item.completed"]
    assert done == ["approve", "after"]  # v1 has no `extra`
    assert [r["task"] for r in new_result.trace if r["event"] == "item.completed"] == ["approve", "after", "extra"]
    assert main(["cases", "list", "--store", store, "--json"]) == 0
    rows = {r["case"]: r for r in orjson.loads(capsys.readouterr().out)}
    assert rows[old.id]["spec_id"] == rows[new.id]["spec_id"] == "offer"
    assert rows[old.id]["version"] != rows[new.id]["version"]
