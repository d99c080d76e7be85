"""Provenance: the hash chain over every case's event log, and the check that it is unbroken.

Every event record of a case carries ``prev_hash``, the SHA-256 of the record before it (32 zero
bytes, :data:`GENESIS`, for the first), and ``hash``, the SHA-256 of its own canonical bytes::

    "yawlflow/event/v1\\0" | len(case) u32 | seq u64 | len(kind) u32 | len(body) u64
                         | case (UTF-8) | kind (UTF-8) | body | prev_hash

(big-endian; the lengths make the encoding unambiguous). So a record changed in place (its body,
kind or seq) no longer matches its hash; a record removed or moved breaks the next record's
``prev_hash`` or the numbering; and the log's last record must be the case's recorded head. A
snapshot is bound to the chain by the hash of the record it was taken after (its *anchor*).

:func:`verify` walks the chains of a store (a :class:`~yawlflow._sqlite.SqliteStore` or the path
of its file) and returns one :class:`ChainProblem` per broken chain, naming the first broken
record. The chain makes tampering *evident*; it does not stop someone who rewrites a record and
every hash after it. Publishing a case's head hash (``SqliteStore.head``) elsewhere closes that
gap: a rewritten chain ends in another hash.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import os
import sqlite3
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from . import _codec
from ._errors import StoreError

if TYPE_CHECKING:
    from ._sqlite import SqliteStore

__all__ = ("GENESIS", "ChainProblem", "check_chains", "event_hash", "snapshot_hash", "verify")

GENESIS: Final = bytes(32)
"""The ``prev_hash`` of a case's first record."""

_EVENT_DOMAIN: Final = b"yawlflow/event/v1\x00"
_SNAPSHOT_DOMAIN: Final = b"yawlflow/snapshot/v1\x00"
_EVENT_HEAD: Final = struct.Struct(">IQIQ")
_SNAPSHOT_HEAD: Final = struct.Struct(">IQQ")


def event_hash(case: str, seq: int, kind: str, body: bytes, prev_hash: bytes) -> bytes:
    """The SHA-256 of one event record's canonical bytes (see the module docstring)."""
    c = case.encode()
    k = kind.encode()
    head = _EVENT_HEAD.pack(len(c), seq, len(k), len(body))
    return hashlib.sha256(b"".join((_EVENT_DOMAIN, head, c, k, body, prev_hash))).digest()


def snapshot_hash(case: str, upto_seq: int, anchor: bytes, state: bytes) -> bytes:
    """The SHA-256 of a snapshot: the case, the seq and hash of the record it follows, its state."""
    c = case.encode()
    head = _SNAPSHOT_HEAD.pack(len(c), upto_seq, len(state))
    return hashlib.sha256(b"".join((_SNAPSHOT_DOMAIN, head, c, anchor, state))).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainProblem:
    """The first broken record of one case's chain (or a broken snapshot).

    Attributes:
        case: the case id.
        seq: the record's seq in the case's log (for a snapshot: the seq it was taken after);
            ``None`` when the problem is the case's head rather than one record.
        message: what differs, with both values.
    """

    case: str
    seq: int | None
    message: str

    def __str__(self) -> str:
        where = f"case {self.case!r}" if self.seq is None else f"case {self.case!r}, record {self.seq}"
        return f"{where}: {self.message}"


def verify(target: SqliteStore | str | os.PathLike[str], case: str | None = None) -> list[ChainProblem]:
    """Check the provenance chain of every case (or of ``case``) in a store.

    Args:
        target: an open :class:`~yawlflow._sqlite.SqliteStore` (its pending writes are flushed
            first), the path of a store's file, or its URL (``sqlite:///cases.db``). A path is
            opened read-only and without the writer's lock, so a running engine's store can be
            checked.
        case: only this case.

    Returns:
        One problem per broken chain or snapshot, naming the first broken record; empty when
        every chain holds.

    Raises:
        StoreError: the file is not a yawlflow store, or ``case`` is not in it.
    """
    from ._sqlite import SqliteStore

    if isinstance(target, SqliteStore):
        return target.verify(case)
    if not isinstance(target, (str, os.PathLike)):
        raise StoreError(
            f"verify() takes a SqliteStore, a path or a sqlite:/// URL, not {type(target).__name__} "
            "(the in-memory store keeps no provenance chain)"
        )
    with SqliteStore(target, readonly=True) as store:
        return store.verify(case)


def _short(digest: bytes | None) -> str:
    return "(none)" if digest is None else digest.hex()[:16] + "…"


