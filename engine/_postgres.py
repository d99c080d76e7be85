"""The PostgreSQL store: several engines share one database; each case is leased to one engine.

``postgresql://user:password@host:5432/db`` (or ``postgres://``; any libpq URL) names the
store; yawlflow's own options go in the query string beside libpq's (``?snapshot_every=500``,
see :func:`open_postgres_url`). Install the driver with ``pip install 'yawlflow[postgres]'``
(psycopg 3); ``import yawlflow`` never imports it.

Theory of operation (docs/durability.md, "PostgreSQL: several engines, one database").

* **The same log as SQLite.** The tables (``meta``, ``specs``, ``cases``, ``events``,
  ``snapshots``, ``published``, plus ``leases``) live in a schema of their own (``yawlflow`` unless
  ``?schema=`` says otherwise) and have the columns of :mod:`yawlflow._sqlite`'s, so the hash
  chain (:mod:`yawlflow._provenance`), the snapshots and :meth:`PostgresStore.verify` are the
  same, record for record. Triggers refuse ``UPDATE``, ``DELETE`` and ``TRUNCATE`` on
  ``events`` (append-only). :data:`MIGRATIONS` run in order on open, each in its own transaction
  under an advisory lock, so engines opening a new database at once migrate it once.
* **Writes never block the event loop.** ``create``, ``append``, ``set_status`` and
  ``snapshot`` encode, hash and number the record in the caller's thread and queue it; a writer
  thread commits everything queued in one transaction (group commit). A write is acknowledged —
  committed, and with the server's default ``synchronous_commit = on`` flushed to its WAL — once
  :meth:`~PostgresStore.flush` returns or :meth:`~PostgresStore.durable` is awaited after it.
  A failed commit is sticky, as in SQLite: every later call raises; reopen and resume.
* **No store-wide lock: case leases.** Each case has a row in ``leases`` (its owner — an engine
  id, :attr:`PostgresStore.owner` — and ``expires_at``, on the database server's clock). ``create``
  leases the new case to its creator. :meth:`~PostgresStore.claim` takes running cases whose lease
  is free (released, or expired) with ``SELECT … FOR UPDATE SKIP LOCKED``, so engines claiming at
  once never get the same case; it takes a case with its running sub-cases (a tree is never split
  between engines). :meth:`~PostgresStore.renew` extends an owner's leases,
  :meth:`~PostgresStore.release` (and :meth:`~PostgresStore.close`) frees them.
* **Fencing.** Every write transaction locks the lease rows of the cases it writes, in key
  order, and checks them: a case leased to another engine (this store's lease expired and was
  claimed) is refused — its queued writes are dropped, never committed, and the case is *lost*:
  :meth:`~PostgresStore.flush`/:meth:`~PostgresStore.durable` raise :class:`LeaseLostError`
  ("case X is leased to engine Y") once, and every later write to it raises at once until the
  store claims it again. A case whose lease is free is taken by the write itself, provided
  nobody wrote to it since this store read its head (``cases cancel`` on a stopped engine's case).
  Writes to other cases in the same transaction commit as usual.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._errors import ConfigError, StoreError
from ._logstore import (
    _APPEND,
    _CREATE,
    _PUBLISH,
    _SNAPSHOT,
    _STATUS,
    PUBLISH_SQL,
    Migration,
    Writer,
    _Op,
    _WriterStore,
    check_options,
    now_iso,
    pending_steps,
)
from ._logstore import _Head as _LogHead
from ._provenance import GENESIS, ChainProblem, check_chains, snapshot_hash
from ._store import CaseExistsError, CaseRecord

if TYPE_CHECKING:
    import sqlite3

    import psycopg

__all__ = (
    "MIGRATIONS",
    "LeaseLostError",
    "Migration",
    "PostgresStore",
    "check_postgres_url",
    "open_postgres_url",
    "schema_version",
)

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_SCHEMES: Final = ("postgresql", "postgres")
_OPTIONS: Final = ("snapshot_every", "writer", "owner", "lease_s", "schema", "readonly")
_IDENT: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_INSTALL: Final = "pip install 'yawlflow[postgres]'"


class LeaseLostError(StoreError):
    """Writes to cases this store holds no lease on were refused (another engine runs them).

    Attributes:
        cases: each refused case and the engine that holds it (``None``: no engine, or the case
            was created by another engine at the same moment).
    """

    def __init__(self, message: str, cases: Mapping[str, str | None]) -> None:
        super().__init__(message)
        self.cases: dict[str, str | None] = dict(cases)


class _CreatedElsewhere(LeaseLostError, CaseExistsError):
    """A queued ``create`` lost the race for its id to another engine (caught as either class)."""


MIGRATIONS: list[Migration[psycopg.Connection[Any]]] = [
    Migration(
        1,
        "the initial schema: meta, specs, cases, events (append-only, hash-chained), snapshots, leases",
        (
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE specs (
                hash BYTEA PRIMARY KEY,
                spec_id TEXT NOT NULL,
                format TEXT NOT NULL,
                body BYTEA NOT NULL,
                created_at BIGINT NOT NULL
            )""",
            # key: creation order and the events' compact reference; last_seq/last_hash: the head of
            # the case's chain, updated in the same transaction as its events
            """CREATE TABLE cases (
                key BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                spec_hash BYTEA NOT NULL REFERENCES specs (hash),
                spec_id TEXT NOT NULL,
                net TEXT NOT NULL,
                status TEXT NOT NULL,
                tenant TEXT,
                parent TEXT,
                last_seq BIGINT NOT NULL,
                last_hash BYTEA NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )""",
            "CREATE INDEX cases_by_status ON cases (status, tenant)",
            "CREATE INDEX cases_by_parent ON cases (parent)",
            # at: the event's engine clock (hashed, in the body); wall_ns: time.time_ns() at append
            """CREATE TABLE events (
                case_key BIGINT NOT NULL REFERENCES cases (key),
                seq BIGINT NOT NULL,
                kind TEXT NOT NULL,
                body BYTEA NOT NULL,
                prev_hash BYTEA NOT NULL,
                hash BYTEA NOT NULL,
                at BIGINT NOT NULL,
                wall_ns BIGINT NOT NULL,
                PRIMARY KEY (case_key, seq)
            )""",
            """CREATE FUNCTION yawlflow_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'yawlflow: the event log is append-only (% refused)', TG_OP; END $$""",
            """CREATE TRIGGER events_are_append_only BEFORE UPDATE OR DELETE ON events
               FOR EACH ROW EXECUTE FUNCTION yawlflow_append_only()""",
            """CREATE TRIGGER events_are_append_only_truncate BEFORE TRUNCATE ON events
               FOR EACH STATEMENT EXECUTE FUNCTION yawlflow_append_only()""",
            # the latest snapshot of a case; anchor: the hash of event upto_seq
            """CREATE TABLE snapshots (
                case_key BIGINT NOT NULL REFERENCES cases (key),
                upto_seq BIGINT NOT NULL,
                anchor BYTEA NOT NULL,
                state BYTEA NOT NULL,
                hash BYTEA NOT NULL,
                at BIGINT NOT NULL,
                PRIMARY KEY (case_key, upto_seq)
            )""",
            # one row per case: owner NULL = released; expires_at on the server's clock
            """CREATE TABLE leases (
                case_key BIGINT PRIMARY KEY REFERENCES cases (key),
                owner TEXT,
                expires_at TIMESTAMPTZ NOT NULL
            )""",
            "CREATE INDEX leases_by_owner ON leases (owner)",
        ),
    ),
    Migration(
        2,
        "published specs: the spec version each tenant (NULL: every tenant) starts new cases of, by spec id",
        (
            # one row per (tenant, spec id); the spec version is a row of specs (outside the hash chain)
            """CREATE TABLE published (
                tenant TEXT,
                spec_id TEXT NOT NULL,
                spec_hash BYTEA NOT NULL REFERENCES specs (hash),
                published_at BIGINT NOT NULL
            )""",
            "CREATE UNIQUE INDEX published_key ON published (coalesce(tenant, ''), spec_id)",
        ),
    ),
]
"""Every schema step, oldest first. A new release appends; a step once released never changes."""


