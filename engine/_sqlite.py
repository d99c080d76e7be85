"""The embedded durable store: SQLite in WAL mode, one writer, a hash-chained event log.

Theory of operation (ADR 0005 has the reasons).

* **One file, one writer.** Opening takes an exclusive ``flock`` on ``<db>.lock`` (the holder's
  pid, host and start time are written into it), so a second :class:`SqliteStore` on the same
  file, in this process or another, fails at once with a :class:`~yawlflow.StoreError` naming the
  holder. The kernel drops the lock when the holder closes the store or dies.
* **Schema.** A ``meta`` table holds ``schema_version``; :data:`MIGRATIONS` run in order on open,
  each in its own ``BEGIN IMMEDIATE`` transaction, so a failed migration leaves the previous
  version whole. A file from a newer schema is refused with both versions named. SQLite's
  ``application_id`` marks the file as ours, so a foreign database is refused rather than changed.
* **Writes.** ``create``, ``append``, ``set_status`` and ``snapshot`` check their arguments,
  encode, hash and assign the next ``seq`` in the caller's thread (microseconds, no I/O), then hand
  the row to the *writer thread*, which takes everything queued, writes it in one
  ``BEGIN IMMEDIATE`` … ``COMMIT`` (group commit) and, with ``synchronous=FULL``, returns from the
  commit once the WAL is fsynced. A write is *acknowledged* — on disk — once :meth:`flush`
  returns or :meth:`durable` is awaited after it. ``writer="inline"`` commits in the caller's
  thread instead (each call is then durable when it returns): for tests and scripts.
* **Failure.** In inline mode a failed write raises :class:`~yawlflow.StoreError`, its
  transaction rolled back and the store unchanged, and the store stays usable. A failed group
  commit in thread mode is *sticky*: the batch rolled back, and every later call raises, because
  the caller has gone on from writes that are not on disk; reopen the store and resume.
* **Reads** (``events``, ``records``, …) first wait for pending writes (read your writes), then
  read through a connection of their own, which WAL lets run beside the writer.
* **Time.** An event row keeps two times: ``at``, the engine clock's ``at_ns`` (monotonic or
  virtual: it orders and times the case, and timers are re-armed from it), and ``wall_ns``
  (schema 2), the wall-clock time ``append`` was called (``time.time_ns()``), which
  :meth:`SqliteStore.times` returns for exports (XES). ``wall_ns`` is not part of a record's hash
  (the hashed body holds ``at_ns``; the chain covers what the case did, not when a row was
  written), so records written before schema 2 keep their hashes and ``verify`` holds for old
  and new alike; their ``wall_ns`` is NULL and :meth:`~SqliteStore.times` derives it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import platform
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio
import anyio.to_thread

from . import _codec
from ._errors import ConfigError, StoreError
from ._events import Event
from ._provenance import GENESIS, ChainProblem, check_chains, event_hash, snapshot_hash
from ._store import CaseExistsError, CaseRecord, Snapshot

__all__ = (
    "APPLICATION_ID",
    "MIGRATIONS",
    "Migration",
    "Snapshot",
    "SqliteStore",
    "open_sqlite_url",
    "schema_version",
)

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

APPLICATION_ID: Final = 0x59574C46
"""SQLite's ``PRAGMA application_id`` of a yawlflow store ("YWLF")."""

