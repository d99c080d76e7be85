"""yawlflow-sqlite passes yawlflow's connector conformance kit, on asyncio and trio."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from yawlflow.connectors.testing import BadConfig, Call, Conformance, ConnectorTests, Failure

from yawlflow_sqlite import SqliteConnector

FOREVER = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT max(x) FROM n"


class TestSqlite(ConnectorTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> Any:
        return request.param

    @pytest.fixture
    def conformance(self, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Conformance]:
        shop, locked = tmp_path / "shop.db", tmp_path / "locked.db"
        with sqlite3.connect(shop) as db:
            db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)")
        holder = sqlite3.connect(locked, isolation_level=None)
        holder.execute("CREATE TABLE t (x)")
        if request.node.name.startswith("test_failures_are_classified"):
            holder.execute("BEGIN EXCLUSIVE")  # every other connection finds it locked: a transient failure

        def key_seen(output: Any) -> str | None:
            with sqlite3.connect(shop) as db:
                row = db.execute("SELECT key FROM yawlflow_calls ORDER BY rowid DESC LIMIT 1").fetchone()
            return None if row is None else str(row[0])

        insert = {"database": "shop", "sql": "INSERT INTO orders (amount) VALUES (:amount)",
                  "params": {"amount": "order.amount"}}
        yield Conformance(
            connector=SqliteConnector(databases={"shop": str(shop), "locked": str(locked)}, busy_timeout=0),
            ok=Call(config=insert, input={"order": {"amount": 12}}),
            failures=[
                Failure(config={"database": "locked", "sql": "INSERT INTO t VALUES (1)"}, retryable=True,
                        match="database is locked"),
                Failure(config={"database": "shop", "sql": "SELECT * FROM no_such_table", "fetch": "all"},
                        retryable=False, match="no such table"),
                Failure(config={"database": "other", "sql": "SELECT 1"}, retryable=False, match="not configured"),
                Failure(config=insert, input={}, retryable=False, match="'order.amount' is not in the item's input"),
            ],
            bad_configs=[
                BadConfig(config={"database": "shop"}, path=""),
                BadConfig(config={"database": "shop", "sql": "SELECT 1", "fetch": "many"}, path="fetch"),
                BadConfig(config={"database": "shop", "sql": "SELECT 1", "params": {"a": 1}}, path="params"),
            ],
            blocking=Call(config={"database": "shop", "sql": FOREVER, "fetch": "one"}),
            key_seen=key_seen,
            name="sqlite",  # found through this package's entry point
        )
        holder.close()  # and with it, its lock
