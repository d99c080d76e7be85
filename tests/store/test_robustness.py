"""Robustness: poisoned cases stay alone, and a failing disk never leaves a half-applied write.

The fault loops follow SQLite's own tests: for each operation, make the Nth statement the store
executes fail, for N = 1, 2, … until the operation succeeds. After every failure the error is a
clean StoreError, the file passes ``PRAGMA integrity_check``, and its content is what it was
before the operation (or, for a run of operations, what it was after some whole prefix of them).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kit import AUTO_THEN_EXTERNAL, rec

import yawlflow as yf
from yawlflow import _sqlite
from yawlflow._events import CaseStarted, ItemCompleted, ItemStarted
from yawlflow._provenance import verify
from yawlflow._sqlite import MIGRATIONS, Migration, SqliteStore

Raw = Callable[..., sqlite3.Connection]
Op = Callable[[SqliteStore, "yf.Spec"], None]  # a string: touching yf.Spec publishes it (see _codec)


# -- poisoned cases ---------------------------------------------------------------------------
@pytest.fixture
def two_cases(db_path: Path, spec: yf.Spec) -> Path:
    with SqliteStore(db_path) as store:
        for case in ("good", "bad"):
            store.create(rec(case), spec)
            store.append(case, CaseStarted(case=case, net="main"))
            store.append(case, ItemCompleted(item=1, output={"x": 1}))
    return db_path


@pytest.mark.parametrize("body", [b"\xc1", b"\x81\xa4type\xa7unknown", b"", b"\x81\xa4type\xacitem_started"])
def test_an_undecodable_event_poisons_its_case_only(two_cases: Path, raw: Raw, helpers: Any, body: bytes,
                                                    open_store: Callable[..., SqliteStore]) -> None:
    conn = helpers.tamperable(raw())
    conn.execute("UPDATE events SET body = ? WHERE seq = 1 AND case_key = (SELECT key FROM cases WHERE id = 'bad')",
                 (body,))
    store = open_store()
    assert [r.case for r in store.records()] == ["good", "bad"]
    with pytest.raises(yf.StoreError) as info:
        store.events("bad")
    message = str(info.value)
    assert "case 'bad', record 1:" in message and "other cases are not affected" in message
    assert f"yawlflow verify --store sqlite:///{two_cases} bad" in message
    assert len(store.events("good")) == 2
    assert store.spec_of("bad") is not None
    store.append("good", ItemStarted(item=2))  # the rest of the store works on
    assert len(store.events("good")) == 3


def test_a_missing_record_poisons_its_case_only(two_cases: Path, raw: Raw, helpers: Any,
                                                open_store: Callable[..., SqliteStore]) -> None:
    conn = helpers.tamperable(raw())
    conn.execute("DELETE FROM events WHERE seq = 0 AND case_key = (SELECT key FROM cases WHERE id = 'bad')")
    store = open_store()
    with pytest.raises(yf.StoreError, match="case 'bad', record 0: the record is missing"):
        store.events("bad")
    conn.execute("DELETE FROM events WHERE seq = 1 AND case_key = (SELECT key FROM cases WHERE id = 'good')")
    with pytest.raises(yf.StoreError, match=r"case 'good', record 1: the record is missing .the case's head says"):
        store.events("good")


def test_an_undecodable_spec_poisons_its_cases_only(two_cases: Path, raw: Raw, spec: yf.Spec,
                                                    other_spec: yf.Spec,
                                                    open_store: Callable[..., SqliteStore]) -> None:
    store = open_store()
    store.create(rec("other"), other_spec)
    version = store.spec_version("other")
    store.close()
    raw().execute("UPDATE specs SET body = x'c1' WHERE hash = ?", (bytes.fromhex(version),))
    store = open_store()
    with pytest.raises(yf.StoreError, match=f"case 'other': spec version {version[:16]}: the stored spec does not"):
        store.spec_of("other")
    assert store.spec_of("good") == spec
    assert len(store.events("other")) == 0


# -- busy ---------------------------------------------------------------------------------------
def test_a_write_waits_busy_timeout_then_fails_cleanly(open_store: Callable[..., SqliteStore], raw: Raw,
                                                       spec: yf.Spec) -> None:
    store = open_store(writer="inline", busy_timeout_ms=50)
    store.create(rec("c1"), spec)
    other = raw()
    other.execute("BEGIN IMMEDIATE")  # a tool holding SQLite's write lock
    with pytest.raises(yf.StoreError, match="1 write failed and rolled back: database is locked"):
        store.append("c1", ItemStarted(item=1))
    other.execute("ROLLBACK")
    assert store.append("c1", ItemStarted(item=2)) == 0
    assert store.events("c1") == [ItemStarted(item=2)]


# -- fault loops --------------------------------------------------------------------------------
def _create(store: SqliteStore, spec: yf.Spec) -> None:
    store.create(rec("new"), spec)


def _create_same_spec(store: SqliteStore, spec: yf.Spec) -> None:
    store.create(rec("new"), store.spec_of("old"))


def _append(store: SqliteStore, spec: yf.Spec) -> None:
    store.append("old", ItemCompleted(item=7, output={"x": 7}))


def _set_status(store: SqliteStore, spec: yf.Spec) -> None:
    store.set_status("old", "completed")


def _snapshot(store: SqliteStore, spec: yf.Spec) -> None:
    store.snapshot("old", b"the state", 1)


def _publish(store: SqliteStore, spec: yf.Spec) -> None:
    store.publish_spec("acme", spec)


def _publish_again(store: SqliteStore, spec: yf.Spec) -> None:
    store.publish_spec(None, store.spec_of("old"))  # a version the store has, for every tenant


def _case_from_start_to_end(store: SqliteStore, spec: yf.Spec) -> None:
    store.create(rec("new"), spec)
    store.append("new", CaseStarted(case="new", net="main"))
    store.append("new", ItemCompleted(item=1))
    store.snapshot("new", b"s", 1)
    store.append("old", ItemStarted(item=3))
    store.set_status("new", "completed")


OPS: list[tuple[str, list[Op]]] = [
    ("create", [_create]),
    ("create-same-spec", [_create_same_spec]),
    ("append", [_append]),
    ("set_status", [_set_status]),
    ("snapshot", [_snapshot]),
    ("publish", [_publish]),
    ("publish-a-stored-version", [_publish_again]),
    ("a-whole-case", [_case_from_start_to_end]),
]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed store with one running case ``old`` of two events."""
    path = tmp_path_factory.mktemp("baseline") / "base.db"
    from yawlflow._spec import loads

    spec = loads(AUTO_THEN_EXTERNAL)
    with SqliteStore(path, writer="inline") as store:
        store.create(rec("old"), spec)
        store.append("old", CaseStarted(case="old", net="main"))
        store.append("old", ItemStarted(item=1))
    return path