Writer = Literal["thread", "inline"]
_SYNCHRONOUS: Final = ("OFF", "NORMAL", "FULL", "EXTRA")


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: run once, in its own transaction, when a store is opened.

    Attributes:
        version: the schema version after this step (1, 2, …, without gaps).
        description: what it changes (kept in ``meta`` as ``migration.<version>``).
        statements: SQL run in order (not ``executescript``, which would commit half-way).
        run: Python run after the statements, for data migrations.
    """

    version: int
    description: str
    statements: tuple[str, ...] = ()
    run: Callable[[sqlite3.Connection], None] | None = None


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "the initial schema: meta, specs, cases, events (append-only, hash-chained), snapshots",
        (
            f"PRAGMA application_id = {APPLICATION_ID}",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
            # one row per spec version: the hash of its encoded body names it
            """CREATE TABLE specs (
                hash BLOB PRIMARY KEY,
                spec_id TEXT NOT NULL,
                format TEXT NOT NULL,
                body BLOB NOT NULL,
                created_at INTEGER NOT NULL
            ) WITHOUT ROWID""",
            # key: creation order and the events' compact reference; last_seq/last_hash: the head
            # of the case's chain, updated in the same transaction as its events
            """CREATE TABLE cases (
                key INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                spec_hash BLOB NOT NULL REFERENCES specs (hash),
                spec_id TEXT NOT NULL,
                net TEXT NOT NULL,
                status TEXT NOT NULL,
                tenant TEXT,
                parent TEXT,
                last_seq INTEGER NOT NULL,
                last_hash BLOB NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            )""",
            "CREATE INDEX cases_by_status ON cases (status, tenant)",
            """CREATE TABLE events (
                case_key INTEGER NOT NULL REFERENCES cases (key),
                seq INTEGER NOT NULL,
                kind TEXT NOT NULL,
                body BLOB NOT NULL,
                prev_hash BLOB NOT NULL,
                hash BLOB NOT NULL,
                at INTEGER NOT NULL,
                PRIMARY KEY (case_key, seq)
            ) WITHOUT ROWID""",
            """CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
               BEGIN SELECT RAISE(ABORT, 'yawlflow: the event log is append-only'); END""",
            """CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
               BEGIN SELECT RAISE(ABORT, 'yawlflow: the event log is append-only'); END""",
            # the latest snapshot of a case; anchor: the hash of event upto_seq
            """CREATE TABLE snapshots (
                case_key INTEGER NOT NULL REFERENCES cases (key),
                upto_seq INTEGER NOT NULL,
                anchor BLOB NOT NULL,
                state BLOB NOT NULL,
                hash BLOB NOT NULL,
                at INTEGER NOT NULL,
                PRIMARY KEY (case_key, upto_seq)
            ) WITHOUT ROWID""",
        ),
    ),
    Migration(
        2,
        "events keep the wall-clock time they were appended (wall_ns; NULL in older records)",
        ("ALTER TABLE events ADD COLUMN wall_ns INTEGER",),
    ),
]
"""Every schema step, oldest first. A new release appends; a step once released never changes."""


class _Head:
    """What the store keeps in memory about a case it has touched: its chain's head."""

    __slots__ = ("key", "last_hash", "next_seq", "snap_seq", "spec_hash")

    def __init__(self, key: int, next_seq: int, last_hash: bytes, spec_hash: bytes, snap_seq: int) -> None:
        self.key = key
        self.next_seq = next_seq
        self.last_hash = last_hash
        self.spec_hash = spec_hash
        self.snap_seq = snap_seq


