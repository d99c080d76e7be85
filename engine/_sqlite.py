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
* **Published specs** (schema 3). ``published`` maps ``(tenant, spec_id)`` — ``tenant`` NULL:
  every tenant — to a spec version in ``specs``: what ``publish_spec`` keeps for new cases
  (``yawlflow serve``'s uploads). It is outside the hash chain, as ``specs`` is: a version is
  named by the SHA-256 of its body.
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
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from ._errors import ConfigError, StoreError
from ._logstore import (
    _APPEND,
    _CREATE,
    _PUBLISH,
    _STATUS,
    PUBLISH_SQL,
    Migration,
    Writer,
    _Head,
    _Op,
    _WriterStore,
    check_options,
    now_iso,
    pending_steps,
)
from ._provenance import GENESIS, ChainProblem, check_chains, snapshot_hash
from ._store import Snapshot

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

_SYNCHRONOUS: Final = ("OFF", "NORMAL", "FULL", "EXTRA")


MIGRATIONS: list[Migration[sqlite3.Connection]] = [
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
    Migration(
        3,
        "published specs: the spec version each tenant (NULL: every tenant) starts new cases of, by spec id",
        (
            # one row per (tenant, spec id); the spec version is a row of specs (outside the hash chain)
            """CREATE TABLE published (
                tenant TEXT,
                spec_id TEXT NOT NULL,
                spec_hash BLOB NOT NULL REFERENCES specs (hash),
                published_at INTEGER NOT NULL
            )""",
            "CREATE UNIQUE INDEX published_key ON published (coalesce(tenant, ''), spec_id)",
        ),
    ),
]
"""Every schema step, oldest first. A new release appends; a step once released never changes."""


_INSERT_EVENT: Final = (
    "INSERT INTO events (case_key, seq, kind, body, prev_hash, hash, at, wall_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_wall_ns: Callable[[], int] = time.time_ns
"""The wall clock :meth:`SqliteStore.append` stamps each event with (tests replace it)."""


def schema_version() -> int:
    """The schema version this code writes: the last of :data:`MIGRATIONS`."""
    return MIGRATIONS[-1].version


class SqliteStore(_WriterStore[_Head, None]):
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

    _logger = _log
    _READONLY_FIX = "open it without readonly=True to write"
    _WRITE_FIX = "check disk space and permissions"

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
        check_options(snapshot_every, writer)
        if not isinstance(busy_timeout_ms, int) or isinstance(busy_timeout_ms, bool) or busy_timeout_ms < 0:
            raise ConfigError(f"busy_timeout_ms={busy_timeout_ms!r}: use a whole number of milliseconds >= 0")
        super().__init__(label=f"sqlite store {Path(path)}", snapshot_every=snapshot_every, writer=writer,
                         readonly=readonly, db_error=sqlite3.Error)
        self.path: Final = Path(path)
        self.synchronous: Final = sync
        self._busy_ms = busy_timeout_ms
        self._next_key = 1
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
        self._start_writer(f"yawlflow-sqlite-writer {self.path}")

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
        for step in pending_steps(MIGRATIONS, found):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in step.statements:
                    conn.execute(statement)
                if step.run is not None:
                    step.run(conn)
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                             (str(step.version),))
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                             (f"migration.{step.version}", f"{step.description} ({now_iso()})"))
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

    # -- the Store protocol (the rest is _WriterStore's) -----------------------------------------
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

    # -- beyond the protocol -------------------------------------------------------------------
    def verify(self, case: str | None = None) -> list[ChainProblem]:
        """Check the provenance chains (see :func:`yawlflow._provenance.verify`)."""
        return self._read(lambda conn: check_chains(conn, case))

    def __repr__(self) -> str:
        return f"<SqliteStore {str(self.path)!r} {self._state()}>"

    # -- internals: writes ---------------------------------------------------------------------
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
                if code == _PUBLISH:  # no case: its order among the case writes does not matter
                    conn.execute(PUBLISH_SQL[0], op[2])
                    conn.execute(PUBLISH_SQL[1], op[3])
                    continue
                key = op[1].key
                if code == _APPEND:
                    rows.append((key, *op[2:]))
                    heads[key] = (op[2], op[6], op[8])  # updated_at: the wall clock
                    continue
                if rows:
                    conn.executemany(_INSERT_EVENT, rows)
                    rows = []
                if code == _CREATE:
                    conn.execute("INSERT OR IGNORE INTO specs (hash, spec_id, format, body, created_at) "
                                 "VALUES (?, ?, ?, ?, ?)", op[2])
                    conn.execute("INSERT INTO cases (key, id, spec_hash, spec_id, net, status, tenant, parent, "
                                 "last_seq, last_hash, created_at, updated_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (key, *op[3]))
                elif code == _STATUS:
                    _, _, status, now = op
                    conn.execute("UPDATE cases SET status = ?, updated_at = ? WHERE key = ?", (status, now, key))
                else:
                    _, head, upto, anchor, state, now = op
                    if anchor is None:  # an older record than the head's: read its hash
                        row = conn.execute("SELECT hash FROM events WHERE case_key = ? AND seq = ?",
                                           (key, upto)).fetchone()
                        if row is None:
                            raise sqlite3.IntegrityError(f"case {head.case!r} has no record {upto} to anchor a "
                                                         "snapshot")
                        anchor = row[0]
                    conn.execute("INSERT OR REPLACE INTO snapshots (case_key, upto_seq, anchor, state, hash, at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)",
                                 (key, upto, anchor, state, snapshot_hash(head.case, upto, anchor, state), now))
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

    # -- internals: reads ----------------------------------------------------------------------
    def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise StoreError(f"sqlite store {self.path} is closed")
        self._catch_up()
        with self._rlock:
            conn = self._rconn
            if conn is None:
                raise StoreError(f"sqlite store {self.path} is closed")
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: reading failed: {exc} (check the file with "
                                 "`yawlflow verify`)") from None

    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._read(lambda conn: conn.execute(sql, params).fetchall())

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
        head = _Head(case, key, last_seq + 1, last_hash, spec_hash, -1 if snap is None else snap)
        with self._mutex:
            return self._heads.setdefault(case, head)

    def _new_head(self, case: str, spec_hash: bytes) -> _Head:
        return _Head(case, self._next_key, 0, GENESIS, spec_hash, -1)

    def _created(self, head: _Head) -> None:
        self._next_key += 1

    def _now_ns(self) -> int:
        return _wall_ns()

    def _store_arg(self) -> str:
        return f"sqlite:///{self.path}"

    def _release(self) -> None:
        for conn in {id(c): c for c in (self._rconn, self._wconn) if c is not None}.values():
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._rconn = self._wconn = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None


# -- helpers -----------------------------------------------------------------------------------
def _rollback(conn: sqlite3.Connection) -> bool:
    """Roll back an open transaction; ``False`` if that failed (the connection's state is unknown)."""
    if not conn.in_transaction:
        return True
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        return False
    return True


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
        info = f"pid {os.getpid()} on {platform.node() or 'this host'} since {now_iso()}"
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
