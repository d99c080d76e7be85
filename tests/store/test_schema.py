"""The schema: versioned, migrated on open, newer and foreign files refused with a clear error."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from kit import downgrade_to_schema_2, rec

import yawlflow as yf
from yawlflow import _sqlite
from yawlflow._events import CaseStarted, ItemCompleted
from yawlflow._provenance import verify
from yawlflow._sqlite import APPLICATION_ID, MIGRATIONS, Migration, SqliteStore, schema_version

Opener = Callable[..., SqliteStore]
Raw = Callable[..., sqlite3.Connection]
LATEST = schema_version()
NEXT = LATEST + 1  # the hypothetical migrations below come after the current schema


def v1_store(path: Path, spec: yf.Spec) -> None:
    """A store as this release writes it: one finished case, one running."""
    with SqliteStore(path) as store:
        store.create(rec("done"), spec)
        store.append("done", CaseStarted(case="done", net="main"))
        store.set_status("done", "completed")
        store.create(rec("running"), spec)
        store.append("running", CaseStarted(case="running", net="main"))


def test_a_new_store_gets_the_current_schema(open_store: Opener, raw: Raw) -> None:
    open_store().close()
    conn = raw()
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(LATEST) == "3"
    assert conn.execute("SELECT value FROM meta WHERE key = 'migration.1'").fetchone()[0].startswith(
        "the initial schema")
    assert conn.execute("SELECT value FROM meta WHERE key = 'migration.2'").fetchone()[0].startswith(
        "events keep the wall-clock time")
    assert conn.execute("SELECT value FROM meta WHERE key = 'migration.3'").fetchone()[0].startswith(
        "published specs")
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "specs", "cases", "events", "snapshots", "published"} <= tables


def test_a_schema_2_store_migrates_keeps_its_cases_and_verifies(db_path: Path, spec: yf.Spec,
                                                                other_spec: yf.Spec, tmp_path: Path,
                                                                raw: Raw) -> None:
    v1_store(db_path, spec)
    with SqliteStore(db_path) as store:
        hashes = store.head("running")
    downgrade_to_schema_2(db_path)
    v2 = tmp_path / "v2.db"  # the file schema 2 creates has the same tables
    conn = sqlite3.connect(v2, isolation_level=None)
    for step in MIGRATIONS[:2]:
        for statement in step.statements:
            conn.execute(statement)
    conn.close()
    assert schema_of(db_path) == schema_of(v2)
    with pytest.raises(yf.StoreError, match=f"version 2, this yawlflow's is {LATEST}; open it for writing once"):
        SqliteStore(db_path, readonly=True)

    with SqliteStore(db_path) as store:  # migrates
        assert store.published_specs() == []
        assert store.head("running") == hashes  # old records keep their hashes
        assert store.spec_of("running") == spec
        store.publish_spec("acme", other_spec)
        store.append("running", ItemCompleted(item=1))  # its case goes on
    assert raw().execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(LATEST)
    assert {(kind, name) for kind, name, _ in schema_of(db_path) - schema_of(v2)} == {("table", "published"),
                                                                                       ("index", "published_key")}
    with SqliteStore(db_path, readonly=True) as store:
        assert store.published_specs() == [("acme", other_spec)]
        assert [r.status for r in store.records()] == ["completed", "running"]
    assert verify(db_path) == []


def schema_of(path: Path) -> set[tuple[str, str, str | None]]:
    """A file's tables, indexes and triggers, with the SQL that made them."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return set(conn.execute("SELECT type, name, sql FROM sqlite_master"))
    finally:
        conn.close()


def test_an_empty_file_becomes_a_store(db_path: Path, open_store: Opener) -> None:
    db_path.write_bytes(b"")
    assert open_store().records() == []