# One queued write: an opcode and its parameters. Tuples: cheap to build on the hot path.
_CREATE: Final = 0  # (op, spec row, case row)
_APPEND: Final = 1  # (op, case_key, seq, kind, body, prev_hash, hash, at, wall_ns)
_STATUS: Final = 2  # (op, case_key, status, now)
_SNAPSHOT: Final = 3  # (op, case_key, case id, upto_seq, state, now)
_Op = tuple[Any, ...]
_INSERT_EVENT: Final = (
    "INSERT INTO events (case_key, seq, kind, body, prev_hash, hash, at, wall_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_wall_ns: Callable[[], int] = time.time_ns
"""The wall clock :meth:`SqliteStore.append` stamps each event with (tests replace it)."""


def schema_version() -> int:
    """The schema version this code writes: the last of :data:`MIGRATIONS`."""
    return MIGRATIONS[-1].version


class SqliteStore:
    """The durable store in one SQLite file. See the module docstring; ADR 0005 has the reasons.

    Args:
        path: the database file (created with its schema when missing or empty).
        synchronous: SQLite's ``PRAGMA synchronous``: ``FULL`` (the default) fsyncs the WAL at
            every commit, so an acknowledged write survives a power cut; ``NORMAL`` survives a
            crash of the process but may lose the last commits to a power cut.
        snapshot_every: :meth:`needs_snapshot` says yes once a case has this many events after
            its last snapshot (0: never).
        busy_timeout_ms: how long a write waits for SQLite's write lock (held briefly by a
            checkpoint or by a tool on the same file) before it fails.
        writer: ``"thread"`` (the default): writes are group-committed by a writer thread;
            ``"inline"``: every write commits in the caller's thread before it returns.
        readonly: read without the writer's lock (``verify``, ``cases list`` beside a running
            engine); every write raises.

    Raises:
        StoreError: the file is locked by another store, is not a yawlflow store, comes from a
            newer yawlflow, or cannot be opened; the message names the file and the fix.
        ConfigError: a bad argument.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        snapshot_every: int = 100,
        busy_timeout_ms: int = 5000,
        writer: Writer = "thread",
        readonly: bool = False,
        _factory: type[sqlite3.Connection] | None = None,
    ) -> None:
        if isinstance(path, str) and path.startswith("sqlite:"):
            path = _path_of_url(path)
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path) or os.fspath(path) == ":memory:":
            raise ConfigError(f"SqliteStore needs the path of a database file, not {path!r} (use memory:// for none)")
        sync = str(synchronous).upper()
        if sync not in _SYNCHRONOUS:
            raise ConfigError(f"synchronous={synchronous!r}: use one of {', '.join(_SYNCHRONOUS)} (default FULL)")
        if not isinstance(snapshot_every, int) or isinstance(snapshot_every, bool) or snapshot_every < 0:
            raise ConfigError(f"snapshot_every={snapshot_every!r}: use a whole number >= 0 (0: never)")
        if not isinstance(busy_timeout_ms, int) or isinstance(busy_timeout_ms, bool) or busy_timeout_ms < 0:
            raise ConfigError(f"busy_timeout_ms={busy_timeout_ms!r}: use a whole number of milliseconds >= 0")
        if writer not in ("thread", "inline"):
            raise ConfigError(f"writer={writer!r}: use 'thread' (group commit, the default) or 'inline'")
        self.path: Final = Path(path)
        self.synchronous: Final = sync
        self.snapshot_every: Final = snapshot_every
        self.readonly: Final = readonly
        self.writer: Final[Writer] = "inline" if readonly else writer
        self.commits = 0
        """How many write transactions committed (group commit makes it far less than the writes)."""
        self._busy_ms = busy_timeout_ms
        self._mutex = threading.RLock()
        self._work = threading.Condition(self._mutex)  # the writer waits here for work
        self._done = threading.Condition(self._mutex)  # flush() waits here for commits
        self._queue: list[_Op] = []
        self._issued = 0
        self._committed = 0
        self._failure: StoreError | None = None
        self._failure_seen = False
        self._stopping = False
        self._closed = False
        self._heads: dict[str, _Head] = {}
        self._specs: dict[bytes, Any] = {}
        self._spec_rows: dict[int, tuple[Any, str, bytes, bytes]] = {}  # id(spec) -> (spec, format, body, hash)
        self._next_key = 1
        self._thread: threading.Thread | None = None
        self._round: anyio.Event | None = None  # durable(): set when the one waiting thread returns
        self._lock: _FileLock | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        try:
            self._open(_factory)
        except BaseException:
            self._release()
            raise
        self._rlock: contextlib.AbstractContextManager[bool] = (
            self._mutex if self.writer == "inline" else threading.Lock()
        )
        if self.writer == "thread":
            self._thread = threading.Thread(target=self._run_writer, name=f"yawlflow-sqlite-writer {self.path}",
                                            daemon=True)
            self._thread.start()

    # -- opening -------------------------------------------------------------------------------
    def _open(self, factory: type[sqlite3.Connection] | None) -> None:
        path = self.path
        if path.is_dir():
            raise StoreError(f"sqlite store {path}: that is a directory; give the path of a database file")
        if not path.parent.is_dir():
            raise StoreError(f"sqlite store {path}: the folder {path.parent} does not exist; create it first")
        if self.readonly and not path.exists():
            raise StoreError(f"sqlite store {path}: no such file (check the path or the URL: sqlite:///relative.db, "
                             "sqlite:////absolute.db)")
        _check_header(path)
        if not self.readonly:
            self._lock = _FileLock(path)
            self._lock.acquire()
        try:
            if self.readonly:
                conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=self._busy_ms / 1000)
            else:
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                       timeout=self._busy_ms / 1000, factory=factory or sqlite3.Connection)
        except sqlite3.Error as exc:
            raise StoreError(
                f"sqlite store {path}: cannot open it: {exc} (check the path and its permissions)"
            ) from None
        self._wconn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            found = _found_version(conn, path)
            latest = schema_version()
            if found > latest:
                raise StoreError(
                    f"sqlite store {path}: its schema is version {found}, but this yawlflow knows versions up to "
                    f"{latest}: a newer yawlflow wrote it; upgrade yawlflow to open it (an older one cannot)"
                )
            if self.readonly:
                if found < latest:
                    raise StoreError(
                        f"sqlite store {path}: its schema is version {found}, this yawlflow's is {latest}; open it "
                        "for writing once (an engine on it, or SqliteStore(path)) to migrate it, then read it"
                    )
            else:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(
                        f"sqlite store {path}: SQLite cannot use WAL mode here (journal_mode is {mode}); put the "
                        "store on a local file system"
                    )
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
                if found < latest:
                    self._migrate(conn, found)
            self._next_key = int(conn.execute("SELECT coalesce(max(key), 0) + 1 FROM cases").fetchone()[0])
            if self.writer == "thread":
                self._rconn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                              timeout=self._busy_ms / 1000)
                self._rconn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            else:
                self._rconn = conn
        except StoreError:
            raise
        except sqlite3.Error as exc:
            raise StoreError(
                f"sqlite store {path}: cannot open it: {exc} (is it a yawlflow store? check the file with "
                "`sqlite3 PATH 'PRAGMA integrity_check'`, or move it away to start a new store)"
            ) from None

    def _migrate(self, conn: sqlite3.Connection, found: int) -> None:
        steps = [m for m in MIGRATIONS if m.version > found]
        for want, step in enumerate(steps, start=found + 1):
            if step.version != want:
                raise StoreError(f"yawlflow's migrations skip from {want - 1} to {step.version}: this is a bug; "
                                 "please report it")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in step.statements:
                    conn.execute(statement)
                if step.run is not None:
                    step.run(conn)
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                             (str(step.version),))
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                             (f"migration.{step.version}", f"{step.description} ({_now_iso()})"))
                conn.execute("COMMIT")
            except BaseException as exc:
                _rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(
                        f"sqlite store {self.path}: migrating its schema from version {step.version - 1} to "
                        f"{step.version} failed: {exc}; the store is left at version {step.version - 1}, unchanged "
                        "(free disk space or fix the permissions, then open it again)"
                    ) from None
                raise
            _log.info("sqlite store %s: schema migrated to version %d (%s)", self.path, step.version,
                      step.description)

    # -- the Store protocol --------------------------------------------------------------------
    def create(self, record: CaseRecord, spec: Any) -> None:
        """Register a new case and the spec it runs (each spec version is stored once).

        Raises:
            StoreError: a case with that id exists, or the spec cannot be stored.
        """
        cached = self._spec_rows.get(id(spec))
        if cached is not None and cached[0] is spec:
            _, fmt, body, spec_hash = cached
        else:
            try:
                fmt, body, spec_hash = _codec.encode_spec(spec)
            except _codec.CodecError as exc:
                raise StoreError(f"sqlite store {self.path}: case {record.case!r}: {exc}") from None
            if len(self._spec_rows) >= 64:  # specs loaded anew for every case: keep the cache small
                self._spec_rows.clear()
            self._spec_rows[id(spec)] = (spec, fmt, body, spec_hash)
        now = _wall_ns()
        with self._mutex:
            self._check_writable()
            if record.case in self._heads or self._load_head(record.case) is not None:
                raise CaseExistsError(f"case {record.case!r} already exists in the store")
            key = self._next_key
            op = (_CREATE, (spec_hash, _spec_id(spec, record), fmt, body, now),
                  (key, record.case, spec_hash, record.spec_id, record.net, record.status, record.tenant,
                   record.parent, -1, GENESIS, now, now))
            self._write(op)
            self._next_key = key + 1
            self._heads[record.case] = _Head(key, 0, GENESIS, spec_hash, -1)
            self._specs.setdefault(spec_hash, spec)

    def append(self, case: str, event: Event) -> int:
        """Append one event to the case's log; it is durable once :meth:`flush` or :meth:`durable` returns.

        Returns:
            The event's ``seq`` in the case's log (0, 1, …).

        Raises:
            StoreError: no such case, the event holds data that cannot be stored, or (thread mode)
                an earlier write failed.
        """
        try:
            kind, body = _codec.encode_event(event)
        except _codec.CodecError as exc:
            raise StoreError(f"sqlite store {self.path}: case {case!r}: {exc}") from None
        with self._mutex:
            self._check_writable()
            head = self._head(case)
            seq = head.next_seq
            digest = event_hash(case, seq, kind, body, head.last_hash)
            self._write((_APPEND, head.key, seq, kind, body, head.last_hash, digest, event.at_ns, _wall_ns()))
            head.next_seq = seq + 1
            head.last_hash = digest
        return seq

    def events(self, case: str, start: int = 0) -> list[Event]:
        """The case's log from ``seq`` ``start`` on (all of it by default), oldest first.

        Raises:
            StoreError: no such case, or one of its records does not decode or is missing (the
                message names the case and the record; other cases are not affected).
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        head = self._head(case)
        known = head.next_seq  # every event appended so far is read below (the read flushes first)
        rows: list[tuple[int, str, bytes]] = self._read(lambda conn: conn.execute(
            "SELECT seq, kind, body FROM events WHERE case_key = ? AND seq >= ? ORDER BY seq", (head.key, start)
        ).fetchall())
        out: list[Event] = []
        for expected, (seq, kind, body) in enumerate(rows, start=start):
            if seq != expected:
                raise self._poisoned(case, expected, f"the record is missing (the next one is {seq})")
            try:
                out.append(_codec.decode_event(body, kind))
            except _codec.CodecError as exc:
                raise self._poisoned(case, seq, str(exc)) from None
        end = start + len(rows)
        if end < known:
            raise self._poisoned(case, end, f"the record is missing (the case's head says its last is {known - 1})")
        return out

    def times(self, case: str, start: int = 0) -> list[int]:
        """When each event from ``seq`` ``start`` on was appended: wall-clock ns since the Unix epoch.

        One per event of :meth:`events` (same ``start``). A record written before schema 2 has no
        wall time of its own; it is derived from the case's creation time plus how far the
        engine's clock had moved since the case's first record, and kept no later than the first
        record that has one. (An engine restarted while such a case ran may have reset its clock:
        those derived times are then estimates, never before the case's creation.)

        Raises:
            StoreError: no such case, or one of its records is missing.
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        head = self._head(case)
        known = head.next_seq

        def read(conn: sqlite3.Connection) -> tuple[list[tuple[int, int, int | None]], tuple[int, int, int | None]]:
            rows = conn.execute("SELECT seq, at, wall_ns FROM events WHERE case_key = ? AND seq >= ? ORDER BY seq",
                                (head.key, start)).fetchall()
            base: tuple[int, int, int | None] = (0, 0, None)
            if any(wall is None for _, _, wall in rows):
                created, at0, first_wall = conn.execute(
                    "SELECT created_at, (SELECT at FROM events WHERE case_key = c.key ORDER BY seq LIMIT 1), "
                    "(SELECT wall_ns FROM events WHERE case_key = c.key AND wall_ns IS NOT NULL ORDER BY seq LIMIT 1) "
                    "FROM cases c WHERE key = ?", (head.key,)).fetchone()
                base = (int(created), int(at0 if at0 is not None else 0), first_wall)
            return rows, base

        rows, (created, at0, first_wall) = self._read(read)
        out: list[int] = []
        for expected, (seq, at, wall) in enumerate(rows, start=start):
            if seq != expected:
                raise self._poisoned(case, expected, f"the record is missing (the next one is {seq})")
            if wall is None:
                wall = created + max(0, at - at0)
                if first_wall is not None:
                    wall = min(wall, first_wall)
            out.append(wall)
        end = start + len(rows)
        if end < known:
            raise self._poisoned(case, end, f"the record is missing (the case's head says its last is {known - 1})")
        return out

    def set_status(self, case: str, status: str) -> None:
        """Record the case's status.

        Raises:
            StoreError: no such case.
        """
        with self._mutex:
            self._check_writable()
            head = self._head(case)
            self._write((_STATUS, head.key, status, time.time_ns()))

    def records(self, status: str | None = None, tenant: str | None = None) -> list[CaseRecord]:
        """Every case, in creation order; only those with ``status`` and/or ``tenant`` when given."""
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if tenant is not None:
            where.append("tenant = ?")
            params.append(tenant)
        sql = "SELECT id, spec_id, net, status, tenant, parent FROM cases"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY key"
        rows = self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [CaseRecord(case=c, spec_id=s, net=n, status=st, tenant=t, parent=p) for c, s, n, st, t, p in rows]

    def spec_of(self, case: str) -> Any:
        """The spec a case runs (the very object given to :meth:`create` in this process).

        Raises:
            StoreError: no such case, or its spec does not decode.
        """
        head = self._head(case)
        spec = self._specs.get(head.spec_hash)
        if spec is not None:
            return spec
        row = self._read(lambda conn: conn.execute(
            "SELECT format, body FROM specs WHERE hash = ?", (head.spec_hash,)).fetchone())
        if row is None:
            raise self._poisoned(case, None, f"its spec version {head.spec_hash.hex()[:16]} is not in the store")
        try:
            spec = _codec.decode_spec(row[0], row[1])
        except _codec.CodecError as exc:
            raise self._poisoned(case, None, f"spec version {head.spec_hash.hex()[:16]}: {exc}") from None
        return self._specs.setdefault(head.spec_hash, spec)

    # -- beyond the protocol -------------------------------------------------------------------
    def record(self, case: str) -> CaseRecord:
        """The record of one case.

        Raises:
            StoreError: no such case.
        """
        head = self._head(case)
        row = self._read(lambda conn: conn.execute(
            "SELECT id, spec_id, net, status, tenant, parent FROM cases WHERE key = ?", (head.key,)).fetchone())
        c, s, n, st, t, p = row
        return CaseRecord(case=c, spec_id=s, net=n, status=st, tenant=t, parent=p)

    def spec_version(self, case: str) -> str:
        """The version of the spec a case runs: the SHA-256 (hex) of its stored encoding.

        Raises:
            StoreError: no such case.
        """
        return self._head(case).spec_hash.hex()

    def head(self, case: str) -> tuple[int, bytes]:
        """The case's last ``seq`` (-1 before its first event) and that record's hash.

        Publish it elsewhere to anchor the chain: a rewritten log ends in another hash.

        Raises:
            StoreError: no such case.
        """
        with self._mutex:
            head = self._head(case)
            return head.next_seq - 1, head.last_hash

    def snapshot(self, case: str, state: bytes, upto_seq: int) -> None:
        """Keep the case's state after its event ``upto_seq`` (replacing its older snapshot).

        The state is the caller's encoding (bytes); it is bound to the chain by the hash of
        record ``upto_seq``.

        Raises:
            StoreError: no such case, or ``upto_seq`` is not one of its records.
        """
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise TypeError(f"a snapshot's state must be bytes, not {type(state).__name__}")
        with self._mutex:
            self._check_writable()
            head = self._head(case)
            if not 0 <= upto_seq < head.next_seq:
                raise StoreError(f"case {case!r} has no record {upto_seq} to snapshot after (its last is "
                                 f"{head.next_seq - 1})")
            self._write((_SNAPSHOT, head.key, case, upto_seq, bytes(state), time.time_ns()))
            head.snap_seq = max(head.snap_seq, upto_seq)

    def latest_snapshot(self, case: str) -> Snapshot | None:
        """The case's latest snapshot, or ``None`` (none, or it fails its hash: then fold from the start).

        Raises:
            StoreError: no such case.
        """
        head = self._head(case)
        row = self._read(lambda conn: conn.execute(
            "SELECT s.upto_seq, s.anchor, s.state, s.hash, e.hash FROM snapshots s LEFT JOIN events e "
            "ON e.case_key = s.case_key AND e.seq = s.upto_seq WHERE s.case_key = ? "
            "ORDER BY s.upto_seq DESC LIMIT 1", (head.key,)).fetchone())
        if row is None:
            return None
        upto, anchor, state, digest, event_digest = row
        if anchor != event_digest or snapshot_hash(case, upto, anchor, state) != digest:
            _log.warning("sqlite store %s: case %r: the snapshot after record %d fails its hash; ignoring it "
                         "(run `yawlflow verify`)", self.path, case, upto)
            return None
        return Snapshot(upto, state)

    def needs_snapshot(self, case: str) -> bool:
        """Whether the case has ``snapshot_every`` events or more after its latest snapshot.

        Raises:
            StoreError: no such case.
        """
        if not self.snapshot_every:
            return False
        with self._mutex:
            head = self._head(case)
            return head.next_seq - 1 - head.snap_seq >= self.snapshot_every

    def verify(self, case: str | None = None) -> list[ChainProblem]:
        """Check the provenance chains (see :func:`yawlflow._provenance.verify`)."""
        return self._read(lambda conn: check_chains(conn, case))

    # -- durability ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Block until every write made so far is on disk.

        Raises:
            StoreError: a write failed (the store must be reopened), or the store is closed.
        """
        if self._closed:
            raise StoreError(f"sqlite store {self.path} is closed")
        self._wait_for(self._issued)

    async def durable(self) -> None:
        """Wait, without blocking the event loop, until every write made so far is on disk.

        Returns at once (no checkpoint) when they already are. Otherwise one worker thread
        (``anyio.to_thread``) waits for the writer's commit, however many tasks await at the same
        time: the others wait on an ``anyio.Event`` that it sets. So it works on asyncio, uvloop
        and trio alike, and never takes more than one thread of anyio's pool from handlers.
        Cancelling the wait does not cancel the writes.

        Raises:
            StoreError: a write failed (the store must be reopened), or the store is closed.
        """
        target = self._issued
        while True:
            if self._failure is not None or self._closed:
                self._wait_for(target)  # raises
            if self._committed >= target:
                return
            current = self._round
            if current is not None:
                await current.wait()  # a task waits for a commit already: share it, then look again
                continue
            done = self._round = anyio.Event()
            try:
                await anyio.to_thread.run_sync(self._wait_for, self._issued, abandon_on_cancel=True)
            finally:
                self._round = None
                done.set()

    @property
    def pending(self) -> int:
        """How many writes are queued but not yet committed."""
        return self._issued - self._committed

    def close(self) -> None:
        """Write what is pending, stop the writer, close the file and release the lock. Idempotent.

        Raises:
            StoreError: pending writes were lost to an earlier failure that no call has reported.
        """
        with self._mutex:
            if self._closed:
                return
            unreported = not self._failure_seen
        error: StoreError | None = None
        try:
            self.flush()
        except StoreError as exc:
            error = exc
        with self._mutex:
            self._stopping = True
            self._closed = True
            self._work.notify_all()
            self._done.notify_all()
        if self._thread is not None:
            self._thread.join()
        self._release()
        if error is not None and unreported:
            raise error

    async def aclose(self) -> None:
        """:meth:`close` in a worker thread, so that the final commit does not block the event loop."""
        await anyio.to_thread.run_sync(self.close)

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("read-only" if self.readonly else f"writer={self.writer}")
        return f"<SqliteStore {str(self.path)!r} {state}>"

    # -- internals: writes ---------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError(f"sqlite store {self.path} is closed")
        if self.readonly:
            raise StoreError(f"sqlite store {self.path} was opened read-only; open it without readonly=True to write")
        if self._failure is not None:
            self._failure_seen = True
            raise self._failure

    def _write(self, op: _Op) -> None:
        """Under the mutex: commit ``op`` now (inline) or queue it for the writer (thread)."""
        if self.writer == "inline":
            try:
                self._apply([op])
            except sqlite3.Error as exc:
                raise self._write_error(exc, 1, sticky=self._failure is not None) from None
            self._issued += 1
            self._committed += 1
        else:
            self._queue.append(op)
            self._issued += 1
            self._work.notify()

    def _apply(self, batch: Sequence[_Op]) -> None:
        """Write ``batch`` in one transaction; on failure roll it back (or mark the store broken)."""
        conn = self._wconn
        assert conn is not None  # noqa: S101 - open while not closed
        conn.execute("BEGIN IMMEDIATE")
        try:
            heads: dict[int, tuple[int, bytes, int]] = {}
            rows: list[tuple[Any, ...]] = []  # consecutive appends: one executemany
            for op in batch:
                code = op[0]
                if code == _APPEND:
                    rows.append(op[1:])
                    heads[op[1]] = (op[2], op[6], op[8])  # updated_at: the wall clock
                    continue
                if rows:
                    conn.executemany(_INSERT_EVENT, rows)
                    rows = []
                if code == _CREATE:
                    conn.execute("INSERT OR IGNORE INTO specs (hash, spec_id, format, body, created_at) "
                                 "VALUES (?, ?, ?, ?, ?)", op[1])
                    conn.execute("INSERT INTO cases (key, id, spec_hash, spec_id, net, status, tenant, parent, "
                                 "last_seq, last_hash, created_at, updated_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", op[2])
                elif code == _STATUS:
                    _, key, status, now = op
                    conn.execute("UPDATE cases SET status = ?, updated_at = ? WHERE key = ?", (status, now, key))
                else:
                    _, key, case, upto, state, now = op
                    row = conn.execute("SELECT hash FROM events WHERE case_key = ? AND seq = ?",
                                       (key, upto)).fetchone()
                    if row is None:
                        raise sqlite3.IntegrityError(f"case {case!r} has no record {upto} to anchor a snapshot")
                    anchor = row[0]
                    conn.execute("INSERT OR REPLACE INTO snapshots (case_key, upto_seq, anchor, state, hash, at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)",
                                 (key, upto, anchor, state, snapshot_hash(case, upto, anchor, state), now))
                    conn.execute("DELETE FROM snapshots WHERE case_key = ? AND upto_seq < ?", (key, upto))
            if rows:
                conn.executemany(_INSERT_EVENT, rows)
            if heads:
                conn.executemany("UPDATE cases SET last_seq = ?, last_hash = ?, updated_at = ? WHERE key = ?",
                                 [(seq, digest, wall, key) for key, (seq, digest, wall) in heads.items()])
            conn.execute("COMMIT")
        except BaseException:
            if not _rollback(conn):
                self._failure = StoreError(
                    f"sqlite store {self.path}: a failed write could not be rolled back; the store is unusable "
                    "until reopened (nothing of that write was committed)"
                )
            raise
        self.commits += 1

    def _write_error(self, exc: BaseException, count: int, *, sticky: bool) -> StoreError:
        what = "1 write" if count == 1 else f"{count} writes"
        tail = ("; the store must be reopened (unfinished cases resume from what was stored)" if sticky
                else "; the store is unchanged and usable")
        return StoreError(
            f"sqlite store {self.path}: {what} failed and rolled back: {exc} (check disk space and permissions)"
            + tail
        )

    def _run_writer(self) -> None:
        while True:
            with self._mutex:
                while not self._queue and not self._stopping:
                    self._work.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
                target = self._issued
            try:
                self._apply(batch)
            except Exception as exc:  # every failure must reach flush()/durable(), not vanish with the thread
                with self._mutex:
                    lost = len(batch) + len(self._queue)
                    self._queue = []
                    self._failure = self._write_error(exc, lost, sticky=True)
                    self._done.notify_all()
                _log.error("%s", self._failure)
                return
            with self._mutex:
                self._committed = target
                self._done.notify_all()

    def _wait_for(self, target: int) -> None:
        with self._mutex:
            while self._committed < target and self._failure is None and not self._closed:
                self._done.wait()
            if self._failure is not None:
                self._failure_seen = True
                raise self._failure
            if self._committed < target:
                raise StoreError(f"sqlite store {self.path} was closed before its pending writes were committed")

    # -- internals: reads ----------------------------------------------------------------------
    def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise StoreError(f"sqlite store {self.path} is closed")
        if self._committed < self._issued or self._failure is not None:
            self.flush()
        with self._rlock:
            conn = self._rconn
            if conn is None:
                raise StoreError(f"sqlite store {self.path} is closed")
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: reading failed: {exc} (check the file with "
                                 "`yawlflow verify`)") from None

    def _head(self, case: str) -> _Head:
        head = self._heads.get(case)
        if head is None:
            head = self._load_head(case)
            if head is None:
                raise StoreError(f"no case {case!r} in the store")
        return head

    def _load_head(self, case: str) -> _Head | None:
        """The head of a case this process has not touched yet (committed: no flush needed)."""
        if self._closed:
            raise StoreError(f"sqlite store {self.path} is closed")
        with self._rlock:
            conn = self._rconn
            assert conn is not None  # noqa: S101 - open while not closed
            try:
                row = conn.execute(
                    "SELECT key, last_seq, last_hash, spec_hash, "
                    "(SELECT max(upto_seq) FROM snapshots s WHERE s.case_key = c.key) FROM cases c WHERE id = ?",
                    (case,)).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: reading case {case!r} failed: {exc}") from None
        if row is None:
            return None
        key, last_seq, last_hash, spec_hash, snap = row
        head = _Head(key, last_seq + 1, last_hash, spec_hash, -1 if snap is None else snap)
        with self._mutex:
            return self._heads.setdefault(case, head)

    def _poisoned(self, case: str, seq: int | None, what: str) -> StoreError:
        where = f"case {case!r}" if seq is None else f"case {case!r}, record {seq}"
        return StoreError(
            f"sqlite store {self.path}: {where}: {what}; this case cannot be loaded (other cases are not affected): "
            f"check it with `yawlflow verify --store sqlite:///{self.path} {case}`"
        )

    def _release(self) -> None:
        for conn in {id(c): c for c in (self._rconn, self._wconn) if c is not None}.values():
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._rconn = self._wconn = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


# -- helpers -----------------------------------------------------------------------------------
def _spec_id(spec: Any, record: CaseRecord) -> str:
    value = getattr(spec, "id", None)
    return value if isinstance(value, str) else record.spec_id


def _rollback(conn: sqlite3.Connection) -> bool:
    """Roll back an open transaction; ``False`` if that failed (the connection's state is unknown)."""
    if not conn.in_transaction:
        return True
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        return False
    return True


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


_SQLITE_MAGIC: Final = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            magic = f.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"sqlite store {path}: cannot read it: {exc} (check its permissions)") from None
    if magic and magic != _SQLITE_MAGIC:
        raise StoreError(
            f"sqlite store {path}: not an SQLite database (it starts with {magic[:8]!r}); give the path of a "
            "yawlflow store, or of a new file to create one"
        )