def schema_version() -> int:
    """The schema version this code writes: the last of :data:`MIGRATIONS`."""
    return MIGRATIONS[-1].version


class _Head(_LogHead):
    """What the store keeps in memory about a case it has touched: its chain's head.

    Besides what every store keeps (:class:`yawlflow._logstore._Head`): ``stored_seq``/``stored_hash``
    are what the database holds as far as this store knows (the writer thread keeps them), which
    the fencing check compares with the database. ``key`` is ``None`` until the case's row is
    written. ``lost`` is set when the case's writes were refused: ops still queued for this head
    are dropped. ``held``: this store has held the case's lease (created, claimed or wrote it);
    before its first write to a case it only read, the store looks up the lease at once.
    """

    __slots__ = ("held", "stored_hash", "stored_seq")

    def __init__(self, case: str, key: int | None, next_seq: int, last_hash: bytes, spec_hash: bytes,
                 snap_seq: int) -> None:
        super().__init__(case, key, next_seq, last_hash, spec_hash, snap_seq)
        self.stored_seq = next_seq - 1
        self.stored_hash = last_hash
        self.held = False  # this store created, claimed or wrote the case (else: only read it)


_Refusal = tuple[int, StoreError, _Head, str | None]  # (index in the batch, error, the case's head, its holder)
_RETRIES: Final = 3  # a batch that hits a deadlock or a serialization failure is retried (it rolled back)
_PUBLISH_SQL: Final = tuple(sql.replace("?", "%s") for sql in PUBLISH_SQL)


