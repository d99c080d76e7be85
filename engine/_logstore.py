"""What the durable stores share: a hash-chained event log written by one writer thread.

:class:`~yawlflow._sqlite.SqliteStore` and :class:`~yawlflow._postgres.PostgresStore` keep the
same log in the same tables and differ in the database under it; :class:`_WriterStore` is
everything above the database (ADR 0005, "One base for both stores").

* **Writes.** ``create``, ``append``, ``set_status``, ``snapshot`` and ``publish_spec`` check,
  encode, hash and number a record in the caller's thread, under the store's mutex, and hand it
  to :meth:`_write`: committed at once (``writer="inline"``) or queued for the *writer thread*,
  which takes everything queued and commits it in one transaction (group commit) through the
  subclass's :meth:`_WriterStore._apply`. ``_issued`` counts the writes made, ``_committed`` those
  committed (FIFO, so a count is a prefix); a write is acknowledged once ``_committed`` reaches
  its number.
* **Failure.** A failed group commit is *sticky* (``_failure``): the writer stops, and every later
  write and read raises it; a wait for writes that were all committed before it still returns.
* **Waiting.** :meth:`~_WriterStore.flush` blocks on a condition; :meth:`~_WriterStore.durable`
  never blocks the event loop: one task at a time waits on the store's :class:`_Wakeup` (a
  socket pair the writer pokes after a commit), the others on an ``anyio.Event`` it sets.
* **Heads.** Each case this store has touched has a :class:`_Head` in memory: the next ``seq``,
  the last record's hash, its spec version and its latest snapshot, so a write needs no read.

A subclass opens its connections, implements :meth:`~_WriterStore._apply`,
:meth:`~_WriterStore._rows`, :meth:`~_WriterStore._load_head`, :meth:`~_WriterStore._new_head`,
:meth:`~_WriterStore._store_arg` and :meth:`~_WriterStore._release`, and may refine the hooks
(``_writable_head``, ``_accept``, ``_report``, ``_before_close``, …).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Final, Generic, Literal, Self, TypeVar

import anyio
import anyio.to_thread

from . import _codec
from ._errors import ConfigError, StoreError
from ._events import Event
from ._provenance import GENESIS, event_hash, snapshot_hash
from ._store import CaseDamagedError, CaseExistsError, CaseRecord, Snapshot, published_id, published_order

__all__ = ("Migration", "Writer")

Writer = Literal["thread", "inline"]
_C = TypeVar("_C")

# One queued write: an opcode, the case's head, and its parameters. Tuples: cheap to build on the hot path.
_CREATE: Final = 0  # (op, head, spec row, case row without its key)
_APPEND: Final = 1  # (op, head, seq, kind, body, prev_hash, hash, at, wall_ns)
_STATUS: Final = 2  # (op, head, status, now)
_SNAPSHOT: Final = 3  # (op, head, upto_seq, anchor or None (read it from the log), state, now)
_PUBLISH: Final = 4  # (op, None: no case, spec row, published row); never refused by a case's lease
_Op = tuple[Any, ...]

PUBLISH_SQL: Final = (
    "INSERT INTO specs (hash, spec_id, format, body, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
    "INSERT INTO published (tenant, spec_id, spec_hash, published_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (coalesce(tenant, ''), spec_id) DO UPDATE SET spec_hash = excluded.spec_hash, "
    "published_at = excluded.published_at",
)
"""What a ``_PUBLISH`` op writes, with ``?`` placeholders: its spec row (each version once), then its
``published`` row, replacing the tenant's of that spec id (the table's unique index is on
``(coalesce(tenant, ''), spec_id)``: NULL, every tenant, is one key; a tenant is never ``''``)."""


@dataclass(frozen=True, slots=True)
class Migration(Generic[_C]):
    """One step of the schema: run once, in its own transaction, when a store is opened.

    Attributes:
        version: the schema version after this step (1, 2, …, without gaps).
        description: what it changes (kept in ``meta`` as ``migration.<version>``).
        statements: SQL run in order (SQLite: not ``executescript``, which would commit
            half-way; PostgreSQL: with the store's schema first on the ``search_path``).
        run: Python run after the statements, for data migrations; given the connection.
    """

    version: int
    description: str
    statements: tuple[str, ...] = ()
    run: Callable[[_C], None] | None = None


def pending_steps(migrations: Sequence[Migration[_C]], found: int) -> Iterator[Migration[_C]]:
    """The steps after version ``found``, in order.

    Raises:
        StoreError: the steps skip a version (a bug in yawlflow, not in the store).
    """
    steps = [m for m in migrations if m.version > found]
    for want, step in enumerate(steps, start=found + 1):
        if step.version != want:
            raise StoreError(f"yawlflow's migrations skip from {want - 1} to {step.version}: this is a bug; "
                             "please report it")
        yield step


def now_iso() -> str:
    """The local time, for the notes a migration leaves in ``meta``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def check_options(snapshot_every: object, writer: object) -> None:
    """Check the options every durable store takes.

    Raises:
        ConfigError: ``snapshot_every`` is not a whole number >= 0, or ``writer`` is unknown.
    """
    if not isinstance(snapshot_every, int) or isinstance(snapshot_every, bool) or snapshot_every < 0:
        raise ConfigError(f"snapshot_every={snapshot_every!r}: use a whole number >= 0 (0: never)")
    if writer not in ("thread", "inline"):
        raise ConfigError(f"writer={writer!r}: use 'thread' (group commit, the default) or 'inline'")


class _Head:
    """What the store keeps in memory about a case it has touched: its chain's head.

    ``next_seq``/``last_hash`` run ahead with the queued writes. ``key`` is the case's row
    (``None`` while a PostgreSQL store has not written it yet). ``lost``: why this head's queued
    writes were dropped (another engine took the case); ``None`` while they stand.
    """

    __slots__ = ("case", "key", "last_hash", "lost", "next_seq", "snap_seq", "spec_hash")

    def __init__(self, case: str, key: int | None, next_seq: int, last_hash: bytes, spec_hash: bytes,
                 snap_seq: int) -> None:
        self.case = case
        self.key = key
        self.next_seq = next_seq
        self.last_hash = last_hash
        self.spec_hash = spec_hash
        self.snap_seq = snap_seq
        self.lost: StoreError | None = None


_H = TypeVar("_H", bound=_Head)
_R = TypeVar("_R")


class _Wakeup:
    """How the writer thread wakes the one task that awaits a commit, on any event loop.

    A socket pair: the task waits until its receiving end is readable (``anyio.wait_readable``,
    so asyncio, uvloop and trio alike); the writer sends one byte after a commit, a failure or
    the store's close, and only while a task waits. The flags are guarded by the store's mutex,
    which the writer holds while it updates ``_committed``, so a wake-up is never lost between a
    task's last look and its wait. The receiving end is closed by :meth:`close` or, when a task
    is waiting on it then, by that task as it stops waiting (closing a socket under a waiting
    event loop would leave it waiting forever).
    """

    __slots__ = ("_closing", "_mutex", "_poked", "_recv", "_send", "_waiting")

    def __init__(self, mutex: threading.RLock) -> None:
        self._mutex = mutex
        self._recv, self._send = socket.socketpair()
        self._recv.setblocking(False)
        self._send.setblocking(False)
        self._waiting = False  # a task waits on _recv (or is about to)
        self._poked = False  # a byte was sent since it began to wait
        self._closing = False

    def poke(self) -> None:
        """Under the mutex: wake the waiting task, if any (one byte per wait is enough)."""
        if self._waiting and not self._poked and not self._closing:
            self._poked = True
            with contextlib.suppress(OSError):  # a full buffer holds a wake-up already
                self._send.send(b"\0")

    async def wait_until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` holds (looked at under the mutex). One task at a time.

        Cancellation-safe: a cancelled wait leaves the socket as it found it.
        """
        while True:
            with self._mutex:
                if ready() or self._closing:
                    return
                self._waiting = True
                self._poked = False
            try:
                await anyio.wait_readable(self._recv)
            finally:
                self._stop_waiting()

    def _stop_waiting(self) -> None:
        """After a wait (woken or cancelled): take the byte sent, or close the end that close() left."""
        with self._mutex:
            self._waiting = False
            if self._closing:
                self._recv.close()
            else:
                with contextlib.suppress(OSError):  # BlockingIOError: nothing to read
                    self._recv.recv(64)

    def close(self) -> None:
        """Under the mutex: close the pair. A waiting task wakes (end of file) and closes its end."""
        if self._closing:
            return
        self._closing = True
        self._send.close()
        if not self._waiting:
            self._recv.close()


class _WriterStore(abc.ABC, Generic[_H, _R]):
    """The shared part of the durable stores: the writer thread, group commit, heads and reads.

    Type parameters: the store's head class, and what its :meth:`_apply` returns (``None``, or
    the PostgreSQL store's refused cases), handed to :meth:`_accept` under the mutex.

    Args:
        label: how messages name the store (``sqlite store cases.db``).
        snapshot_every: :meth:`needs_snapshot` says yes once a case has this many events after
            its last snapshot (0: never).
        writer: ``"thread"``: a writer thread group-commits the writes; ``"inline"``: every
            write commits in the caller's thread before it returns.
        readonly: every write raises (and the writer is inline: nothing to commit).
        db_error: the driver's base exception (``sqlite3.Error``, ``psycopg.Error``): an inline
            write that raises it is reported as failed and rolled back.

    The subclass checks its arguments first (:func:`check_options`).
    """

    _logger: ClassVar[logging.Logger]
    """The subclass's module logger (so that records keep their logger's name)."""
    _READONLY_FIX: ClassVar[str] = "open it without readonly to write"
    _WRITE_FIX: ClassVar[str]
    """What to check after a failed write, in parentheses after the cause."""

    def __init__(self, *, label: str, snapshot_every: int, writer: Writer, readonly: bool,
                 db_error: type[Exception]) -> None:
        self.snapshot_every: Final = snapshot_every
        self.readonly: Final = readonly
        self.writer: Final[Writer] = "inline" if readonly else writer
        self.commits = 0
        """How many write transactions committed (group commit makes it far less than the writes)."""
        self._label = label
        self._db_error = db_error
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
        self._heads: dict[str, _H] = {}
        self._specs: dict[bytes, Any] = {}
        self._spec_rows: dict[int, tuple[Any, str, bytes, bytes]] = {}  # id(spec) -> (spec, format, body, hash)
        self._thread: threading.Thread | None = None
        self._wake: _Wakeup | None = None  # durable()'s wake-up (thread writer only)
        self._round: anyio.Event | None = None  # durable(): set when the one waiting task returns

    def _start_writer(self, name: str) -> None:
        """Start the writer thread (thread mode; once the store is open)."""
        if self.writer == "thread":
            self._wake = _Wakeup(self._mutex)
            self._thread = threading.Thread(target=self._run_writer, name=name, daemon=True)
            self._thread.start()

    # -- for the subclass ----------------------------------------------------------------------
    @abc.abstractmethod
    def _apply(self, batch: Sequence[_Op]) -> _R:
        """Write ``batch`` in one transaction, or raise with it rolled back (or the store marked broken)."""

    @abc.abstractmethod
    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Read-your-writes query through the read connection; ``?`` placeholders."""

    @abc.abstractmethod
    def _load_head(self, case: str) -> _H | None:
        """The head of a case this store has not touched yet, read from the database (``None``: no such case)."""

    @abc.abstractmethod
    def _new_head(self, case: str, spec_hash: bytes) -> _H:
        """Under the mutex: the head of a case being created by this store."""

    @abc.abstractmethod
    def _release(self) -> None:
        """Close the connections (and drop what the store holds) once the writer has stopped."""

    def _now_ns(self) -> int:
        """The wall clock that ``create`` and ``append`` stamp (``time.time_ns()``)."""
        return time.time_ns()

    def _writable_head(self, case: str) -> _H:
        """Under the mutex: the head a write to ``case`` goes to."""
        return self._head(case)

    def _case_key(self, head: _H) -> int:
        """The case's row, once it is written."""
        assert head.key is not None  # noqa: S101 - a SQLite head has its key from the start
        return head.key

    def _accept(self, outcome: _R, first: int, *, inline: bool) -> None:
        """Under the mutex, after a commit: what :meth:`_apply` returned for writes ``first``, … (none)."""

    def _report(self, target: int) -> None:
        """Raise what went wrong with writes up to ``target`` that committed nonetheless (nothing)."""

    def _writer_failure(self, exc: Exception, lost: int) -> StoreError:
        """Under the mutex: the sticky failure of a group commit that raised ``exc``."""
        return self._write_error(exc, lost, sticky=True)

    def _before_close(self, error: StoreError | None) -> None:
        """In :meth:`close`, once pending writes are committed (or ``error`` lost them)."""

    def _error_text(self, exc: BaseException) -> str:
        """The cause of a failed write, for its message."""
        return str(exc)

    # -- the Store protocol --------------------------------------------------------------------
    def create(self, record: CaseRecord, spec: Any) -> None:
        """Register a new case and the spec it runs (each spec version is stored once).

        A PostgreSQL store leases the case to its owner; another engine creating the same id at
        the same moment is found at commit (:meth:`durable` raises ``CaseExistsError`` then).

        Raises:
            CaseExistsError: a case with that id exists.
            StoreError: the spec cannot be stored, or (thread mode) an earlier write failed.
        """
        fmt, body, spec_hash = self._spec_row(spec, f"case {record.case!r}")
        now = self._now_ns()
        spec_id = getattr(spec, "id", None)
        with self._mutex:
            self._check_writable()
            known = self._heads.get(record.case)
            if (known is not None and known.lost is None) or self._load_head(record.case) is not None:
                raise CaseExistsError(f"case {record.case!r} already exists in the store")
            head = self._new_head(record.case, spec_hash)
            self._write((_CREATE, head, (spec_hash, spec_id if isinstance(spec_id, str) else record.spec_id, fmt,
                                         body, now),
                         (record.case, spec_hash, record.spec_id, record.net, record.status, record.tenant,
                          record.parent, -1, GENESIS, now, now)))
            self._created(head)
            self._heads[record.case] = head
            self._specs.setdefault(spec_hash, spec)

    def _spec_row(self, spec: Any, what: str) -> tuple[str, bytes, bytes]:
        """``spec``'s stored ``(format, body, hash)``, encoded once per spec object (a small cache).

        Raises:
            StoreError: the spec cannot be encoded (the message names ``what`` it was for).
        """
        cached = self._spec_rows.get(id(spec))
        if cached is not None and cached[0] is spec:
            return cached[1], cached[2], cached[3]
        try:
            fmt, body, spec_hash = _codec.encode_spec(spec)
        except _codec.CodecError as exc:
            raise StoreError(f"{self._label}: {what}: {exc}") from None
        if len(self._spec_rows) >= 64:  # specs loaded anew for every case: keep the cache small
            self._spec_rows.clear()
        self._spec_rows[id(spec)] = (spec, fmt, body, spec_hash)
        return fmt, body, spec_hash

    def _created(self, head: _H) -> None:
        """Under the mutex: ``head``'s case was created (its write made)."""

    def append(self, case: str, event: Event) -> int:
        """Append one event to the case's log; it is durable once :meth:`flush` or :meth:`durable` returns.

        Returns:
            The event's ``seq`` in the case's log (0, 1, …).

        Raises:
            LeaseLostError: (PostgreSQL) another engine holds the case's lease.
            StoreError: no such case, the event holds data that cannot be stored, or (thread mode)
                an earlier write failed.
        """
        try:
            kind, body = _codec.encode_event(event)
        except _codec.CodecError as exc:
            raise StoreError(f"{self._label}: case {case!r}: {exc}") from None
        with self._mutex:
            self._check_writable()
            head = self._writable_head(case)
            seq = head.next_seq
            digest = event_hash(case, seq, kind, body, head.last_hash)
            self._write((_APPEND, head, seq, kind, body, head.last_hash, digest, event.at_ns, self._now_ns()))
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
        rows = self._rows("SELECT seq, kind, body FROM events WHERE case_key = ? AND seq >= ? ORDER BY seq",
                          (self._case_key(head), start))
        out: list[Event] = []
        for expected, (seq, kind, body) in enumerate(rows, start=start):
            if seq != expected:
                raise self._poisoned(case, expected, f"the record is missing (the next one is {seq})")
            try:
                out.append(_codec.decode_event(body, kind))
            except _codec.CodecError as exc:
                raise self._poisoned(case, seq, str(exc)) from None
        end = start + len(rows)
        if end < known and head.lost is None:  # a lost head ran ahead with writes that were dropped
            raise self._poisoned(case, end, f"the record is missing (the case's head says its last is {known - 1})")
        return out

    def set_status(self, case: str, status: str) -> None:
        """Record the case's status.

        Raises:
            LeaseLostError: (PostgreSQL) another engine holds the case's lease.
            StoreError: no such case.
        """
        with self._mutex:
            self._check_writable()
            head = self._writable_head(case)
            self._write((_STATUS, head, status, time.time_ns()))

    def records(self, status: str | None = None, tenant: str | None = None) -> list[CaseRecord]:
        """Every case (of every engine), in creation order; only those with ``status`` and/or ``tenant`` when given."""
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
        return [CaseRecord(case=c, spec_id=s, net=n, status=st, tenant=t, parent=p)
                for c, s, n, st, t, p in self._rows(sql, params)]

    def spec_of(self, case: str) -> Any:
        """The spec a case runs (the very object given to :meth:`create` in this process).

        Raises:
            StoreError: no such case, or its spec does not decode.
        """
        head = self._head(case)
        try:
            return self._stored_spec(head.spec_hash)
        except _codec.CodecError as exc:
            raise self._poisoned(case, None, str(exc)) from None

    def _stored_spec(self, spec_hash: bytes) -> Any:
        """The spec version ``spec_hash``, decoded once per store (the very object this store was given).

        Raises:
            CodecError: it is not in the store, or does not decode (the message names the version).
            StoreError: the store cannot be read.
        """
        spec = self._specs.get(spec_hash)
        if spec is not None:
            return spec
        rows = self._rows("SELECT format, body FROM specs WHERE hash = ?", (spec_hash,))
        if not rows:
            raise _codec.CodecError(f"its spec version {spec_hash.hex()[:16]} is not in the store")
        try:
            spec = _codec.decode_spec(rows[0][0], bytes(rows[0][1]))
        except _codec.CodecError as exc:
            raise _codec.CodecError(f"spec version {spec_hash.hex()[:16]}: {exc}") from None
        return self._specs.setdefault(spec_hash, spec)

    def publish_spec(self, tenant: str | None, spec: Any) -> None:
        """Publish ``spec`` for ``tenant`` (``None``: every tenant), replacing its spec of that id.

        The version goes into ``specs`` as :meth:`create` puts a case's (once, by its hash), and
        the ``published`` row names it; both in one write, committed as the others are (on disk
        once :meth:`flush` returns or :meth:`durable` is awaited). Not part of any case's
        provenance chain: a version is named by the SHA-256 of its body, so nothing there needs
        a chain, and ``verify`` checks the case logs only.

        Raises:
            ValueError: ``tenant`` is the empty string.
            StoreError: the spec has no ``id`` or cannot be encoded; the store is read-only,
                closed, or (thread mode) an earlier write failed.
        """
        spec_id = published_id(tenant, spec)
        fmt, body, spec_hash = self._spec_row(spec, f"spec {spec_id!r}")
        now = self._now_ns()
        with self._mutex:
            self._check_writable()
            self._write((_PUBLISH, None, (spec_hash, spec_id, fmt, body, now), (tenant, spec_id, spec_hash, now)))
            self._specs.setdefault(spec_hash, spec)

    def published_specs(self, tenant: str | None = None) -> list[tuple[str | None, Any]]:
        """The published specs as ``(tenant, spec)``: every one, or those ``tenant`` may start when given.

        ``tenant`` given: those published for it and for every tenant (``None``). Sorted by
        tenant (``None`` first), then spec id. A published spec whose version does not decode is
        logged and left out (the others are listed); publishing it again replaces it.

        Raises:
            StoreError: the store cannot be read.
        """
        sql = "SELECT tenant, spec_id, spec_hash FROM published"
        params: tuple[str, ...] = ()
        if tenant is not None:
            sql += " WHERE tenant = ? OR tenant IS NULL"
            params = (tenant,)
        out: list[tuple[str | None, Any]] = []
        for owner, spec_id, spec_hash in sorted(self._rows(sql, params), key=lambda r: published_order((r[0], r[1]))):
            try:
                out.append((owner, self._stored_spec(bytes(spec_hash))))
            except _codec.CodecError as exc:
                self._logger.error("%s: the spec %r published for %s is left out: %s; publish it again",
                                   self._label, spec_id, "every tenant" if owner is None else f"tenant {owner!r}", exc)
        return out

    def snapshot(self, case: str, state: bytes, upto_seq: int) -> None:
        """Keep the case's state after its event ``upto_seq`` (replacing its older snapshot).

        The state is the caller's encoding (bytes); it is bound to the chain by the hash of
        record ``upto_seq``.

        Raises:
            LeaseLostError: (PostgreSQL) another engine holds the case's lease.
            StoreError: no such case, or ``upto_seq`` is not one of its records.
        """
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise TypeError(f"a snapshot's state must be bytes, not {type(state).__name__}")
        with self._mutex:
            self._check_writable()
            head = self._writable_head(case)
            if not 0 <= upto_seq < head.next_seq:
                raise StoreError(f"case {case!r} has no record {upto_seq} to snapshot after (its last is "
                                 f"{head.next_seq - 1})")
            anchor = head.last_hash if upto_seq == head.next_seq - 1 else None
            self._write((_SNAPSHOT, head, upto_seq, anchor, bytes(state), time.time_ns()))
            head.snap_seq = max(head.snap_seq, upto_seq)

    def latest_snapshot(self, case: str) -> Snapshot | None:
        """The case's latest snapshot, or ``None`` (none, or it fails its hash: then fold from the start).

        Raises:
            StoreError: no such case.
        """
        rows = self._rows(
            "SELECT s.upto_seq, s.anchor, s.state, s.hash, e.hash FROM snapshots s LEFT JOIN events e "
            "ON e.case_key = s.case_key AND e.seq = s.upto_seq WHERE s.case_key = ? "
            "ORDER BY s.upto_seq DESC LIMIT 1", (self._case_key(self._head(case)),))
        if not rows:
            return None
        upto, anchor, state, digest, event_digest = rows[0]
        if anchor != event_digest or snapshot_hash(case, upto, anchor, state) != digest:
            self._logger.warning("%s: case %r: the snapshot after record %d fails its hash; ignoring it "
                              "(run `yawlflow verify`)", self._label, case, upto)
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

    # -- beyond the protocol -------------------------------------------------------------------
    def record(self, case: str) -> CaseRecord:
        """The record of one case.

        Raises:
            StoreError: no such case.
        """
        rows = self._rows("SELECT id, spec_id, net, status, tenant, parent FROM cases WHERE key = ?",
                          (self._case_key(self._head(case)),))
        if not rows:
            raise StoreError(f"no case {case!r} in the store")
        c, s, n, st, t, p = rows[0]
        return CaseRecord(case=c, spec_id=s, net=n, status=st, tenant=t, parent=p)

    def spec_version(self, case: str) -> str:
        """The version of the spec a case runs: the SHA-256 (hex) of its stored encoding.

        Raises:
            StoreError: no such case.
        """
        return self._head(case).spec_hash.hex()

    def head(self, case: str) -> tuple[int, bytes]:
        """The case's last ``seq`` (-1 before its first event) and that record's hash, as this store knows it.

        Publish it elsewhere to anchor the chain: a rewritten log ends in another hash.

        Raises:
            StoreError: no such case.
        """
        with self._mutex:
            head = self._head(case)
            return head.next_seq - 1, head.last_hash

    # -- durability ----------------------------------------------------------------------------
    def flush(self) -> None:
        """Block until every write made so far is committed (on disk: see the store's durability notes).

        Raises:
            LeaseLostError: (PostgreSQL) writes to a case another engine has leased were dropped
                (reported once).
            StoreError: a write failed (the store must be reopened), or the store is closed.
        """
        if self._closed:
            raise StoreError(f"{self._label} is closed")
        self._wait_for(self._issued)

    async def durable(self) -> None:
        """Wait, without blocking the event loop, until every write made so far is committed.

        Returns at once (no checkpoint) when they already are. Otherwise one task waits for the
        writer's commit on the store's wake-up socket (``anyio.wait_readable``: asyncio, uvloop
        and trio alike, and no worker thread), however many tasks await at the same time: the
        others wait on an ``anyio.Event`` that it sets, then look again. Cancelling the wait does
        not cancel the writes. A failure of a later group commit is not this call's: it returns
        once its own writes are committed.

        Raises:
            LeaseLostError: (PostgreSQL) writes to a case another engine has leased were dropped
                (reported once).
            StoreError: a write failed (the store must be reopened), or the store is closed.
        """
        target = self._issued
        while True:
            if self._committed >= target:
                self._report(target)
                return
            if self._failure is not None or self._closed or self._wake is None:
                self._wait_for(target)  # nothing more will be committed: raises
                return
            current = self._round
            if current is not None:
                await current.wait()  # a task waits for a commit already: share it, then look again
                continue
            done = self._round = anyio.Event()
            try:
                await self._wake.wait_until(
                    lambda: self._committed >= target or self._failure is not None or self._closed)
                self._wait_for(target)  # does not block now: returns, or raises what went wrong
                return
            finally:
                self._round = None
                done.set()

    @property
    def pending(self) -> int:
        """How many writes are queued but not yet committed."""
        return self._issued - self._committed

    def close(self) -> None:
        """Commit what is pending, stop the writer, disconnect (and release what the store holds). Idempotent.

        Raises:
            StoreError: pending writes were lost to an earlier failure that no call has reported.
        """
        with self._mutex:
            if self._closed:
                return
            unreported = not self._failure_seen
        error: StoreError | None = None
        try:
            self._wait_committed(self._issued)
        except StoreError as exc:
            error = exc
        self._before_close(error)
        with self._mutex:
            self._stopping = True
            self._closed = True
            self._work.notify_all()
            self._done.notify_all()
            if self._wake is not None:
                self._wake.close()
        if self._thread is not None:
            self._thread.join()
        self._release()
        if error is not None and unreported:
            raise error

    async def aclose(self) -> None:
        """:meth:`close` in a worker thread, so that the final commit does not block the event loop."""
        await anyio.to_thread.run_sync(self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _state(self) -> str:
        """For ``repr``: closed, read-only or the writer."""
        return "closed" if self._closed else ("read-only" if self.readonly else f"writer={self.writer}")

    # -- internals: writes ---------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError(f"{self._label} is closed")
        if self.readonly:
            raise StoreError(f"{self._label} was opened read-only; {self._READONLY_FIX}")
        if self._failure is not None:
            self._failure_seen = True
            raise self._failure

    def _write(self, op: _Op) -> None:
        """Under the mutex: commit ``op`` now (inline) or queue it for the writer (thread)."""
        if self.writer == "inline":
            try:
                outcome = self._apply([op])
            except self._db_error as exc:
                raise self._write_error(exc, 1, sticky=self._failure is not None) from None
            self._issued += 1
            self._committed += 1
            self._accept(outcome, self._issued, inline=True)
        else:
            self._queue.append(op)
            self._issued += 1
            self._work.notify()

    def _write_error(self, exc: BaseException, count: int, *, sticky: bool) -> StoreError:
        what = "1 write" if count == 1 else f"{count} writes"
        tail = ("; the store must be reopened (unfinished cases resume from what was stored)" if sticky
                else "; the store is unchanged and usable")
        return StoreError(f"{self._label}: {what} failed and rolled back: {self._error_text(exc)} "
                          f"({self._WRITE_FIX})" + tail)

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
                outcome = self._apply(batch)
            except Exception as exc:  # every failure must reach flush()/durable(), not vanish with the thread
                with self._mutex:
                    lost = len(batch) + len(self._queue)
                    self._queue = []
                    self._failure = self._writer_failure(exc, lost)
                    self._done.notify_all()
                    if self._wake is not None:
                        self._wake.poke()
                self._logger.error("%s", self._failure)
                return
            with self._mutex:
                self._accept(outcome, target - len(batch) + 1, inline=False)
                self._committed = target
                self._done.notify_all()
                if self._wake is not None:
                    self._wake.poke()

    def _wait_for(self, target: int) -> None:
        """Block until writes up to ``target`` are committed, then :meth:`_report` what went wrong with them.

        Raises:
            StoreError: as :meth:`_wait_committed`, or what :meth:`_report` raises.
        """
        self._wait_committed(target)
        self._report(target)

    def _wait_committed(self, target: int) -> None:
        """Block until writes up to ``target`` are committed.

        Raises:
            StoreError: they never will be: a group commit failed before them (sticky; a failure
                after them is not theirs), or the store was closed.
        """
        with self._mutex:
            while self._committed < target and self._failure is None and not self._closed:
                self._done.wait()
            if self._committed < target:
                if self._failure is not None:
                    self._failure_seen = True
                    raise self._failure
                raise StoreError(f"{self._label} was closed before its pending writes were committed")

    # -- internals: reads ----------------------------------------------------------------------
    def _catch_up(self) -> None:
        """Before a read: raise a sticky failure, and wait for the writes made so far (read your writes)."""
        if self._failure is not None:
            self._failure_seen = True
            raise self._failure
        if self._committed < self._issued:
            self._wait_committed(self._issued)

    def _head(self, case: str) -> _H:
        head = self._heads.get(case)
        if head is None:
            head = self._load_head(case)
            if head is None:
                raise StoreError(f"no case {case!r} in the store")
        return head

    @abc.abstractmethod
    def _store_arg(self) -> str:
        """The store as ``yawlflow verify --store`` takes it."""

    def _poisoned(self, case: str, seq: int | None, what: str) -> CaseDamagedError:
        """What a case's records or spec hold cannot be used: that case only (resume skips it)."""
        where = f"case {case!r}" if seq is None else f"case {case!r}, record {seq}"
        return CaseDamagedError(
            f"{self._label}: {where}: {what}; this case cannot be loaded (other cases are not affected): "
            f"check it with `yawlflow verify --store {self._store_arg()} {case}`"
        )