def _steps(op: Op) -> list[Callable[[SqliteStore, yf.Spec], None]]:
    """The single calls an op makes, to compute the content after every whole prefix of them."""
    if op is _case_from_start_to_end:
        return [
            lambda s, spec: s.create(rec("new"), spec),
            lambda s, spec: s.append("new", CaseStarted(case="new", net="main")),
            lambda s, spec: s.append("new", ItemCompleted(item=1)),
            lambda s, spec: s.snapshot("new", b"s", 1),
            lambda s, spec: s.append("old", ItemStarted(item=3)),
            lambda s, spec: s.set_status("new", "completed"),
        ]
    return [op]


@pytest.mark.parametrize("writer", ["inline", "thread"])
@pytest.mark.parametrize(("name", "ops"), OPS, ids=[name for name, _ in OPS])
def test_fault_loop(baseline: Path, tmp_path: Path, spec: yf.Spec, helpers: Any, writer: str, name: str,
                    ops: list[Op]) -> None:
    [op] = ops
    # what the file may hold after a failure: the content after each whole prefix of the op's calls
    allowed: list[dict[str, Any]] = []
    reference = tmp_path / "reference.db"
    shutil.copy(baseline, reference)
    allowed.append(helpers.dump(reference))
    with SqliteStore(reference, writer="inline") as store:
        for step in _steps(op):
            step(store, spec)
            allowed.append(helpers.dump(reference))
    done = allowed[-1]
    assert done != allowed[0]
    for n in range(1, 100):
        path = tmp_path / f"run{n}.db"
        shutil.copy(baseline, path)
        faulty = helpers.faulty_connection()
        store = SqliteStore(path, writer=writer, synchronous="OFF", _factory=faulty)
        faulty.arm(n)
        try:
            op(store, spec)
            store.flush()
            ok = True
        except yf.StoreError as exc:
            assert "injected fault" in str(exc) or "must be reopened" in str(exc), exc
            ok = False
        with contextlib.suppress(yf.StoreError):
            store.close()
        assert helpers.integrity(path) == "ok"
        content = helpers.dump(path)
        if ok:
            assert not faulty.fired or n > 1  # it succeeded because the fault came after its last statement
            assert content == done
            assert verify(path) == []
            break
        assert content in allowed, f"fault at statement {n}: a half-applied write"
        if writer == "inline" and len(_steps(op)) == 1:
            assert content == allowed[0]
        assert verify(path) == []
    else:
        pytest.fail(f"{name} never succeeded within 100 statements")
    assert n > 1, "the first fault should have failed the operation"


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "migrating"])
def test_fault_loop_on_open(baseline: Path, tmp_path: Path, helpers: Any, monkeypatch: pytest.MonkeyPatch,
                            existing: bool) -> None:
    nxt = MIGRATIONS[-1].version + 1  # a step after the current schema
    newer = [*MIGRATIONS, Migration(nxt, "add a column", ("ALTER TABLE cases ADD COLUMN note TEXT",
                                                           "CREATE INDEX cases_by_note ON cases (note)"))]
    monkeypatch.setattr(_sqlite, "MIGRATIONS", newer)
    for n in range(1, 100):
        path = tmp_path / f"open{n}.db"
        if existing:
            shutil.copy(baseline, path)
        before = helpers.dump(path) if existing else {}
        faulty = helpers.faulty_connection()
        faulty.arm(n)
        try:
            SqliteStore(path, _factory=faulty).close()
            ok = True
        except yf.StoreError as exc:
            assert str(path) in str(exc) and "injected fault" in str(exc)
            ok = False
        assert helpers.integrity(path) == "ok"
        content = helpers.dump(path)
        version = content.get("schema_version")
        if ok:
            assert version == [(str(nxt),)]
            break
        # a failed open leaves a whole schema version: none, 1, 2, ..., never a half-migrated one
        assert version is None or version in [[(str(v),)] for v in range(1, nxt + 1)]
        if existing:
            assert content == before or version == [(str(nxt),)]
        else:
            empty = {"schema_version": version, "specs": [], "cases": [], "events": [], "snapshots": []}
            if "published" in content:  # schema 3 on
                empty["published"] = []
            assert content == {} or content == empty
        with SqliteStore(path) as store:  # and the next open (no faults) completes the job
            assert len(store.records()) == (1 if existing else 0)
    else:
        pytest.fail("opening never succeeded within 100 statements")


