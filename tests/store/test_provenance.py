"""The provenance chain: every record hashes the one before; verify names the first broken record."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kit import rec

import yawlflow as yf
from yawlflow._events import CaseStarted, ItemCompleted, ItemStarted
from yawlflow._provenance import GENESIS, ChainProblem, event_hash, snapshot_hash, verify
from yawlflow._sqlite import SqliteStore
from yawlflow._store import MemoryStore

Raw = Callable[..., sqlite3.Connection]


@pytest.fixture
def filled(db_path: Path, spec: yf.Spec) -> Path:
    """A closed store with three cases of 5 events each; ``b`` has a snapshot after record 2."""
    with SqliteStore(db_path) as store:
        for case in ("a", "b", "c"):
            store.create(rec(case), spec)
            store.append(case, CaseStarted(case=case, net="main", at_ns=1))
            for i in range(1, 5):
                store.append(case, ItemCompleted(item=i, output={"i": i, "case": case}, at_ns=1 + i))
        store.snapshot("b", b"state of b after 2", 2)
    return db_path


def tamper(raw: Raw, helpers: Any, sql: str, *params: Any) -> None:
    conn = helpers.tamperable(raw())
    conn.execute(sql, params)


def key_of(raw: Raw, case: str) -> int:
    return int(raw().execute("SELECT key FROM cases WHERE id = ?", (case,)).fetchone()[0])


def test_an_untouched_store_verifies(filled: Path, spec: yf.Spec) -> None:
    assert verify(filled) == []
    assert verify(f"sqlite:///{filled}") == []
    assert verify(filled, "b") == []
    with SqliteStore(filled) as store:
        store.append("a", ItemStarted(item=9))  # pending writes are flushed first
        assert verify(store) == []
        assert store.verify("a") == []


def test_the_chain_links_each_record_to_the_one_before(filled: Path, raw: Raw) -> None:
    rows = raw().execute(
        "SELECT e.seq, e.kind, e.body, e.prev_hash, e.hash FROM events e JOIN cases c ON c.key = e.case_key "
        "WHERE c.id = 'a' ORDER BY e.seq").fetchall()
    prev = GENESIS
    for seq, kind, body, prev_hash, digest in rows:
        assert prev_hash == prev
        assert digest == event_hash("a", seq, kind, body, prev_hash)
        prev = digest
    assert raw().execute("SELECT last_hash FROM cases WHERE id = 'a'").fetchone()[0] == prev


def test_the_event_log_refuses_updates_and_deletes(filled: Path, raw: Raw) -> None:
    conn = raw()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET body = x'00'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM events")


def test_one_changed_byte_of_a_body_is_named(filled: Path, raw: Raw, helpers: Any) -> None:
    key = key_of(raw, "b")
    body = bytearray(raw().execute("SELECT body FROM events WHERE case_key = ? AND seq = 3", (key,)).fetchone()[0])
    body[-1] ^= 0x01
    tamper(raw, helpers, "UPDATE events SET body = ? WHERE case_key = ? AND seq = 3", bytes(body), key)
    problems = verify(filled)
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.case, problem.seq) == ("b", 3)
    assert "does not match its hash" in problem.message and "body, kind or seq was changed" in problem.message
    assert str(problem).startswith("case 'b', record 3: its content does not match its hash: stored ")
    assert verify(filled, "a") == []


def test_a_changed_kind_is_named(filled: Path, raw: Raw, helpers: Any) -> None:
    tamper(raw, helpers, "UPDATE events SET kind = 'item_failed' WHERE case_key = ? AND seq = 1", key_of(raw, "c"))
    assert [(p.case, p.seq) for p in verify(filled)] == [("c", 1)]


def test_a_deleted_record_is_named(filled: Path, raw: Raw, helpers: Any) -> None:
    tamper(raw, helpers, "DELETE FROM events WHERE case_key = ? AND seq = 2", key_of(raw, "a"))
    assert verify(filled) == [ChainProblem(case="a", seq=2, message="record 2 is missing: the next record is 3")]


def test_deleted_last_records_are_named_by_the_head(filled: Path, raw: Raw, helpers: Any) -> None:
    tamper(raw, helpers, "DELETE FROM events WHERE case_key = ? AND seq >= 3", key_of(raw, "c"))
    assert verify(filled) == [ChainProblem(
        case="c", seq=3, message="records 3…4 are missing: the case's head says its last record is 4")]


def test_a_whole_deleted_log_is_named(filled: Path, raw: Raw, helpers: Any) -> None:
    tamper(raw, helpers, "DELETE FROM events WHERE case_key = ?", key_of(raw, "a"))
    [problem] = verify(filled)
    assert (problem.case, problem.seq) == ("a", 0) and "every record is missing" in problem.message


def test_reordered_records_are_named(filled: Path, raw: Raw, helpers: Any) -> None:
    key = key_of(raw, "a")
    conn = helpers.tamperable(raw())
    conn.execute("UPDATE events SET seq = -1 WHERE case_key = ? AND seq = 1", (key,))
    conn.execute("UPDATE events SET seq = 1 WHERE case_key = ? AND seq = 3", (key,))
    conn.execute("UPDATE events SET seq = 3 WHERE case_key = ? AND seq = -1", (key,))
    [problem] = verify(filled)
    assert (problem.case, problem.seq) == ("a", 1) and "does not match its hash" in problem.message


def test_swapped_bodies_are_named(filled: Path, raw: Raw, helpers: Any) -> None:
    key = key_of(raw, "b")
    conn = helpers.tamperable(raw())
    one, two = (conn.execute("SELECT body FROM events WHERE case_key = ? AND seq = ?", (key, s)).fetchone()[0]
                for s in (1, 2))
    conn.execute("UPDATE events SET body = ? WHERE case_key = ? AND seq = 1", (two, key))
    conn.execute("UPDATE events SET body = ? WHERE case_key = ? AND seq = 2", (one, key))
    assert [(p.case, p.seq) for p in verify(filled)] == [("b", 1)]


def test_a_record_rewritten_with_its_own_hash_breaks_the_next_link(filled: Path, raw: Raw, helpers: Any) -> None:
    key = key_of(raw, "a")
    conn = helpers.tamperable(raw())
    kind, prev = conn.execute("SELECT kind, prev_hash FROM events WHERE case_key = ? AND seq = 2", (key,)).fetchone()
    from yawlflow._codec import encode_event

    _, body = encode_event(ItemCompleted(item=2, output={"i": 999}, at_ns=3))
    conn.execute("UPDATE events SET body = ?, hash = ? WHERE case_key = ? AND seq = 2",
                 (body, event_hash("a", 2, kind, body, prev), key))
    [problem] = verify(filled)
    assert (problem.case, problem.seq) == ("a", 3)
    assert "is not the hash of record 2" in problem.message


def test_a_rewritten_last_record_is_caught_by_the_head(filled: Path, raw: Raw, helpers: Any) -> None:
    key = key_of(raw, "a")
    conn = helpers.tamperable(raw())
    kind, prev = conn.execute("SELECT kind, prev_hash FROM events WHERE case_key = ? AND seq = 4", (key,)).fetchone()
    from yawlflow._codec import encode_event

    _, body = encode_event(ItemCompleted(item=4, output={"i": 999}, at_ns=5))
    conn.execute("UPDATE events SET body = ?, hash = ? WHERE case_key = ? AND seq = 4",
                 (body, event_hash("a", 4, kind, body, prev), key))
    [problem] = verify(filled)
    assert (problem.case, problem.seq) == ("a", 4) and "head hash" in problem.message


def test_a_changed_at_column_is_named(filled: Path, raw: Raw, helpers: Any) -> None:
    tamper(raw, helpers, "UPDATE events SET at = 99 WHERE case_key = ? AND seq = 1", key_of(raw, "b"))
    assert verify(filled) == [ChainProblem(case="b", seq=1, message="its at column says 99 but the event says 2")]


def test_a_tampered_snapshot_is_named(filled: Path, raw: Raw) -> None:
    raw().execute("UPDATE snapshots SET state = ?", (b"state of b after 3",))
    [problem] = verify(filled)
    assert (problem.case, problem.seq) == ("b", 2) and "snapshot" in problem.message


def test_a_problem_in_each_broken_case(filled: Path, raw: Raw, helpers: Any) -> None:
    tamper(raw, helpers, "DELETE FROM events WHERE case_key = ? AND seq = 0", key_of(raw, "a"))
    tamper(raw, helpers, "UPDATE events SET body = x'c0' WHERE case_key = ? AND seq = 4", key_of(raw, "c"))
    assert [(p.case, p.seq) for p in verify(filled)] == [("a", 0), ("c", 4)]
    assert [(p.case, p.seq) for p in verify(filled, "c")] == [("c", 4)]


def test_verify_names_what_it_cannot_check(filled: Path, tmp_path: Path) -> None:
    with pytest.raises(yf.StoreError, match="no case 'zz'"):
        verify(filled, "zz")
    with pytest.raises(yf.StoreError, match="the in-memory store keeps no provenance chain"):
        verify(MemoryStore())  # type: ignore[arg-type]
    with pytest.raises(yf.StoreError, match="no such file"):
        verify(tmp_path / "missing.db")


def test_verify_reads_beside_a_running_writer(filled: Path) -> None:
    with SqliteStore(filled) as writer:
        writer.append("a", ItemStarted(item=7))
        writer.flush()
        assert verify(filled) == []


def test_the_canonical_encoding_is_fixed() -> None:
    # Stored hashes must verify forever: this spells out, and pins, the canonical bytes of release 1.
    body = b"\x81\xa4type\xacitem_started"
    spelled = (b"yawlflow/event/v1\x00" + (2).to_bytes(4, "big") + (0).to_bytes(8, "big")
               + (12).to_bytes(4, "big") + len(body).to_bytes(8, "big") + b"c1" + b"item_started" + body + GENESIS)
    assert event_hash("c1", 0, "item_started", body, GENESIS) == hashlib.sha256(spelled).digest()
    assert event_hash("c1", 0, "item_started", body, GENESIS).hex() == (
        "bd7ebdeb61ad39ecfb46798157303299db64abd8467c0e3c35ef495c9323e4af"
    )
    spelled = (b"yawlflow/snapshot/v1\x00" + (2).to_bytes(4, "big") + (3).to_bytes(8, "big")
               + (5).to_bytes(8, "big") + b"c1" + GENESIS + b"state")
    assert snapshot_hash("c1", 3, GENESIS, b"state") == hashlib.sha256(spelled).digest()
    assert snapshot_hash("c1", 3, GENESIS, b"state").hex() == (
        "2f8efc45c1bdcf48dffa821cfa930e2502e3fe39109d5b678a26efad449757f5"
    )
    # length prefixes keep fields apart
    assert event_hash("ab", 0, "c", b"", GENESIS) != event_hash("a", 0, "bc", b"", GENESIS)
    assert event_hash("a", 0, "k", b"xy", GENESIS) != event_hash("a", 0, "kx", b"y", GENESIS)
