"""Fixtures for the store tests: specs, database paths, raw access to a store's file, and faults."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import yawlflow as yf
from yawlflow._sqlite import SqliteStore
from yawlflow._store import CaseRecord

SEQ = """
yawlflow: 1
id: seq
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, flows: [b]}
      b: {external: true, flows: [end]}
"""

OTHER = SEQ.replace("external: true", "run: inc")


@pytest.fixture
def spec() -> yf.Spec:
    """A small spec."""
    return yf.loads(SEQ)


@pytest.fixture
def other_spec() -> yf.Spec:
    """Another version of the same spec id."""
    return yf.loads(OTHER)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's store lives."""
    return tmp_path / "cases.db"


@pytest.fixture
def open_store(db_path: Path) -> Iterator[Callable[..., SqliteStore]]:
    """Open SqliteStores (on ``db_path`` unless told otherwise); each is closed at teardown."""
    opened: list[SqliteStore] = []

    def opener(path: Path | None = None, **options: Any) -> SqliteStore:
        store = SqliteStore(path or db_path, **options)
        opened.append(store)
        return store

    yield opener
    for store in reversed(opened):
        with contextlib.suppress(yf.StoreError):
            store.close()


@pytest.fixture
def raw(db_path: Path) -> Iterator[Callable[..., sqlite3.Connection]]:
    """Plain sqlite3 connections to a store's file (autocommit), closed at teardown."""
    conns: list[sqlite3.Connection] = []

    def connect(path: Path | None = None) -> sqlite3.Connection:
        conn = sqlite3.connect(path or db_path, isolation_level=None)
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()


def tamperable(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Drop the append-only triggers, as someone tampering with the file would."""
    conn.execute("DROP TRIGGER IF EXISTS events_are_append_only_update")
    conn.execute("DROP TRIGGER IF EXISTS events_are_append_only_delete")
    return conn


def record(case: str, **fields: Any) -> CaseRecord:
    """A case record for the test spec."""
    return CaseRecord(case=case, spec_id="seq", net="main", **fields)


def dump(path: Path) -> dict[str, Any]:
    """The logical content of a store's file (wall-clock columns left out), for comparisons."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        out: dict[str, Any] = {}
        if "meta" in tables:
            out["schema_version"] = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        if "specs" in tables:
            out["specs"] = conn.execute("SELECT hash, spec_id, format, body FROM specs ORDER BY hash").fetchall()
        if "cases" in tables:
            out["cases"] = conn.execute(
                "SELECT key, id, spec_hash, net, status, tenant, parent, last_seq, last_hash FROM cases ORDER BY key"
            ).fetchall()
        if "events" in tables:
            out["events"] = conn.execute(
                "SELECT case_key, seq, kind, body, prev_hash, hash, at FROM events ORDER BY case_key, seq"
            ).fetchall()
        if "snapshots" in tables:
            out["snapshots"] = conn.execute(
                "SELECT case_key, upto_seq, anchor, state, hash FROM snapshots ORDER BY case_key, upto_seq"
            ).fetchall()
        return out
    finally:
        conn.close()


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of a file."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def faulty_connection(log: list[str] | None = None) -> type[Any]:
    """A sqlite3.Connection class whose Nth execute raises, once ``arm(N)`` is called.

    ``log`` (if given) receives every statement executed.
    """

    class Faulty(sqlite3.Connection):
        countdown: int | None = None
        fired = False

        @classmethod
        def arm(cls, n: int | None) -> None:
            cls.countdown = n
            cls.fired = False

        def _tick(self, sql: str) -> None:
            if log is not None:
                log.append(" ".join(sql.split()))
            cls = type(self)
            if cls.countdown is not None:
                cls.countdown -= 1
                if cls.countdown == 0:
                    cls.countdown = None
                    cls.fired = True
                    raise sqlite3.OperationalError(f"injected fault at: {sql.split()[0]}")

        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            self._tick(sql)
            return super().execute(sql, parameters)

        def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
            self._tick(sql)
            return super().executemany(sql, parameters)

    return Faulty


@pytest.fixture
def helpers() -> Any:
    """The helper functions above, for test modules (conftest modules are not importable)."""

    class Helpers:
        tamperable = staticmethod(tamperable)
        record = staticmethod(record)
        dump = staticmethod(dump)
        integrity = staticmethod(integrity)
        faulty_connection = staticmethod(faulty_connection)

    return Helpers