def test_an_inline_store_stays_usable_after_a_failed_write(open_store: Callable[..., SqliteStore], spec: yf.Spec,
                                                           helpers: Any) -> None:
    faulty = helpers.faulty_connection()
    store = open_store(writer="inline", _factory=faulty)
    store.create(rec("c1"), spec)
    store.append("c1", ItemStarted(item=0))
    for n in (1, 2, 3, 4):  # BEGIN, INSERT, UPDATE head, COMMIT
        faulty.arm(n)
        with pytest.raises(yf.StoreError, match=r"1 write failed and rolled back: injected fault.*and usable"):
            store.append("c1", ItemStarted(item=n))
    assert store.append("c1", ItemStarted(item=5)) == 1
    assert store.events("c1") == [ItemStarted(item=0), ItemStarted(item=5)]
    assert store.verify() == []


def test_a_failed_rollback_makes_the_store_refuse_more_writes(open_store: Callable[..., SqliteStore],
                                                              spec: yf.Spec, helpers: Any, db_path: Path) -> None:
    faulty = helpers.faulty_connection()
    store = open_store(writer="inline", _factory=faulty)
    store.create(rec("c1"), spec)
    faulty.arm(4)  # COMMIT fails, and so would the ROLLBACK after it
    original = faulty._tick

    def tick_twice(self: Any, sql: str) -> None:
        if sql == "ROLLBACK":
            raise sqlite3.OperationalError("injected fault at: ROLLBACK")
        original(self, sql)

    faulty._tick = tick_twice
    with pytest.raises(yf.StoreError, match="must be reopened"):
        store.append("c1", ItemStarted(item=1))
    with pytest.raises(yf.StoreError, match="could not be rolled back"):
        store.append("c1", ItemStarted(item=2))
    store.close()
    assert helpers.integrity(db_path) == "ok"
    with SqliteStore(db_path) as again:
        assert again.events("c1") == []
