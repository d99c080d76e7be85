"""``Store.times``: the wall-clock time of each event, kept beside the hash chain (schema 2), and
derived for the records a schema-1 store wrote before it was migrated."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kit import downgrade_to_schema_1, rec

import yawlflow as yf
from yawlflow import _sqlite
from yawlflow._events import CaseStarted, ItemStarted
from yawlflow._provenance import verify
from yawlflow._sqlite import MIGRATIONS, SqliteStore
from yawlflow._store import MemoryStore, Store

BASE = 1_795_776_287_123_000_000  # 2026-11-27T10:44:47.123Z
MS = 1_000_000


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """The SQLite store's wall clock, made to tick 1 ms per reading from BASE; call it to jump."""
    ticks = itertools.count(BASE, MS)
    state = {"ticks": ticks}
    monkeypatch.setattr(_sqlite, "_wall_ns", lambda: next(state["ticks"]))

    def jump(to: int) -> None:
        state["ticks"] = itertools.count(to, MS)

    return jump


def columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, wall: Callable[[int], None]) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with SqliteStore(tmp_path / "t.db") as sqlite:
        yield sqlite


def test_one_time_per_event_from_a_seq(store: Store, spec: yf.Spec) -> None:
    store.create(rec("c"), spec)
    for event in [CaseStarted(case="c", net="main"), *(ItemStarted(item=i) for i in range(4))]:
        store.append("c", event)
    times = store.times("c")
    assert len(times) == 5 == len(store.events("c"))
    assert times == sorted(times)
    assert store.times("c", 3) == times[3:]
    assert store.times("c", 5) == []
    if isinstance(store, SqliteStore):  # the patched wall clock: create read it first
        assert times == [BASE + k * MS for k in range(1, 6)]
    with pytest.raises(ValueError, match="start must be >= 0"):
        store.times("c", -1)
    with pytest.raises(yf.StoreError, match="no case 'nope'"):
        store.times("nope")


def test_the_wall_clock_is_not_part_of_the_chain(tmp_path: Path, spec: yf.Spec, wall: Callable[[int], None]) -> None:
    path = tmp_path / "c.db"
    with SqliteStore(path) as store:
        store.create(rec("c"), spec)
        store.append("c", CaseStarted(case="c", net="main"))
        head = store.head("c")
    wall(BASE + 3600 * 1000 * MS)
    with SqliteStore(tmp_path / "d.db") as other:  # the same records an hour later: the same hashes
        other.create(rec("c"), spec)
        other.append("c", CaseStarted(case="c", net="main"))
        assert other.head("c") == head
        assert other.times("c") == [BASE + 3600 * 1000 * MS + MS]
    with SqliteStore(path, readonly=True) as store:  # and it survives a reopen
        assert store.times("c") == [BASE + MS]
    assert verify(path) == []


def test_a_schema_1_store_migrates_and_derives_the_times_of_its_older_records(
    tmp_path: Path, spec: yf.Spec, wall: Callable[[int], None]
) -> None:
    path = tmp_path / "old.db"
    with SqliteStore(path) as store:  # created at BASE; the engine's clock reads 100 s, then 102 s
        store.create(rec("c"), spec)
        store.append("c", CaseStarted(case="c", net="main", at_ns=100_000 * MS))
        store.append("c", ItemStarted(item=1, at_ns=102_000 * MS))
        hashes = store.head("c")
    downgrade_to_schema_1(path)
    assert "wall_ns" not in columns(path, "events")
    v1 = tmp_path / "v1.db"  # the file release 1 creates has the same events table
    conn = sqlite3.connect(v1, isolation_level=None)
    for statement in MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.close()
    assert columns(path, "events") == columns(v1, "events")
    with pytest.raises(yf.StoreError, match="version 1, this yawlflow's is 3; open it for writing once"):
        SqliteStore(path, readonly=True)

    wall(BASE + 60_000 * MS)  # the upgraded engine starts a minute later
    with SqliteStore(path) as store:
        assert "wall_ns" in columns(path, "events")
        assert store.head("c") == hashes  # old records keep their hashes
        assert store.times("c") == [BASE, BASE + 2000 * MS]  # created_at + the engine clock's offsets
        store.append("c", ItemStarted(item=2, at_ns=103_000 * MS))
        assert store.times("c") == [BASE, BASE + 2000 * MS, BASE + 60_000 * MS]
        assert store.times("c", 1) == [BASE + 2000 * MS, BASE + 60_000 * MS]
    assert verify(path) == []


def test_derived_times_never_pass_the_first_recorded_one(
    tmp_path: Path, spec: yf.Spec, wall: Callable[[int], None]
) -> None:
    """A schema-1 engine restarted mid-case may have reset its clock: derived times stay in bounds."""
    path = tmp_path / "old.db"
    with SqliteStore(path) as store:
        store.create(rec("c"), spec)
        store.append("c", CaseStarted(case="c", net="main", at_ns=500_000 * MS))
        store.append("c", ItemStarted(item=1, at_ns=10 * MS))  # a new process: its clock began again
        store.append("c", ItemStarted(item=2, at_ns=900_000 * MS))  # far ahead of any wall time
    downgrade_to_schema_1(path)
    wall(BASE + 1000 * MS)
    with SqliteStore(path) as store:
        store.append("c", ItemStarted(item=3, at_ns=0))
        assert store.times("c") == [BASE, BASE, BASE + 1000 * MS, BASE + 1000 * MS]