def _found_version(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of an open database: 0 for an empty one; refuses a foreign one."""
    app = int(conn.execute("PRAGMA application_id").fetchone()[0])
    tables = [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "ORDER BY name")]
    if app == 0 and not tables:
        return 0
    if app != APPLICATION_ID:
        listed = ", ".join(tables[:8]) + (", …" if len(tables) > 8 else "") if tables else "none"
        raise StoreError(
            f"sqlite store {path}: an SQLite database, but not a yawlflow store (application_id {app:#x}, "
            f"tables: {listed}); give another path, or move this file away to start a new store here"
        )
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store {path}: a yawlflow store without its meta table ({exc}); it is damaged: "
                         "restore it from a backup") from None
    if row is None or not str(row[0]).isdigit():
        raise StoreError(f"sqlite store {path}: a yawlflow store without a schema_version in its meta table; it is "
                         "damaged: restore it from a backup")
    return int(row[0])


class _FileLock:
    """An exclusive, non-blocking lock on ``<db>.lock``; the kernel drops it when its holder dies.

    ``flock`` locks belong to an open file description, so a second open in the same process
    conflicts too (``fcntl``'s POSIX locks would not). The file itself stays: removing it on
    release would let two openers lock two different files of the same name.
    """

    def __init__(self, db: Path) -> None:
        real = db.resolve()
        self.db = db
        self.path = real.with_name(real.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"sqlite store {self.db}: cannot create its lock file {self.path}: {exc} (check the "
                             "folder's permissions)") from None
        try:
            _lock_fd(fd)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise StoreError(f"sqlite store {self.db}: cannot lock {self.path}: {exc} (put the store on a local "
                                 "file system)") from None
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                holder = os.read(fd, 512).decode(errors="replace").strip() or "a holder that has not said who"
            except OSError:
                holder = "a holder that has not said who"
            os.close(fd)
            raise StoreError(
                f"sqlite store {self.db} is in use by another engine ({holder}; lock file {self.path}): one "
                "engine writes a store at a time; stop that one first, or give this one another store. To read it "
                "meanwhile, open it read-only (yawlflow verify / cases list do)"
            ) from None
        info = f"pid {os.getpid()} on {platform.node() or 'this host'} since {_now_iso()}"
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, info.encode())
        except OSError:
            pass  # the lock holds without the note
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the lock


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_fd(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


# -- URLs --------------------------------------------------------------------------------------
def _path_of_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
        raise ConfigError(
            f"store {url!r}: write sqlite:///relative/path.db or sqlite:////absolute/path.db (three slashes, then "
            "the path)"
        )
    return unquote(parts.path[1:])


def open_sqlite_url(url: str, *, readonly: bool = False) -> SqliteStore:
    """Open the store that a ``sqlite:///path.db`` URL names.

    ``sqlite:///cases.db`` is relative to the working directory, ``sqlite:////var/db/cases.db``
    absolute. Query parameters set the options: ``synchronous``, ``snapshot_every``,
    ``busy_timeout_ms``, ``writer``, ``readonly`` (e.g. ``sqlite:///cases.db?synchronous=NORMAL``).
    ``readonly=True`` opens it read-only whatever the URL says (tools beside a running engine).

    Raises:
        ConfigError: a malformed URL or option.
        StoreError: as :class:`SqliteStore`.
    """
    path = _path_of_url(url.split("?", 1)[0])
    options: dict[str, Any] = {}
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name in ("snapshot_every", "busy_timeout_ms"):
            if not value.isdigit():
                raise ConfigError(f"store {url!r}: {name} must be a whole number, not {value!r}")
            options[name] = int(value)
        elif name in ("synchronous", "writer"):
            options[name] = value
        elif name == "readonly":
            options[name] = value.lower() in ("1", "true", "yes", "")
        else:
            raise ConfigError(f"store {url!r}: unknown option {name!r} (known: synchronous, snapshot_every, "
                              "busy_timeout_ms, writer, readonly)")
    if readonly:
        options["readonly"] = True
    return SqliteStore(path, **options)