class PostgresStore(_WriterStore[_Head, list[_Refusal]]):
    """The durable store in a PostgreSQL database, shared by several engines. See the module docstring.

    Args:
        conninfo: a libpq URL (``postgresql://user@host/db``) or ``key=value`` string, without
            yawlflow's options (:func:`open_postgres_url` takes those from a URL).
        owner: this engine's id in the ``leases`` table (default: a new random one). Two stores
            must never share an owner id.
        lease_s: the lease a case gets when this store creates it, or takes it by writing to it,
            and the default of :meth:`claim` and :meth:`renew`: seconds on the server's clock.
        snapshot_every: :meth:`needs_snapshot` says yes once a case has this many events after
            its last snapshot (0: never).
        writer: ``"thread"`` (the default): a writer thread group-commits the writes;
            ``"inline"``: every write commits in the caller's thread before it returns.
        readonly: read only (``verify``, ``cases list`` beside running engines): nothing is
            migrated, no lease is taken, and every write raises.
        schema: the PostgreSQL schema that holds the tables (created when missing).
        connect_timeout_s: how long connecting may take (unless the conninfo says).

    Raises:
        ConfigError: psycopg is not installed, or a bad argument.
        StoreError: the server cannot be reached, the schema holds something else or comes from
            a newer yawlflow; the message names the database (never the password) and the fix.
    """

    _logger = _log
    _WRITE_FIX = "check the server's log and disk space"

    def __init__(
        self,
        conninfo: str,
        *,
        owner: str | None = None,
        lease_s: float = 30.0,
        snapshot_every: int = 100,
        writer: Writer = "thread",
        readonly: bool = False,
        schema: str = "yawlflow",
        connect_timeout_s: float = 10.0,
    ) -> None:
        pg = _psycopg()
        if not isinstance(conninfo, str) or not conninfo:
            raise ConfigError(f"PostgresStore needs a libpq URL or conninfo string, not {conninfo!r}")
        if owner is not None and (not isinstance(owner, str) or not owner or len(owner) > 200):
            raise ConfigError(f"owner={owner!r}: give a non-empty engine id of at most 200 characters")
        lease_s = _seconds("lease_s", lease_s, positive=True)
        check_options(snapshot_every, writer)
        if not isinstance(schema, str) or not _IDENT.fullmatch(schema):
            raise ConfigError(f"schema={schema!r}: use a lower-case SQL name (letters, digits, _), e.g. yawlflow")
        params = _conninfo_params(pg, conninfo)
        self.where: Final = _describe(params)
        """The database, for messages: ``db 'x' on host:port as user u`` (never the password)."""
        self.url: Final = _display_url(params, schema)
        """The store's URL without its password (for messages and commands to run)."""
        super().__init__(label=f"postgresql store {self.where}", snapshot_every=snapshot_every, writer=writer,
                         readonly=readonly, db_error=pg.Error)
        self.owner: Final = owner or f"engine-{uuid.uuid4().hex[:16]}"
        self.lease_s: Final = lease_s
        self.schema: Final = schema
        self._pg = pg
        self._conninfo = conninfo
        self._password = str(params.get("password") or "")
        self._connect_kw: dict[str, Any] = {"autocommit": True, "application_name": "yawlflow"}
        if "connect_timeout" not in params:
            self._connect_kw["connect_timeout"] = max(1, round(connect_timeout_s))
        self._refused: list[tuple[int, StoreError, str, str | None]] = []  # (serial, error, case, holder)
        self._lost: dict[str, StoreError] = {}
        self._wconn: psycopg.Connection[Any] | None = None
        self._rconn: psycopg.Connection[Any] | None = None
        self._rlock = threading.RLock()
        try:
            self._open()
        except BaseException:
            self._release()
            raise
        self._start_writer(f"yawlflow-postgres-writer {self.where}")

    # -- opening -------------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        pg = self._pg
        try:
            conn: psycopg.Connection[Any] = pg.connect(self._conninfo, **self._connect_kw)
        except pg.Error as exc:
            reason = _first_line(exc)
            if len(self._password) >= 3:  # libpq does not quote it; never let it through anyway
                reason = reason.replace(self._password, "***")
            raise StoreError(f"postgresql store {self.where}: cannot connect: {reason} "
                             f"({_connect_fix(exc)})") from None
        try:
            conn.execute(pg.sql.SQL("SET search_path TO {}").format(pg.sql.Identifier(self.schema)))
        except pg.Error as exc:
            conn.close()
            raise StoreError(f"postgresql store {self.where}: cannot set the search_path: {_first_line(exc)}") from None
        return conn

    def _open(self) -> None:
        pg = self._pg
        conn = self._connect()
        self._rconn = conn
        try:
            found = self._found_version(conn)
            latest = schema_version()
            if found > latest:
                raise StoreError(
                    f"postgresql store {self.where}, schema {self.schema}: its version is {found}, but this yawlflow "
                    f"knows versions up to {latest}: a newer yawlflow wrote it; upgrade yawlflow to use it"
                )
            if self.readonly:
                if found < latest:
                    what = "has no yawlflow store" if found == 0 else f"holds schema version {found}"
                    raise StoreError(
                        f"postgresql store {self.where}: schema {self.schema} {what}, this yawlflow's is {latest}; "
                        "open it for writing once (an engine on it) to create or migrate it, then read it"
                    )
                return
            if found < latest:
                self._migrate(conn, found)
            sync = conn.execute("SHOW synchronous_commit").fetchone()
            if sync is not None and str(sync[0]).lower() in ("off", "local"):
                _log.warning("postgresql store %s: synchronous_commit is %s: an acknowledged write may be lost to "
                             "a crash of the server; set it to on", self.where, sync[0])
            # a connection of its own: a read from another thread must never land inside a write transaction
            self._wconn = self._connect()
        except pg.Error as exc:
            raise StoreError(f"postgresql store {self.where}: cannot open it: {_first_line(exc)} (check the user's "
                             f"privileges on the database and on schema {self.schema})") from None

    def _found_version(self, conn: psycopg.Connection[Any]) -> int:
        """The schema version in the store's schema: 0 for none; refuses a schema of someone else's."""
        tables = [name for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY table_name",
            (self.schema,)).fetchall()]
        if not tables:
            return 0
        if "meta" not in tables:
            listed = ", ".join(tables[:8]) + (", …" if len(tables) > 8 else "")
            raise StoreError(
                f"postgresql store {self.where}: schema {self.schema} holds tables that are not a yawlflow store "
                f"({listed}); name another schema in the URL (?schema=yawlflow_cases)"
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise StoreError(f"postgresql store {self.where}: schema {self.schema} has a meta table without a "
                             "schema_version; it is damaged or not ours: restore it from a backup")
        return int(row[0])

    def _migrate(self, conn: psycopg.Connection[Any], found: int) -> None:
        pg = self._pg
        lock = int.from_bytes(hashlib.sha256(f"yawlflow/migrate/{self.schema}".encode()).digest()[:8], "big",
                              signed=True)
        for step in pending_steps(MIGRATIONS, found):
            try:
                with conn.transaction():
                    # engines opening a new database at once: one migrates, the others then see its version
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
                    if self._found_version(conn) >= step.version:
                        continue
                    conn.execute(pg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pg.sql.Identifier(self.schema)))
                    for statement in step.statements:
                        conn.execute(cast("Any", statement))
                    if step.run is not None:
                        step.run(conn)
                    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s) ON CONFLICT (key) "
                                 "DO UPDATE SET value = excluded.value", (str(step.version),))
                    conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                                 "DO UPDATE SET value = excluded.value",
                                 (f"migration.{step.version}", f"{step.description} ({now_iso()})"))
            except pg.Error as exc:
                raise StoreError(
                    f"postgresql store {self.where}: migrating schema {self.schema} from version {step.version - 1} "
                    f"to {step.version} failed: {_first_line(exc)}; it is left at version {step.version - 1}, "
                    "unchanged (grant the user CREATE on the database, or fix what the message says, then open it "
                    "again)"
                ) from None
            _log.info("postgresql store %s: schema %s migrated to version %d (%s)", self.where, self.schema,
                      step.version, step.description)

    # -- the Store protocol (the rest is _WriterStore's) -----------------------------------------
    def times(self, case: str, start: int = 0) -> list[int]:
        """The wall-clock time of each event from ``seq`` ``start`` on: ``time.time_ns()`` at its append (UTC).

        Raises:
            StoreError: no such case.
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        key = self._case_key(self._head(case))
        rows: list[tuple[int]] = self._read(lambda conn: conn.execute(
            "SELECT wall_ns FROM events WHERE case_key = %s AND seq >= %s ORDER BY seq",
            (key, start)).fetchall())
        return [wall for (wall,) in rows]

    # -- beyond the protocol -------------------------------------------------------------------
    def verify(self, case: str | None = None) -> list[ChainProblem]:
        """Check the provenance chains (see :func:`yawlflow._provenance.verify`), in one consistent snapshot.

        Raises:
            StoreError: ``case`` is not in the store, or the database cannot be read.
        """
        return self._read(lambda conn: self._check_chains(conn, case))

    # -- leases ----------------------------------------------------------------------------------
    def claim(self, owner: str | None = None, ttl_s: float | None = None,
              limit: int | None = None) -> list[CaseRecord]:
        """Lease running cases whose lease is free (released, or expired) to this store's owner.

        A case comes with its running sub-cases, and only when all of them are free: a tree of
        cases is never split between engines. A sub-case whose parent has ended is a tree of its
        own. Rows are taken with ``FOR UPDATE SKIP LOCKED``, so engines that claim at once never
        get the same case. Blocks (pending writes are committed first): call it in a worker thread
        from async code. A claimed case that this store had lost can be written to again; fold
        it from the store first (its log has moved on).

        Args:
            owner: the engine that claims; must be this store's :attr:`owner` (the default).
            ttl_s: the lease's length in seconds (default :attr:`lease_s`).
            limit: claim at most this many trees (default: all free ones).

        Returns:
            The claimed cases (roots and sub-cases), in creation order.

        Raises:
            ConfigError: ``owner`` is not this store's, or a bad ``ttl_s``/``limit``.
            StoreError: the store is read-only, closed or failed, or the database cannot be reached.
        """
        me = self._owner(owner)
        ttl = self.lease_s if ttl_s is None else _seconds("ttl_s", ttl_s, positive=False)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise ConfigError(f"limit={limit!r}: use a whole number >= 0, or None for all")
        self._check_writable()
        if limit == 0:
            return []

        def run(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            with conn.transaction():
                roots = [key for (key,) in conn.execute(
                    "SELECT l.case_key FROM leases l JOIN cases c ON c.key = l.case_key "
                    "WHERE c.status = 'running' AND (l.owner IS NULL OR l.expires_at <= clock_timestamp()) "
                    "AND (c.parent IS NULL OR NOT EXISTS "
                    "(SELECT 1 FROM cases p WHERE p.id = c.parent AND p.status = 'running')) "
                    "ORDER BY l.case_key LIMIT %s FOR UPDATE OF l SKIP LOCKED", (limit,)).fetchall()]
                if not roots:
                    return []
                tree = conn.execute(
                    "WITH RECURSIVE tree (key, id, root) AS ("
                    " SELECT key, id, key FROM cases WHERE key = ANY(%s)"
                    " UNION ALL SELECT c.key, c.id, t.root FROM cases c JOIN tree t ON c.parent = t.id"
                    " WHERE c.status = 'running') "
                    "SELECT key, root FROM tree WHERE key <> root", (roots,)).fetchall()
                below: dict[int, list[int]] = {}
                for key, root in tree:
                    below.setdefault(root, []).append(key)
                free: set[int] = set()
                if tree:
                    free = {key for key, mine_or_free in conn.execute(
                        "SELECT case_key, owner IS NULL OR owner = %s OR expires_at <= clock_timestamp() "
                        "FROM leases WHERE case_key = ANY(%s) ORDER BY case_key FOR UPDATE SKIP LOCKED",
                        (me, [key for key, _ in tree])).fetchall() if mine_or_free}
                taken = [key for root in roots if all(k in free for k in below.get(root, ()))
                         for key in (root, *below.get(root, ()))]
                if not taken:
                    return []
                conn.execute("UPDATE leases SET owner = %s, expires_at = clock_timestamp() + %s * interval '1 second' "
                             "WHERE case_key = ANY(%s)", (me, ttl, taken))
                rows: list[tuple[Any, ...]] = conn.execute(
                    "SELECT c.key, c.id, c.spec_id, c.net, c.status, c.tenant, c.parent, c.last_seq, c.last_hash, "
                    "c.spec_hash, (SELECT max(upto_seq) FROM snapshots s WHERE s.case_key = c.key) "
                    "FROM cases c WHERE c.key = ANY(%s) ORDER BY c.key", (taken,)).fetchall()
                return rows

        rows = self._read(run, what="claiming cases")
        out: list[CaseRecord] = []
        with self._mutex:
            for key, cid, spec_id, net, status, tenant, parent, last_seq, last_hash, spec_hash, snap in rows:
                old = self._heads.get(cid)
                self._lost.pop(cid, None)
                if old is None or old.lost is not None or (old.next_seq - 1, old.last_hash) != (last_seq, last_hash):
                    if old is not None and old.lost is None:
                        old.lost = LeaseLostError(
                            f"postgresql store {self.where}: case {cid!r} was claimed again and its log had moved on; "
                            "this store's writes to it made before the claim were dropped", {cid: None})
                    self._heads[cid] = _Head(cid, key, last_seq + 1, last_hash, spec_hash, -1 if snap is None else snap)
                self._heads[cid].held = True
                out.append(CaseRecord(case=cid, spec_id=spec_id, net=net, status=status, tenant=tenant, parent=parent))
        return out

    def renew(self, owner: str | None = None, ttl_s: float | None = None) -> int:
        """Extend every lease the owner holds on a running case to ``ttl_s`` from now (server clock).

        Call it well within the lease (every ``lease_s / 3``, say); a lease that expired and was
        claimed by another engine is not renewed (the count says so; :meth:`leased` says which).
        Blocks: call it in a worker thread from async code.

        Returns:
            How many leases were renewed.

        Raises:
            ConfigError: ``owner`` is not this store's, or a bad ``ttl_s``.
            StoreError: the store is read-only, closed or failed, or the database cannot be reached.
        """
        me = self._owner(owner)
        ttl = self.lease_s if ttl_s is None else _seconds("ttl_s", ttl_s, positive=False)
        self._check_writable()

        def run(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                cur = conn.execute(
                    "UPDATE leases SET expires_at = clock_timestamp() + %s * interval '1 second' WHERE case_key IN "
                    "(SELECT l.case_key FROM leases l JOIN cases c ON c.key = l.case_key "
                    " WHERE l.owner = %s AND c.status = 'running' ORDER BY l.case_key FOR UPDATE OF l)",
                    (ttl, me))
                return cur.rowcount

        return self._read(run, what="renewing leases", flush=False)

    def release(self, owner: str | None = None, cases: Iterable[str] | None = None) -> int:
        """Give up the owner's leases (on ``cases``, or all), so that another engine can claim them at once.

        Pending writes are committed first. A released case this store writes to again is taken
        back by that write, if no other engine took it meanwhile. Blocks: call it in a worker
        thread from async code.

        Returns:
            How many leases were released.

        Raises:
            ConfigError: ``owner`` is not this store's.
            StoreError: the store is read-only, closed or failed, or the database cannot be reached.
        """
        me = self._owner(owner)
        names = None if cases is None else list(cases)
        if isinstance(cases, str):
            raise TypeError("cases must be a list of case ids, not one string")
        self._check_writable()

        def run(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                cur = conn.execute(
                    "UPDATE leases SET owner = NULL, expires_at = clock_timestamp() WHERE case_key IN "
                    "(SELECT l.case_key FROM leases l JOIN cases c ON c.key = l.case_key "
                    " WHERE l.owner = %s AND (%s::text[] IS NULL OR c.id = ANY(%s::text[])) "
                    " ORDER BY l.case_key FOR UPDATE OF l)", (me, names, names))
                return cur.rowcount

        return self._read(run, what="releasing leases")

    def leased(self, owner: str | None = None) -> list[str]:
        """The running cases whose lease the owner holds and that have not expired, in creation order.

        Raises:
            ConfigError: ``owner`` is not this store's.
            StoreError: the database cannot be read.
        """
        me = self._owner(owner)
        rows: list[tuple[str]] = self._read(lambda conn: conn.execute(
            "SELECT c.id FROM leases l JOIN cases c ON c.key = l.case_key WHERE l.owner = %s "
            "AND c.status = 'running' AND l.expires_at > clock_timestamp() ORDER BY c.key", (me,)).fetchall(),
            flush=False)
        return [cid for (cid,) in rows]

    def lease_of(self, case: str) -> tuple[str | None, float]:
        """Who holds the case's lease (``None``: nobody) and for how many more seconds (<= 0: expired).

        Raises:
            StoreError: no such case.
        """
        key = self._case_key(self._head(case))
        row = self._read(lambda conn: conn.execute(
            "SELECT owner, extract(epoch FROM expires_at - clock_timestamp()) FROM leases WHERE case_key = %s",
            (key,)).fetchone(), flush=False)
        if row is None:
            return None, 0.0
        return row[0], float(row[1])

    def __repr__(self) -> str:
        return f"<PostgresStore {self.url!r} owner={self.owner!r} {self._state()}>"

    # -- internals: writes ---------------------------------------------------------------------
    def _owner(self, owner: str | None) -> str:
        if owner is not None and owner != self.owner:
            raise ConfigError(f"postgresql store {self.where} writes as engine {self.owner!r}, not {owner!r}: open a "
                              f"store with owner={owner!r} (URL option ?owner=) to act as that engine")
        return self.owner

    def _writable_head(self, case: str) -> _Head:
        """Under the mutex: the head to write to, refusing at once a case known to be another engine's."""
        lost = self._lost.get(case)
        if lost is not None:
            raise lost
        head = self._heads.get(case)
        if head is not None and head.lost is None:
            if not head.held:
                self._load_head(case, for_write=True)  # raises if another engine holds it
            return head
        self._heads.pop(case, None)
        head = self._load_head(case, for_write=True)
        if head is None:
            raise StoreError(f"no case {case!r} in the store")
        return head

    def _new_head(self, case: str, spec_hash: bytes) -> _Head:
        head = _Head(case, None, 0, GENESIS, spec_hash, -1)
        head.held = True
        return head

    def _created(self, head: _Head) -> None:
        self._lost.pop(head.case, None)

    def _accept(self, outcome: list[_Refusal], first: int, *, inline: bool) -> None:
        """Under the mutex: the refused cases are lost; inline, the write raises; else flush()/durable() report them."""
        if not outcome:
            return
        self._mark_lost(outcome)
        if inline:
            raise outcome[0][1]
        self._refused.extend((first + i, error, head.case, holder) for i, error, head, holder in outcome)

    def _apply(self, batch: Sequence[_Op]) -> list[_Refusal]:
        """Write ``batch`` in one transaction; retried on a deadlock or a serialization failure.

        Returns:
            One refusal per case whose ops were dropped — by the fencing check, or because its
            head was lost already — naming the first of them in the batch; the rest committed.
        """
        pg = self._pg
        for attempt in range(_RETRIES):
            try:
                return self._apply_once(batch)
            except (pg.errors.DeadlockDetected, pg.errors.SerializationFailure) as exc:
                if attempt == _RETRIES - 1:
                    raise
                _log.info("postgresql store %s: a write transaction was rolled back (%s); retrying it", self.where,
                          _first_line(exc))
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply_once(self, batch: Sequence[_Op]) -> list[_Refusal]:
        conn = self._wconn
        assert conn is not None  # noqa: S101 - open while not closed
        me = self.owner
        refused: dict[int, _Refusal] = {}  # id(head) -> its first dropped op
        for i, op in enumerate(batch):  # queued before their case was lost: dropped, and reported as such
            head = op[1]
            if head is not None and head.lost is not None and id(head) not in refused:  # None: _PUBLISH
                holder = next(iter(head.lost.cases.values()), None) if isinstance(head.lost, LeaseLostError) else None
                refused[id(head)] = (i, head.lost, head, holder)
        created: dict[int, int] = {}  # id(head) -> key, for cases created in this batch
        try:
            with conn.transaction():
                cur = conn.cursor()
                creates = [(i, op) for i, op in enumerate(batch) if op[0] == _CREATE and op[1].lost is None]
                if creates:
                    specs = {op[2][0]: op[2] for _, op in creates}
                    cur.executemany("INSERT INTO specs (hash, spec_id, format, body, created_at) "
                                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (hash) DO NOTHING", list(specs.values()))
                    cur.executemany(
                        "INSERT INTO cases (id, spec_hash, spec_id, net, status, tenant, parent, last_seq, last_hash, "
                        "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                        "ON CONFLICT (id) DO NOTHING RETURNING key", [op[3] for _, op in creates], returning=True)
                    for i, op in creates:
                        row = cur.fetchone()
                        if row is None:
                            case = op[1].case
                            refused[id(op[1])] = (i, _CreatedElsewhere(
                                f"postgresql store {self.where}: case {case!r} was created by another engine at the "
                                "same moment; this store's writes to it were dropped (start it again under a new id)",
                                {case: None}), op[1], None)
                        else:
                            created[id(op[1])] = row[0]
                        cur.nextset()
                    if created:
                        cur.executemany("INSERT INTO leases (case_key, owner, expires_at) "
                                        "VALUES (%s, %s, clock_timestamp() + %s * interval '1 second')",
                                        [(key, me, self.lease_s) for key in created.values()])
                # fencing: lock the leases of the other cases written, in key order, and check them
                fenced = {id(op[1]): op[1] for op in batch if op[0] not in (_CREATE, _PUBLISH) and op[1].lost is None
                          and id(op[1]) not in created and id(op[1]) not in refused}
                if fenced:
                    by_key = {h.key: h for h in fenced.values()}
                    leases = {key: (owner, live) for key, owner, live in cur.execute(
                        "SELECT case_key, owner, expires_at > clock_timestamp() FROM leases "
                        "WHERE case_key = ANY(%s) ORDER BY case_key FOR UPDATE", (list(by_key),)).fetchall()}
                    # a statement of its own, after the locks: it sees every write made under them
                    heads = {key: (seq, digest) for key, seq, digest in cur.execute(
                        "SELECT key, last_seq, last_hash FROM cases WHERE key = ANY(%s)", (list(by_key),)).fetchall()}
                    take: list[int] = []
                    first = {id(op[1]): i for i, op in reversed(list(enumerate(batch)))}
                    for key, head in by_key.items():
                        owner, live = leases.get(key, (None, False))
                        stale = heads.get(key) != (head.stored_seq, head.stored_hash)
                        if owner is not None and owner != me and live:
                            error: StoreError = LeaseLostError(
                                f"postgresql store {self.where}: case {head.case!r} is leased to engine {owner!r}: "
                                f"its lease of engine {me!r} expired and was claimed; this store's writes to it were "
                                "dropped (the other engine runs it now)", {head.case: owner})
                        elif stale:
                            error = LeaseLostError(
                                f"postgresql store {self.where}: case {head.case!r} was written by another engine "
                                "since this store read it; this store's writes to it were dropped (claim it and "
                                "load it again)", {head.case: owner})
                        else:
                            if owner != me:
                                take.append(key)
                            continue
                        refused[id(head)] = (first[id(head)], error, head, owner)
                    if take:
                        cur.executemany(
                            "INSERT INTO leases (case_key, owner, expires_at) "
                            "VALUES (%s, %s, clock_timestamp() + %s * interval '1 second') ON CONFLICT (case_key) "
                            "DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
                            [(key, me, self.lease_s) for key in take])

                def key_of(head: _Head) -> int | None:
                    if id(head) in refused or head.lost is not None:
                        return None
                    return created.get(id(head), head.key)

                events: list[tuple[Any, ...]] = []
                statuses: list[tuple[Any, ...]] = []
                tips: dict[int, tuple[int, bytes, int]] = {}
                snaps: list[tuple[int, str, int, bytes | None, bytes, int]] = []
                published: list[_Op] = []
                for op in batch:
                    code = op[0]
                    if code == _PUBLISH:
                        published.append(op)
                        continue
                    key = key_of(op[1])
                    if key is None:
                        continue
                    if code == _APPEND:
                        _, _, seq, kind, body, prev, digest, at, wall = op
                        events.append((key, seq, kind, body, prev, digest, at, wall))
                        tips[key] = (seq, digest, wall)
                    elif code == _STATUS:
                        statuses.append((op[2], op[3], key))
                    elif code == _SNAPSHOT:
                        snaps.append((key, op[1].case, op[2], op[3], op[4], op[5]))
                if events:
                    cur.executemany("INSERT INTO events (case_key, seq, kind, body, prev_hash, hash, at, wall_ns) "
                                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", events)
                if tips:
                    cur.executemany("UPDATE cases SET last_seq = %s, last_hash = %s, updated_at = %s WHERE key = %s",
                                    [(seq, digest, at, key) for key, (seq, digest, at) in tips.items()])
                if statuses:
                    cur.executemany("UPDATE cases SET status = %s, updated_at = %s WHERE key = %s", statuses)
                if published:
                    cur.executemany(_PUBLISH_SQL[0], [op[2] for op in published])
                    cur.executemany(_PUBLISH_SQL[1], [op[3] for op in published])
                for key, case, upto, anchor, state, now in snaps:
                    if anchor is None:
                        row = cur.execute("SELECT hash FROM events WHERE case_key = %s AND seq = %s",
                                          (key, upto)).fetchone()
                        if row is None:
                            raise StoreError(f"case {case!r} has no record {upto} to anchor a snapshot")
                        anchor = bytes(row[0])
                    cur.execute("INSERT INTO snapshots (case_key, upto_seq, anchor, state, hash, at) "
                                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (case_key, upto_seq) DO UPDATE SET "
                                "anchor = excluded.anchor, state = excluded.state, hash = excluded.hash, "
                                "at = excluded.at",
                                (key, upto, anchor, state, snapshot_hash(case, upto, anchor, state), now))
                    cur.execute("DELETE FROM snapshots WHERE case_key = %s AND upto_seq < %s", (key, upto))
        except BaseException:
            if conn.closed or conn.broken:
                self._failure = StoreError(
                    f"postgresql store {self.where}: the connection was lost during a write; whether its last "
                    "transaction committed is unknown: reopen the store (unfinished cases resume from what was stored)"
                )
            raise
        self.commits += 1
        # committed: the heads the database now holds
        for op in batch:
            head = op[1]
            if head is None or id(head) in refused or head.lost is not None:  # None: _PUBLISH
                continue
            head.held = True
            if id(head) in created:
                head.key = created[id(head)]
            if op[0] == _APPEND:
                head.stored_seq, head.stored_hash = op[2], op[6]
        return sorted(refused.values(), key=lambda r: r[0])

    def _mark_lost(self, refused: Sequence[_Refusal]) -> None:
        """Under the mutex: the refused cases' heads are dropped; later writes to them raise at once.

        A case claimed again meanwhile has a new head: that one stays.
        """
        for _, error, head, _ in refused:
            if head.lost is None:
                head.lost = error
            current = self._heads.get(head.case)
            if current is head:
                del self._heads[head.case]
            if current is None or current is head:
                self._lost[head.case] = error

    def _writer_failure(self, exc: Exception, lost: int) -> StoreError:
        return self._failure or super()._writer_failure(exc, lost)  # "the connection was lost" stays

    def _error_text(self, exc: BaseException) -> str:
        return _first_line(exc)

    def _take_refused(self, target: int) -> list[tuple[int, StoreError, str, str | None]]:
        with self._mutex:
            taken = [r for r in self._refused if r[0] <= target]
            if taken:
                self._refused = [r for r in self._refused if r[0] > target]
            return taken

    def _report(self, target: int) -> None:
        """Raise the refusals of writes up to ``target`` (each once): one case's, or all of them in one error."""
        if not self._refused:
            return
        taken = self._take_refused(target)
        if len(taken) == 1:
            raise taken[0][1]
        if taken:
            cases = {case: holder for _, _, case, holder in taken}
            raise LeaseLostError(
                f"postgresql store {self.where}: writes to {len(cases)} cases were dropped: "
                + "; ".join(str(error).removeprefix(f"postgresql store {self.where}: ") for _, error, _, _ in taken),
                cases)

    def _before_close(self, error: StoreError | None) -> None:
        for _, refused, _, _ in self._take_refused(self._issued):
            self._logger.warning("%s", refused)
        if error is None and not self.readonly:
            try:
                self.release()
            except StoreError as exc:
                self._logger.warning("postgresql store %s: the leases of %s were not released (they expire in at "
                                     "most %g s): %s", self.where, self.owner, self.lease_s, exc)

    # -- internals: reads ----------------------------------------------------------------------
    def _read(self, fn: Callable[[psycopg.Connection[Any]], _T], *, what: str = "reading",
              flush: bool = True) -> _T:
        if self._closed:
            raise StoreError(f"postgresql store {self.where} is closed")
        if flush:
            self._catch_up()
        with self._rlock:
            conn = self._rconn
            if conn is None:
                raise StoreError(f"postgresql store {self.where} is closed")
            if conn.closed or conn.broken:  # the server restarted, say: connect again once
                with contextlib.suppress(self._pg.Error):
                    conn.close()
                conn = self._rconn = self._connect()
            try:
                return fn(conn)
            except self._pg.Error as exc:
                raise StoreError(f"postgresql store {self.where}: {what} failed: {_first_line(exc)} (check the "
                                 "server, and the store with `yawlflow verify`)") from None

    def _check_chains(self, conn: psycopg.Connection[Any], case: str | None) -> list[ChainProblem]:
        cursors: list[psycopg.ServerCursor[Any]] = []

        class Qmark:  # check_chains speaks sqlite3's "?" placeholders; rows stream through server cursors
            def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.ServerCursor[Any]:
                cur = conn.cursor(name=f"yawlflow_verify_{len(cursors)}")
                cursors.append(cur)
                cur.itersize = 2000
                cur.execute(cast("Any", sql.replace("?", "%s")), params or None)
                return cur

        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")  # one consistent view
            try:
                return check_chains(cast("sqlite3.Connection", Qmark()), case)
            finally:
                for cur in cursors:
                    cur.close()

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._read(lambda conn: conn.execute(cast("Any", sql.replace("?", "%s")), params).fetchall())

    def _case_key(self, head: _Head) -> int:
        if head.key is None:  # created by this store, its row not written yet: reads flush first
            self._wait_committed(self._issued)
        if head.key is None:
            raise StoreError(f"no case {head.case!r} in the store (its creation was refused: {head.lost})")
        return head.key

    def _load_head(self, case: str, *, for_write: bool = False) -> _Head | None:
        """The head of a case this store has not touched yet, read from the database."""
        row = self._read(lambda conn: conn.execute(
            "SELECT c.key, c.last_seq, c.last_hash, c.spec_hash, "
            "(SELECT max(upto_seq) FROM snapshots s WHERE s.case_key = c.key), l.owner, "
            "l.expires_at > clock_timestamp() FROM cases c LEFT JOIN leases l ON l.case_key = c.key WHERE c.id = %s",
            (case,)).fetchone(), what=f"reading case {case!r}", flush=False)
        if row is None:
            return None
        key, last_seq, last_hash, spec_hash, snap, owner, live = row
        if for_write and owner is not None and owner != self.owner and live:
            raise LeaseLostError(f"postgresql store {self.where}: case {case!r} is leased to engine {owner!r}; "
                                 "only that engine writes to it (claim it once its lease has expired)", {case: owner})
        head = _Head(case, key, last_seq + 1, bytes(last_hash), bytes(spec_hash), -1 if snap is None else snap)
        with self._mutex:
            known = self._heads.get(case)
            if known is not None and known.lost is None:
                return known
            self._heads[case] = head
            return head

    def _store_arg(self) -> str:
        return f"'{self.url}'"

    def _release(self) -> None:
        for conn in {id(c): c for c in (self._rconn, self._wconn) if c is not None}.values():
            with contextlib.suppress(Exception):
                conn.close()
        self._rconn = self._wconn = None


# -- helpers -----------------------------------------------------------------------------------
def _psycopg() -> ModuleType:
    """psycopg 3, imported on first use (``import yawlflow`` never imports it)."""
    try:
        import psycopg
        import psycopg.conninfo
        import psycopg.sql
    except ImportError as exc:
        raise ConfigError(f"the PostgreSQL store needs psycopg 3 ({exc}): {_INSTALL}") from None
    return psycopg


def _seconds(name: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (
            float("inf"), float("-inf")) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"{name}={value!r}: use a number of seconds {bound}")
    return float(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _connect_fix(exc: BaseException) -> str:
    text = str(exc)
    if "does not exist" in text and "database" in text:
        return "create the database (createdb NAME) or name an existing one in the URL"
    if "authentication failed" in text or "password" in text:
        return "check the user and password in the URL, and the server's pg_hba.conf"
    return ("check that the server is running and reachable, and the URL's host, port, user and database: "
            "postgresql://user:password@host:5432/dbname")


def _conninfo_params(pg: ModuleType, conninfo: str) -> dict[str, Any]:
    try:
        params: dict[str, Any] = pg.conninfo.conninfo_to_dict(conninfo)
    except pg.Error as exc:
        reason = _first_line(exc).replace(conninfo, _redact(conninfo))  # libpq quotes the URL, password and all
        raise ConfigError(f"store {_redact(conninfo)!r}: not a valid libpq URL or conninfo: {reason} "
                          "(postgresql://user:password@host:5432/dbname?option=value)") from None
    return params


def _describe(params: Mapping[str, Any]) -> str:
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port")
    where = f"{host}:{port}" if port and not str(host).startswith("/") else str(host)
    db = params.get("dbname") or params.get("user") or "(the user's)"
    user = params.get("user")
    return f"db {db!r} on {where}" + (f" as {user}" if user else "")


def _display_url(params: Mapping[str, Any], schema: str) -> str:
    host = str(params.get("host") or "")
    query = {k: str(v) for k, v in params.items() if k not in ("user", "password", "dbname", "port", "host")}
    netloc = ""
    if params.get("user"):
        netloc = f"{params['user']}@"
    if host and not host.startswith("/"):
        netloc += host
    elif host:
        query = {"host": host, **query}
    if params.get("port"):
        netloc += f":{params['port']}"
    if schema != "yawlflow":
        query["schema"] = schema
    return urlunsplit(("postgresql", netloc, "/" + str(params.get("dbname") or ""), urlencode(query, safe="/"), ""))


def _redact(url: str) -> str:
    """A URL or conninfo without its password."""
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError:  # not even a URL: hide whatever stands between "user:" and "@"
            return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
        if parts.password is not None:
            netloc = parts.netloc.rpartition("@")
            user = netloc[0].split(":", 1)[0]
            parts = parts._replace(netloc=f"{user}:***@{netloc[2]}")
        query = "&".join(f"{k}=***" if k == "password" else f"{k}={v}"
                         for k, v in parse_qsl(parts.query, keep_blank_values=True))
        return urlunsplit(parts._replace(query=query))
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)


# -- URLs --------------------------------------------------------------------------------------
def _split_url(url: str) -> tuple[str, dict[str, Any]]:
    """A ``postgresql://`` URL -> (the libpq URL without yawlflow's options, those options)."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"store {_redact(url)!r}: not a valid libpq URL: {exc} "
                          "(postgresql://user:password@host:5432/dbname?option=value)") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigError(f"store {_redact(url)!r}: write postgresql://user:password@host:5432/dbname")
    options: dict[str, Any] = {}
    libpq: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _OPTIONS:
            libpq.append((name, value))
        elif name == "snapshot_every":
            if not value.isdigit():
                raise ConfigError(f"store {_redact(url)!r}: snapshot_every must be a whole number, not {value!r}")
            options[name] = int(value)
        elif name == "lease_s":
            try:
                options[name] = _seconds(name, float(value), positive=True)
            except ValueError:
                raise ConfigError(f"store {_redact(url)!r}: lease_s must be a number of seconds, not "
                                  f"{value!r}") from None
        elif name == "readonly":
            options[name] = value.lower() in ("1", "true", "yes", "")
        else:
            options[name] = value
    return urlunsplit(parts._replace(query=urlencode(libpq))), options


def check_postgres_url(url: str) -> None:
    """Check a ``postgresql://`` store URL without connecting.

    Raises:
        ConfigError: psycopg is not installed, or the URL or one of its options is malformed.
    """
    pg = _psycopg()
    conninfo, options = _split_url(url)
    _conninfo_params(pg, conninfo)
    writer = options.get("writer", "thread")
    if writer not in ("thread", "inline"):
        raise ConfigError(f"store {_redact(url)!r}: writer={writer!r}: use thread (the default) or inline")
    schema = options.get("schema", "yawlflow")
    if not _IDENT.fullmatch(schema):
        raise ConfigError(f"store {_redact(url)!r}: schema={schema!r}: use a lower-case SQL name (letters, digits, _)")
    if "owner" in options and not options["owner"]:
        raise ConfigError(f"store {_redact(url)!r}: owner= is empty: give an engine id, or leave it out")


def open_postgres_url(url: str, *, readonly: bool = False) -> PostgresStore:
    """Open the store that a ``postgresql://`` (or ``postgres://``) URL names.

    The URL is libpq's (``postgresql://user:password@host:5432/dbname?sslmode=require``, or
    ``postgresql://user@/dbname?host=/run/postgresql`` for a Unix socket). yawlflow's options go
    in the same query string and are taken out before connecting: ``snapshot_every``, ``writer``
    (``thread``/``inline``), ``owner`` (this engine's lease id; default random), ``lease_s``
    (default 30), ``schema`` (default ``yawlflow``), ``readonly``.

    Raises:
        ConfigError: psycopg is missing, or a malformed URL or option.
        StoreError: as :class:`PostgresStore`.
    """
    check_postgres_url(url)
    conninfo, options = _split_url(url)
    if readonly:
        options["readonly"] = True
    return PostgresStore(conninfo, **options)
