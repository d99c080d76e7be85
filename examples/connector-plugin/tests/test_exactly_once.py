"""A write takes effect once per item, however often it is called; reads see it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yawlflow as yf
from yawlflow.connectors import validate_config

from yawlflow_sqlite import SqliteConnector

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def context(key: str) -> yf.ItemContext:
    return yf.ItemContext(case_id="c", item_id=1, task="book", attempt=1, idempotency_key=key)


async def test_the_same_key_writes_once(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)")
    connector = SqliteConnector(databases={"shop": str(path)})
    write = validate_config("sqlite", {"database": "shop", "sql": "INSERT INTO orders (amount) VALUES (:a)",
                                       "params": {"a": "amount"}})
    read = validate_config("sqlite", {"database": "shop", "sql": "SELECT amount FROM orders", "fetch": "all"})
    first = await connector.call(write, {"amount": 5}, context("order-1"))
    again = await connector.call(write, {"amount": 5}, context("order-1"))  # a retry, or a re-run after a crash
    await connector.call(write, {"amount": 7}, context("order-2"))
    assert first == again == {"rowcount": 1}
    assert await connector.call(read, {}, context("r")) == {"rows": [{"amount": 5}, {"amount": 7}]}
    assert await connector.reconcile("order-1") == {"rowcount": 1}
    assert await connector.reconcile("order-3") is None