def test_opening_an_older_store_runs_the_newer_migrations_in_order(
    db_path: Path, spec: yf.Spec, monkeypatch: pytest.MonkeyPatch, raw: Raw
) -> None:
    v1_store(db_path, spec)
    ran: list[int] = []

    def backfill(conn: sqlite3.Connection) -> None:
        ran.append(NEXT + 1)
        conn.execute("UPDATE cases SET priority = 5 WHERE status = 'running'")

    newer = [*MIGRATIONS,
             Migration(NEXT, "cases get a priority",
                       ("ALTER TABLE cases ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
                        "CREATE INDEX cases_by_priority ON cases (priority)")),
             Migration(NEXT + 1, "running cases get priority 5", run=backfill)]
    monkeypatch.setattr(_sqlite, "MIGRATIONS", newer)
    with SqliteStore(db_path) as store:
        assert [r.status for r in store.records()] == ["completed", "running"]
        store.append("running", ItemCompleted(item=1))  # its case goes on
        store.set_status("running", "completed")
    assert ran == [NEXT + 1]
    conn = raw()
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(NEXT + 1)
    assert conn.execute("SELECT id, priority FROM cases ORDER BY key").fetchall() == [("done", 0), ("running", 5)]
    assert conn.execute("SELECT value FROM meta WHERE key = ?", (f"migration.{NEXT}",)).fetchone()[0].startswith(
        "cases get")
    assert verify(db_path) == []
    with SqliteStore(db_path) as store:  # opening again migrates nothing
        assert len(store.events("running")) == 2
    assert ran == [NEXT + 1]


def test_a_failed_migration_leaves_the_older_version_whole(
    db_path: Path, spec: yf.Spec, monkeypatch: pytest.MonkeyPatch, raw: Raw
) -> None:
    v1_store(db_path, spec)
    newer = [*MIGRATIONS,
             Migration(NEXT, "good", ("CREATE TABLE extra (x)",)),
             Migration(NEXT + 1, "bad", ("CREATE TABLE more (y)", "INSERT INTO no_such_table VALUES (1)"))]
    monkeypatch.setattr(_sqlite, "MIGRATIONS", newer)
    with pytest.raises(yf.StoreError,
                       match=rf"from version {NEXT} to {NEXT + 1} failed: no such table.*left at version {NEXT}, unch"):
        SqliteStore(db_path)
    conn = raw()
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(NEXT)
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "extra" in tables and "more" not in tables
    monkeypatch.setattr(_sqlite, "MIGRATIONS", newer[:-1])
    with SqliteStore(db_path) as store:  # nothing left to do, and the lock was released
        assert len(store.records()) == 2


def test_a_store_from_a_newer_schema_is_refused_naming_both_versions(db_path: Path, spec: yf.Spec, raw: Raw) -> None:
    v1_store(db_path, spec)
    raw().execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    for _ in range(2):  # and the failed open released its lock
        with pytest.raises(yf.StoreError) as info:
            SqliteStore(db_path)
        message = str(info.value)
        assert str(db_path) in message
        assert "version 7" in message and f"up to {LATEST}" in message and "upgrade yawlflow" in message
    with pytest.raises(yf.StoreError, match="version 7"):
        SqliteStore(db_path, readonly=True)


def test_reading_an_older_store_read_only_asks_for_a_migration(
    db_path: Path, spec: yf.Spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1_store(db_path, spec)
    monkeypatch.setattr(_sqlite, "MIGRATIONS", [*MIGRATIONS, Migration(NEXT, "noop")])
    with pytest.raises(yf.StoreError, match=f"version {LATEST}, this yawlflow's is {NEXT}; open it for writing once"):
        SqliteStore(db_path, readonly=True)


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(db_path: Path) -> None:
    content = b"PK\x03\x04 this is a zip, not a database" * 4
    db_path.write_bytes(content)
    with pytest.raises(yf.StoreError) as info:
        SqliteStore(db_path)
    message = str(info.value)
    assert str(db_path) in message and "not an SQLite database" in message and "give the path" in message
    assert db_path.read_bytes() == content


def test_a_foreign_sqlite_database_is_refused_and_left_alone(db_path: Path, raw: Raw) -> None:
    conn = raw()
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.close()
    before = db_path.read_bytes()
    with pytest.raises(yf.StoreError) as info:
        SqliteStore(db_path)
    message = str(info.value)
    assert str(db_path) in message
    assert "not a yawlflow store" in message and "customers, invoices" in message and "move this file away" in message
    assert db_path.read_bytes() == before  # not even switched to WAL
    assert raw().execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_store_missing_its_meta_is_called_damaged(db_path: Path, open_store: Opener, raw: Raw) -> None:
    open_store().close()
    raw().execute("DROP TABLE meta")
    with pytest.raises(yf.StoreError, match=r"without its meta table.*damaged"):
        SqliteStore(db_path)


def test_bad_places(tmp_path: Path) -> None:
    with pytest.raises(yf.StoreError, match="that is a directory"):
        SqliteStore(tmp_path)
    with pytest.raises(yf.StoreError, match=r"the folder .*missing.* does not exist"):
        SqliteStore(tmp_path / "missing" / "cases.db")
