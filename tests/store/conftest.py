"""Fixtures for the store tests: specs, database paths, raw access to a store's file, and faults."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import AUTO_THEN_EXTERNAL, closing_stores, faulty_connection, integrity

import yawlflow as yf
from yawlflow._sqlite import SqliteStore

OTHER = AUTO_THEN_EXTERNAL.replace("external: true", "run: inc")


@pytest.fixture
def spec() -> yf.Spec:
    """A small spec: ``kit.AUTO_THEN_EXTERNAL``."""
    return yf.loads(AUTO_THEN_EXTERNAL)


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

    def open_one(path: Path | None = None, **options: Any) -> SqliteStore:
        return SqliteStore(path or db_path, **options)

    with closing_stores(open_one) as opener:
        yield opener


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
        if "published" in tables:
            out["published"] = conn.execute(
                "SELECT tenant, spec_id, spec_hash FROM published ORDER BY tenant, spec_id").fetchall()
        return out
    finally:
        conn.close()


@pytest.fixture
def helpers() -> Any:
    """The helper functions above and kit's store-file ones, for test modules (conftest modules
    are not importable)."""

    class Helpers:
        tamperable = staticmethod(tamperable)
        dump = staticmethod(dump)
        integrity = staticmethod(integrity)
        faulty_connection = staticmethod(faulty_connection)

    return Helpers