def check_chains(conn: sqlite3.Connection, case: str | None = None) -> list[ChainProblem]:
    """Walk the chains in an open yawlflow SQLite database (see :func:`verify`).

    Raises:
        StoreError: ``case`` is not in the database.
        sqlite3.Error: the database cannot be read (the caller names the file).
    """
    where, params = ("WHERE id = ?", (case,)) if case is not None else ("", ())
    cases: dict[int, tuple[str, int, bytes]] = {
        key: (cid, last_seq, last_hash)
        for key, cid, last_seq, last_hash in conn.execute(
            f"SELECT key, id, last_seq, last_hash FROM cases {where} ORDER BY key", params  # noqa: S608 - fixed text
        )
    }
    if case is not None and not cases:
        raise StoreError(f"no case {case!r} in the store (list them with `yawlflow cases list`)")
    problems: list[ChainProblem] = []
    if case is not None:
        key = next(iter(cases))
        rows: Iterable[tuple[Any, ...]] = conn.execute(
            "SELECT case_key, seq, kind, body, prev_hash, hash, at FROM events WHERE case_key = ? ORDER BY seq",
            (key,),
        )
    else:
        rows = conn.execute(
            "SELECT case_key, seq, kind, body, prev_hash, hash, at FROM events ORDER BY case_key, seq"
        )
    seen: set[int] = set()
    # groupby skips what the checker leaves of a case: it stops at the first broken record
    for key, group in itertools.groupby(rows, key=operator.itemgetter(0)):
        chain = (row[1:] for row in group)
        seen.add(key)
        if key not in cases:
            problems.append(ChainProblem(
                case=f"<case key {key}>", seq=None,
                message="records whose case is not in the cases table (the case's row was deleted)",
            ))
            continue
        cid, last_seq, last_hash = cases[key]
        problem = _check_chain(cid, chain, last_seq, last_hash)
        if problem is not None:
            problems.append(problem)
    for key, (cid, last_seq, last_hash) in cases.items():
        if key not in seen and (last_seq != -1 or last_hash != GENESIS):
            problems.append(ChainProblem(
                case=cid, seq=0,
                message=f"every record is missing: the case's head says its last record is {last_seq} "
                f"with hash {_short(last_hash)}",
            ))
    problems.extend(_check_snapshots(conn, cases))
    return problems


def _check_chain(
    case: str, chain: Iterator[tuple[Any, ...]], last_seq: int, last_hash: bytes
) -> ChainProblem | None:
    expected = 0
    prev = GENESIS
    for seq, kind, body, prev_hash, digest, at in chain:
        if not isinstance(seq, int):
            return ChainProblem(case=case, seq=expected, message=f"the record after {expected - 1} has seq {seq!r}")
        if seq != expected:
            what = f"records {expected}…{seq - 1} are" if seq - 1 > expected else f"record {expected} is"
            return ChainProblem(case=case, seq=expected, message=f"{what} missing: the next record is {seq}")
        if not isinstance(body, bytes) or not isinstance(kind, str) or not isinstance(prev_hash, bytes):
            return ChainProblem(case=case, seq=seq, message="the record's columns have the wrong types (not ours)")
        actual = event_hash(case, seq, kind, body, prev_hash)
        if actual != digest:
            return ChainProblem(
                case=case, seq=seq,
                message=f"its content does not match its hash: stored {_short(digest)}, content hashes to "
                f"{_short(actual)} (its body, kind or seq was changed)",
            )
        if prev_hash != prev:
            return ChainProblem(
                case=case, seq=seq,
                message=f"its prev_hash {_short(prev_hash)} is not the hash of record {seq - 1} ({_short(prev)}): "
                "a record before it was changed, removed or moved"
                if seq else f"the first record's prev_hash is {_short(prev_hash)}, not zeros",
            )
        try:
            event = _codec.decode_event(body, kind)
        except _codec.CodecError as exc:
            return ChainProblem(case=case, seq=seq, message=f"its hash holds but {exc}")
        if event.at_ns != at:
            return ChainProblem(
                case=case, seq=seq, message=f"its at column says {at} but the event says {event.at_ns}"
            )
        prev = digest
        expected = seq + 1
    if expected - 1 != last_seq:
        if last_seq > expected - 1:
            what = f"records {expected}…{last_seq} are" if last_seq > expected else f"record {expected} is"
            return ChainProblem(
                case=case, seq=expected,
                message=f"{what} missing: the case's head says its last record is {last_seq}",
            )
        return ChainProblem(
            case=case, seq=None,
            message=f"the case's head says its last record is {last_seq}, but its log goes on to {expected - 1}",
        )
    if prev != last_hash:
        return ChainProblem(
            case=case, seq=None if last_seq < 0 else last_seq,
            message=f"the case's head hash {_short(last_hash)} is not the hash of its last record ({_short(prev)})",
        )
    return None


def _check_snapshots(conn: sqlite3.Connection, cases: dict[int, tuple[str, int, bytes]]) -> list[ChainProblem]:
    problems: list[ChainProblem] = []
    rows = conn.execute(
        "SELECT s.case_key, s.upto_seq, s.anchor, s.state, s.hash, e.hash FROM snapshots s "
        "LEFT JOIN events e ON e.case_key = s.case_key AND e.seq = s.upto_seq ORDER BY s.case_key, s.upto_seq"
    )
    for key, upto, anchor, state, digest, event_digest in rows:
        if key not in cases:
            continue
        cid = cases[key][0]
        if snapshot_hash(cid, upto, anchor, state) != digest:
            problems.append(ChainProblem(
                case=cid, seq=upto,
                message=f"the snapshot taken after this record does not match its hash {_short(digest)} "
                "(its state was changed)",
            ))
        elif anchor != event_digest:
            problems.append(ChainProblem(
                case=cid, seq=upto,
                message=f"the snapshot taken after this record is anchored to hash {_short(anchor)}, "
                f"but the record hashes to {_short(event_digest)}",
            ))
    return problems
