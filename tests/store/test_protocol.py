"""The widened Store protocol: what the engine asks of every store, and the store URLs.

``test_contract.py`` checks the semantics the stores share; this file checks the calls the engine
added (reads from a seq, filtered records, one record, snapshots, durability, closing), that the
in-memory store makes the durability calls free, and that ``open_store`` names every store.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from kit import rec

import yawlflow as yf
from yawlflow._events import CaseStarted, ItemStarted
from yawlflow._sqlite import SqliteStore
from yawlflow._store import CaseExistsError, MemoryStore, Snapshot, Store, check_store_url, open_store


@pytest.fixture(params=["memory", "sqlite-thread", "sqlite-inline"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    writer = "thread" if request.param == "sqlite-thread" else "inline"
    sqlite = SqliteStore(tmp_path / "p.db", writer=writer, snapshot_every=3)
    yield sqlite
    sqlite.close()


def test_both_stores_follow_the_protocol(tmp_path: Path) -> None:
    members = [name for name, _ in inspect.getmembers(Store) if not name.startswith("_")]
    with SqliteStore(tmp_path / "x.db") as sqlite:
        for candidate in (MemoryStore(), sqlite):
            missing = [name for name in members if not hasattr(candidate, name)]
            assert missing == [], f"{type(candidate).__name__} lacks {missing}"


def test_events_from_a_seq(store: Store, spec: yf.Spec) -> None:
    store.create(rec("c"), spec)
    events = [CaseStarted(case="c", net="main"), *(ItemStarted(item=i) for i in range(4))]
    for event in events:
        store.append("c", event)
    assert store.events("c", 0) == events
    assert store.events("c", 3) == events[3:]
    assert store.events("c", 5) == []
    with pytest.raises(ValueError, match="start must be >= 0"):
        store.events("c", -1)


def test_records_filter_by_status_and_tenant(store: Store, spec: yf.Spec) -> None:
    store.create(rec("a", tenant="acme"), spec)
    store.create(rec("b", tenant="other"), spec)
    store.create(rec("c", tenant="acme"), spec)
    store.set_status("c", "completed")
    assert [r.case for r in store.records(tenant="acme")] == ["a", "c"]
    assert [r.case for r in store.records(status="running")] == ["a", "b"]
    assert [r.case for r in store.records(status="completed", tenant="acme")] == ["c"]
    assert store.records(status="failed") == []


def test_record_of_one_case(store: Store, spec: yf.Spec) -> None:
    store.create(rec("a", tenant="t", parent=None), spec)
    store.set_status("a", "cancelled")
    assert store.record("a") == rec("a", tenant="t", status="cancelled")
    with pytest.raises(yf.StoreError, match="no case 'nope'"):
        store.record("nope")


def test_a_duplicate_id_is_a_case_exists_error(store: Store, spec: yf.Spec) -> None:
    store.create(rec("a"), spec)
    with pytest.raises(CaseExistsError, match="'a' already exists"):
        store.create(rec("a"), spec)
    assert issubclass(CaseExistsError, yf.StoreError)


def test_snapshots(store: Store, spec: yf.Spec) -> None:
    store.create(rec("c"), spec)
    for i in range(4):
        store.append("c", ItemStarted(item=i))
    if store.snapshot_every == 0:  # the memory store keeps none: a fold of its log is as fast
        assert not store.needs_snapshot("c")
        store.snapshot("c", b"ignored", 2)
        assert store.latest_snapshot("c") is None
        return
    assert store.needs_snapshot("c")
    store.snapshot("c", b"after 2", 2)
    assert not store.needs_snapshot("c")
    assert store.latest_snapshot("c") == Snapshot(2, b"after 2")


def test_durability_calls(store: Store, spec: yf.Spec) -> None:
    store.create(rec("c"), spec)
    store.append("c", ItemStarted(item=1))
    store.flush()
    anyio.run(store.durable)
    assert store.events("c") == [ItemStarted(item=1)]


def test_the_memory_store_never_yields_for_durability() -> None:
    # awaiting durable() must not be a checkpoint: drive the coroutine by hand, it finishes at once
    coro = MemoryStore().durable()
    with pytest.raises(StopIteration):
        coro.send(None)
    coro = MemoryStore().aclose()
    with pytest.raises(StopIteration):
        coro.send(None)


def test_the_memory_store_stays_readable_after_close(spec: yf.Spec) -> None:
    store = MemoryStore()
    store.create(rec("c"), spec)
    store.close()
    store.append("c", ItemStarted(item=1))  # an engine may be entered again on it
    assert store.records() == [rec("c")]


def test_open_store_names_each_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///rel.db?snapshot_every=7")
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == Path("rel.db") or store.path.name == "rel.db"
        assert store.snapshot_every == 7
    finally:
        store.close()
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db")
    absolute.close()
    assert (tmp_path / "abs.db").exists()
    reader = open_store(f"sqlite:///{tmp_path}/abs.db", readonly=True)
    try:
        assert isinstance(reader, SqliteStore) and reader.readonly
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x", "unknown store URL"),
        ("cases.db", "write 'sqlite:///cases.db'"),
        ("sqlite://cases.db", "three slashes"),
        ("postgresql://localhost/db?snapshot_every=x", "snapshot_every must be a whole number"),
        (42, "must be a URL string"),
    ],
)
def test_bad_store_urls_say_what_to_write(url: Any, message: str) -> None:
    with pytest.raises(yf.ConfigError, match=message):
        check_store_url(url)
    with pytest.raises(yf.ConfigError, match=message):
        yf.Engine(store=url)


def test_a_bad_option_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(yf.ConfigError, match="unknown option 'fast'"):
        open_store(f"sqlite:///{tmp_path}/x.db?fast=1")
