"""The engine on the durable store: the same runs as in memory, one writer per file, acknowledged
events on disk, snapshots that fold to the live state, handles on stored cases, poisoned cases."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from kit import inc

import yawlflow as yf
from yawlflow._durable import decode_image, fold_case
from yawlflow._sqlite import SqliteStore
from yawlflow.testing import FakeClock

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

LOOP = """
yawlflow: 1
id: loop
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, loop: {while: "n < 25"}, flows: [b]}
      b: {external: true, flows: [end]}
"""


def url(tmp_path: Path, options: str = "") -> str:
    return f"sqlite:///{tmp_path / 'cases.db'}{options}"


def receive_order(order: dict[str, int]) -> dict[str, int]:
    return {"amount": order["qty"] * 40}


async def check_credit(order: dict[str, int]) -> dict[str, bool]:
    await anyio.sleep(0)
    return {"credit_ok": order["amount"] <= 5_000}


# every example spec: (file, data, handlers, config, external outputs by task)
EXAMPLE_RUNS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]] = [
    ("orders.yaml", {}, {}, {}, {}),
    ("orders_external.yaml", {}, {}, {}, {"approve": {"approved": True}}),
    ("approval.yaml", {"qty": 30}, {"receive_order": receive_order, "check_credit": check_credit}, {},
     {"approve": {"approved_by": "ana"}}),
    ("greet.yaml", {"name": "Ada Lovelace"}, {}, {"handlers": {"allow": ["greetings"]}}, {}),
]


async def run_example(store: str, spec: yf.Spec, data: dict[str, Any], handlers: dict[str, Any],
                      config: dict[str, Any], outputs: dict[str, dict[str, Any]]) -> yf.Result:
    async with yf.Engine(store=store, seed=11, clock=FakeClock(autojump=True), handlers=handlers,
                         config=config) as engine:
        case = await engine.start(spec, data)
        for _ in range(10):
            await case.idle()
            offered = [i for i in case.work_items("offered") if i.task in outputs]
            if case.status != "running" or not offered:
                break
            await case.complete(offered[0].id, outputs[offered[0].task])
        return await case.result()


@pytest.mark.parametrize("example", EXAMPLE_RUNS, ids=lambda e: e[0])
async def test_the_examples_run_the_same_on_sqlite_as_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, example: Any
) -> None:
    name, data, handlers, config, outputs = example
    monkeypatch.setattr(sys, "path", [str(EXAMPLES), *sys.path])
    spec = yf.load(EXAMPLES / name)
    in_memory = await run_example("memory://", spec, data, handlers, config, outputs)
    durable = await run_example(url(tmp_path), spec, data, handlers, config, outputs)
    assert in_memory.status == "completed"
    assert durable == in_memory
    assert yf_verify(tmp_path) == []
    async with yf.Engine(store=url(tmp_path)) as engine:  # and it is all in the file
        stored = engine.case(durable.case_id)
        assert stored.status == "completed"
        assert stored.trace == durable.trace
        assert stored.data == durable.data


def yf_verify(tmp_path: Path) -> list[Any]:
    from yawlflow._provenance import verify

    return verify(tmp_path / "cases.db")


async def test_a_second_engine_on_the_same_file_fails_fast(tmp_path: Path) -> None:
    async with yf.Engine(store=url(tmp_path)) as first:
        with pytest.raises(yf.StoreError) as info:
            async with yf.Engine(store=url(tmp_path)):
                raise AssertionError("the second engine must not start")
        message = str(info.value)
        assert str(tmp_path / "cases.db") in message
        assert f"pid {os.getpid()}" in message
        assert "in use by another engine" in message
        await first.start(yf.loads(LOOP), {"n": 24})  # the first one is unharmed
    async with yf.Engine(store=url(tmp_path)) as second:  # released when the first left
        assert len(await second.cases()) == 1


async def test_the_durable_store_is_open_only_while_the_engine_runs(tmp_path: Path) -> None:
    engine = yf.Engine(store=url(tmp_path), handlers={"inc": inc})
    with pytest.raises(yf.ConfigError, match="open only while the engine runs"):
        _ = engine.store
    async with engine:
        assert isinstance(engine.store, SqliteStore)
        case = await engine.start(yf.loads(LOOP), {"n": 0})
        await case.idle()
    with pytest.raises(yf.ConfigError, match="open only while the engine runs"):
        _ = engine.store
    [offer] = case.work_items("offered")  # the handle stays readable
    with pytest.raises(yf.ConfigError, match=r"engine has stopped.*resume"):
        await case.complete(offer.id, {})
    with pytest.raises(yf.InvalidEventError, match="no case"):
        engine.case(case.id)  # forgotten with the store; a new `async with` folds it back


async def test_an_acknowledged_event_is_on_disk(tmp_path: Path) -> None:
    spec = yf.loads(LOOP)
    async with yf.Engine(store=url(tmp_path), handlers={"inc": inc}) as engine:
        case = await engine.start(spec, {"n": 24})
        await case.idle()
        [offer] = case.work_items("offered")
        await case.complete(offer.id, {"ok": True})
        # Another connection (as another process would) sees the completion, committed: the
        # writer thread's commit returned before complete() did.
        with sqlite3.connect(tmp_path / "cases.db") as raw:
            kinds = [k for (k,) in raw.execute(
                "SELECT kind FROM events e JOIN cases c ON c.key = e.case_key WHERE c.id = ? ORDER BY seq",
                (case.id,))]
            status = raw.execute("SELECT status FROM cases WHERE id = ?", (case.id,)).fetchone()[0]
        assert kinds == ["case_started", "item_completed", "item_completed"]
        assert status == "completed"


async def test_snapshots_fold_to_the_live_state(tmp_path: Path) -> None:
    spec = yf.loads(LOOP)
    async with yf.Engine(store=url(tmp_path, "?snapshot_every=4"), handlers={"inc": inc}) as engine:
        case = await engine.start(spec, {"n": 0})
        await case.idle()
        live = case._state.copy()
        store = engine.store
        assert isinstance(store, SqliteStore)
        events = store.events(case.id)
        snap = store.latest_snapshot(case.id)
        assert snap is not None and 0 < snap.upto_seq < len(events) - 1
        runner, blank = engine._runner_for(case._spec, case.net)
        # the image is the state after its event...
        image, timers = decode_image(snap.state, blank)
        folded = blank.fresh(case.id)
        for event in events[: snap.upto_seq + 1]:
            runner.handle(folded, event)
        assert image == folded
        assert image.snapshot() == folded.snapshot()
        assert timers == {}
        # ...and image + fold(the events after it) is the live state
        for event in events[snap.upto_seq + 1:]:
            runner.handle(image, event)
        assert image == live
        rebuilt = fold_case(store, case.id, runner, blank)
        assert rebuilt.from_snapshot == snap.upto_seq and rebuilt.length == len(events)
        assert rebuilt.state == live
        case_id = case.id
    async with yf.Engine(store=url(tmp_path, "?snapshot_every=4"), handlers={"inc": inc}) as engine:
        [case] = await engine.resume()
        assert case.id == case_id
        assert case._state == live
        await case.complete(case.work_items("offered")[0].id, {})
        assert (await case.result()).data == {"n": 25}


async def test_a_state_that_will_not_encode_is_not_snapshotted(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    spec = yf.loads(LOOP)
    async with yf.Engine(store=url(tmp_path, "?snapshot_every=2"), handlers={"inc": inc}) as engine:
        case = await engine.start(spec, {"n": 25})
        case._state.data["odd"] = complex(1, 2)  # MessagePack has no complex numbers
        with caplog.at_level(logging.INFO, logger="yawlflow"):
            await case.signal("x")
            await case.signal("y")
        assert case.id in engine._no_snapshot
        assert any("no snapshots" in r.getMessage() for r in caplog.records)
        assert engine.store.latest_snapshot(case.id) is None  # the log alone is enough


async def test_a_finished_case_is_a_handle_in_a_new_engine(tmp_path: Path) -> None:
    spec = yf.loads(LOOP)
    async with yf.Engine(store=url(tmp_path), handlers={"inc": inc}) as engine:
        case = await engine.start(spec, {"n": 23})
        await case.idle()
        await case.complete(case.work_items("offered")[0].id, {"done": True})
        done = await case.result()
    async with yf.Engine(store=url(tmp_path)) as engine:
        stored = engine.case(done.case_id)
        assert engine.case(done.case_id) is stored
        assert (await stored.result()) == done
        with pytest.raises(yf.InvalidEventError, match="has ended"):
            await stored.cancel()
        assert await engine.resume() == []


async def test_cases_lists_the_store(tmp_path: Path) -> None:
    spec = yf.loads(LOOP)
    async with yf.Engine(store=url(tmp_path), handlers={"inc": inc}) as engine:
        a = await engine.start(spec, {"n": 25}, tenant="acme")
        b = await engine.start(spec, {"n": 25}, tenant="other")
        await a.cancel()
    async with yf.Engine(store=url(tmp_path)) as engine:
        assert [r.case for r in await engine.cases()] == [a.id, b.id]
        assert [r.case for r in await engine.cases(status="running")] == [b.id]
        assert [r.case for r in await engine.cases(status="cancelled", tenant="acme")] == [a.id]
        assert await engine.cases(tenant="nobody") == []


async def test_published_specs_outlive_the_engine_per_tenant(tmp_path: Path) -> None:
    loop = yf.loads(LOOP)
    mine = yf.loads(LOOP.replace("n < 25", "n < 26"))  # another version of the same id
    async with yf.Engine(store=url(tmp_path), handlers={"inc": inc}) as engine:
        assert await engine.publish(loop) is loop  # every tenant
        assert await engine.publish(mine, tenant="acme") is mine
        orders = await engine.publish(EXAMPLES / "orders.yaml", tenant="acme")  # a path
        with SqliteStore(tmp_path / "cases.db", readonly=True) as reader:  # on disk once it returned
            assert reader.published_specs() == [(None, loop), ("acme", mine), ("acme", orders)]
        assert await engine.published("acme") == {"loop": mine, "orders": orders}
    async with yf.Engine(store=url(tmp_path), handlers={"inc": inc}) as engine:  # a restart
        assert await engine.published("acme") == {"loop": mine, "orders": orders}  # its own win
        assert await engine.published("other") == {"loop": loop}  # never another tenant's
        assert await engine.published() == {"loop": loop}  # those of every tenant
        case = await engine.start((await engine.published("acme"))["loop"], {"n": 25}, tenant="acme")
        await case.idle()
        assert case.data["n"] == 26  # acme's version (while n < 26) ran
        await engine.publish(loop, tenant="acme")  # replaces acme's
        assert await engine.published("acme") == {"loop": loop, "orders": orders}
    async with yf.Engine(store=url(tmp_path)) as engine:
        assert await engine.published("acme") == {"loop": loop, "orders": orders}


async def test_publish_refuses_a_bad_tenant_and_a_stopped_durable_engine(tmp_path: Path) -> None:
    engine = yf.Engine(store=url(tmp_path))
    with pytest.raises(yf.ConfigError, match="open only while the engine runs"):
        await engine.publish(yf.loads(LOOP))
    with pytest.raises(yf.ConfigError, match="open only while the engine runs"):
        await engine.published()
    async with engine:
        with pytest.raises(yf.ConfigError, match="non-empty string"):
            await engine.publish(yf.loads(LOOP), tenant="")
        assert await engine.published() == {}


async def test_the_memory_store_keeps_published_specs_while_the_engine_lives() -> None:
    loop = yf.loads(LOOP)
    async with yf.Engine() as engine:
        await engine.publish(loop, tenant="acme")
        assert await engine.published("acme") == {"loop": loop}
        assert await engine.published("other") == {}
    async with engine:  # the memory store lives with its engine
        assert (await engine.published("acme"))["loop"] is loop


async def test_a_poisoned_case_is_skipped_and_the_others_resume(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    spec = yf.loads(LOOP)
    async with yf.Engine(store=url(tmp_path), handlers={"inc": inc}) as engine:
        bad = await engine.start(spec, {"n": 25})
        good = await engine.start(spec, {"n": 25})
    with sqlite3.connect(tmp_path / "cases.db") as raw:
        raw.execute("DROP TRIGGER events_are_append_only_update")
        raw.execute("UPDATE events SET body = x'c1' WHERE seq = 0 AND case_key = "
                    "(SELECT key FROM cases WHERE id = ?)", (bad.id,))
    with caplog.at_level(logging.ERROR, logger="yawlflow"):
        async with yf.Engine(store=url(tmp_path)) as engine:
            resumed = await engine.resume()
            assert [c.id for c in resumed] == [good.id]
            with pytest.raises(yf.StoreError, match=f"case '{bad.id}', record 0"):
                engine.case(bad.id)
    [logged] = [r for r in caplog.records if "cannot be resumed" in r.getMessage()]
    assert bad.id in logged.getMessage() and "yawlflow verify" in logged.getMessage()


async def test_a_seeded_engine_restarting_on_its_store_draws_fresh_case_ids(tmp_path: Path) -> None:
    spec = yf.loads(LOOP)
    ids: list[str] = []
    for _ in range(2):
        async with yf.Engine(store=url(tmp_path), seed=4, handlers={"inc": inc}) as engine:
            ids.append((await engine.start(spec, {"n": 25})).id)
    assert len(set(ids)) == 2


async def test_the_memory_store_has_nothing_to_resume() -> None:
    async with yf.Engine(handlers={"inc": inc}) as engine:
        case = await engine.start(yf.loads(LOOP), {"n": 25})
        assert await engine.resume() == []
        assert engine.case(case.id) is case
    with pytest.raises(yf.ConfigError, match="not running"):
        await engine.resume()
