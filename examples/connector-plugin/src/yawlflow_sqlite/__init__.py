"""yawlflow-sqlite: a yawlflow connector that runs one SQL statement on an allow-listed SQLite database.

A spec names it as ``run: {connector: sqlite, config: {database: shop, sql: ..., params: {...}}}``.
The engine's operator lists the databases a spec may use (``settings: {databases: {shop:
/var/lib/shop.db}}``), so a spec cannot open any other file. A statement that writes
(``fetch: none``) takes effect once per item: the item's idempotency key is stored in the same
transaction, and a call made again with that key returns the first call's output.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar

import anyio
import msgspec
import yawlflow as yf
from yawlflow.connectors import API_VERSION, Health

__all__ = ("SqliteConfig", "SqliteConnector")

T = TypeVar("T")

_CALLS = "CREATE TABLE IF NOT EXISTS yawlflow_calls (key TEXT PRIMARY KEY, output TEXT NOT NULL)"


class SqliteConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A task's config.

    Attributes:
        database: a name from the connector's ``databases`` setting.
        sql: one SQL statement, with ``:name`` parameters.
        params: each parameter's key in the item's input (``{id: order.id}``).
        fetch: ``none`` (a write, done once per item: returns ``{rowcount}``), ``one``
            (``{row}``) or ``all`` (``{rows}``).
    """

    database: str
    sql: str
    params: dict[str, str] = msgspec.field(default_factory=dict)
    fetch: Literal["none", "one", "all"] = "none"


class SqliteConnector:
    """Runs SQL on allow-listed SQLite databases.

    Args:
        databases: the databases a spec may name, as ``{name: path}``.
        busy_timeout: how long a statement waits for another connection's lock before it fails
            (retryably) with "database is locked".
    """

    yawlflow_api = API_VERSION  # the connector API this plugin was written for
    Config = SqliteConfig
    # the default resilience policy, under the engine configuration's and the task's
    policy: ClassVar[Mapping[str, Any]] = {"timeout": "30s", "retry": {"attempts": 3, "backoff": "50ms"}}

    def __init__(self, *, databases: Mapping[str, str], busy_timeout: float = 5.0) -> None:
        self.databases = dict(databases)
        self.busy_timeout = busy_timeout

    async def call(self, config: SqliteConfig, input: Mapping[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        """Run the statement.

        Raises:
            yawlflow.ConnectorError: the database is not allowed, a parameter's key is missing,
                or SQLite failed (retryable when the database was locked or busy).
        """
        if config.database not in self.databases:
            raise yf.ConnectorError(
                f"connector 'sqlite': database {config.database!r} is not configured (configured: "
                f"{', '.join(sorted(self.databases)) or 'none'}); add it to the connector's settings: databases",
                connector="sqlite",
            )
        values = {name: _lookup(input, key) for name, key in config.params.items()}

        def work(db: sqlite3.Connection) -> dict[str, Any]:
            if config.fetch == "one":
                cursor = db.execute(config.sql, values)
                row = cursor.fetchone()
                return {"row": None if row is None else _as_dict(cursor, row)}
            if config.fetch == "all":
                cursor = db.execute(config.sql, values)
                return {"rows": [_as_dict(cursor, row) for row in cursor.fetchall()]}
            with db:  # one transaction: the write and its key, or neither
                db.execute(_CALLS)
                done = db.execute("SELECT output FROM yawlflow_calls WHERE key = ?", (ctx.idempotency_key,)).fetchone()
                if done is not None:
                    return dict(json.loads(done[0]))
                output = {"rowcount": db.execute(config.sql, values).rowcount}
                db.execute("INSERT INTO yawlflow_calls (key, output) VALUES (?, ?)",
                           (ctx.idempotency_key, json.dumps(output)))
                return output

        return await self._in_thread(config.database, work)

    async def reconcile(self, key: str) -> dict[str, Any] | None:
        """The output of the write made with idempotency key ``key``, or None if none took effect."""
        def find(db: sqlite3.Connection) -> Any:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'yawlflow_calls'").fetchone() is None:
                return None  # no write was ever made here
            return db.execute("SELECT output FROM yawlflow_calls WHERE key = ?", (key,)).fetchone()

        for name in self.databases:
            found = await self._in_thread(name, find)
            if found is not None:
                return dict(json.loads(found[0]))
        return None

    async def health(self) -> Health:
        """Healthy when every database answers ``SELECT 1``."""
        busy = []
        for name in self.databases:
            try:
                await self._in_thread(name, lambda db: db.execute("SELECT 1").fetchone())
            except yf.ConnectorError as exc:
                if not exc.retryable:
                    return Health(ok=False, detail=str(exc))
                busy.append(name)  # locked by a writer: it answers, it is just busy
        detail = f"{len(self.databases)} database(s)" + (f"; busy: {', '.join(busy)}" if busy else "")
        return Health(ok=True, detail=detail)

    # -- inside ------------------------------------------------------------------------------
    def _run(self, name: str, work: Callable[[sqlite3.Connection], T], opened: list[sqlite3.Connection]) -> T:
        db = sqlite3.connect(self.databases[name], timeout=self.busy_timeout, check_same_thread=False,
                             isolation_level="DEFERRED")
        opened.append(db)
        try:
            return work(db)
        finally:
            db.close()

    async def _in_thread(self, name: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` in a worker thread; on cancellation, interrupt the statement at once."""
        opened: list[sqlite3.Connection] = []
        done = threading.Event()

        def run() -> T:
            try:
                return self._run(name, work, opened)
            finally:
                done.set()

        try:
            return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            if opened and not done.is_set():
                with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile: nothing to stop
                    opened[0].interrupt()  # the abandoned thread's statement stops; it closes its connection
            raise
        except sqlite3.Error as exc:
            transient = isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))
            raise yf.ConnectorError(f"connector 'sqlite': database {name!r}: {type(exc).__name__}: {exc}",
                                    retryable=transient, connector="sqlite") from exc


def _lookup(data: Mapping[str, Any], key: str) -> Any:
    value: Any = data
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise yf.ConnectorError(f"connector 'sqlite': parameter key {key!r} is not in the item's input "
                                    f"(its keys: {', '.join(sorted(data)) or 'none'})", connector="sqlite")
        value = value[part]
    return value


def _as_dict(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}
