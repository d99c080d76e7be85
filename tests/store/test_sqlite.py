"""The SQLite store beyond the contract: durability, group commit, snapshots, spec versions, options."""

from __future__ import annotations

import datetime
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from kit import AUTO_THEN_EXTERNAL, rec

import yawlflow as yf
from yawlflow._events import CaseStarted, ItemCompleted, ItemStarted
from yawlflow._sqlite import Snapshot, SqliteStore, open_sqlite_url

Opener = Callable[..., SqliteStore]


# -- durability -------------------------------------------------------------------------------
def test_the_file_is_in_wal_mode_with_synchronous_full(open_store: Opener, raw: Callable[..., sqlite3.Connection],
                                                       spec: yf.Spec) -> None:
    store = open_store()
    store.create(rec("c1"), spec)
    store.flush()
    assert raw().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._wconn is not None
    assert store._wconn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._wconn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert store._wconn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_synchronous_can_be_relaxed(open_store: Opener) -> None:
    store = open_store(synchronous="normal", busy_timeout_ms=250)
    assert store._wconn is not None
    assert store._wconn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert store._wconn.execute("PRAGMA busy_timeout").fetchone()[0] == 250


@pytest.mark.parametrize("writer", ["thread", "inline"])
def test_every_write_transaction_begins_immediate(open_store: Opener, spec: yf.Spec, helpers: Any,
                                                  writer: str) -> None:
    log: list[str] = []
    store = open_store(writer=writer, _factory=helpers.faulty_connection(log))
    del log[:]
    store.create(rec("c1"), spec)
    store.append("c1", ItemStarted(item=1))
    store.set_status("c1", "completed")
    store.snapshot("c1", b"state", 0)
    store.flush()
    begins = [s for s in log if s.startswith("BEGIN")]
    assert begins and set(begins) == {"BEGIN IMMEDIATE"}
    # every write statement runs inside a BEGIN IMMEDIATE ... COMMIT
    inside = False
    for statement in log:
        if statement == "BEGIN IMMEDIATE":
            inside = True
        elif statement == "COMMIT":
            inside = False
        elif statement.startswith(("INSERT", "UPDATE", "DELETE")):
            assert inside, statement
    assert log[-1] == "COMMIT"


def test_inline_writes_are_committed_when_the_call_returns(open_store: Opener, raw: Callable[..., sqlite3.Connection],
                                                           spec: yf.Spec) -> None:
    store = open_store(writer="inline")
    store.create(rec("c1"), spec)
    store.append("c1", ItemStarted(item=1))
    assert store.pending == 0
    assert raw().execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_group_commit_writes_everything_queued_in_one_transaction(open_store: Opener, spec: yf.Spec,
                                                                 raw: Callable[..., sqlite3.Connection]) -> None:
    store = open_store()
    store.create(rec("c1"), spec)
    store.flush()
    before = store.commits
    with store._mutex:  # the writer cannot take the queue meanwhile: all 100 appends wait for it together
        for i in range(100):
            store.append("c1", ItemStarted(item=i))
        assert store.pending == 100
    store.flush()
    assert store.pending == 0
    assert store.commits == before + 1
    assert raw().execute("SELECT count(*) FROM events").fetchone()[0] == 100


def test_flush_makes_writes_visible_to_another_connection(open_store: Opener, spec: yf.Spec,
                                                          raw: Callable[..., sqlite3.Connection]) -> None:
    store = open_store()
    store.create(rec("c1"), spec)
    for i in range(10):
        store.append("c1", ItemStarted(item=i))
    store.flush()
    conn = raw()
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 10
    assert conn.execute("SELECT last_seq FROM cases").fetchone()[0] == 9


@pytest.mark.anyio
@pytest.mark.parametrize("writer", ["thread", "inline"])
async def test_durable_waits_until_the_writes_are_committed(open_store: Opener, spec: yf.Spec, writer: str,
                                                            raw: Callable[..., sqlite3.Connection]) -> None:
    store = open_store(writer=writer)
    await store.durable()  # nothing pending: returns at once
    store.create(rec("c1"), spec)
    for i in range(50):
        store.append("c1", ItemStarted(item=i))
    await store.durable()
    assert store.pending == 0
    assert raw().execute("SELECT count(*) FROM events").fetchone()[0] == 50
    await store.aclose()


@pytest.mark.anyio
async def test_concurrent_durable_calls_share_one_waiting_thread(open_store: Opener, spec: yf.Spec) -> None:
    gate = threading.Event()

    class Gated(sqlite3.Connection):
        closed_gate = False

        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            if sql == "BEGIN IMMEDIATE" and Gated.closed_gate:
                gate.wait()
            return super().execute(sql, parameters)

    store = open_store(_factory=Gated)
    store.create(rec("c1"), spec)
    store.flush()
    waits: list[int] = []
    wait_for = store._wait_for

    def counting(target: int) -> None:
        waits.append(target)
        wait_for(target)

    store._wait_for = counting  # type: ignore[method-assign]
    Gated.closed_gate = True  # the writer stops at its next BEGIN until the gate opens
    store.append("c1", ItemStarted(item=0))
    finished: list[int] = []

    async def ack(i: int) -> None:
        await store.durable()
        finished.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(ack, i)
        await anyio.wait_all_tasks_blocked()
        assert finished == []
        gate.set()
    assert sorted(finished) == list(range(20))
    assert len(waits) == 1  # one worker thread waited for all twenty


@pytest.mark.anyio
async def test_durable_reports_a_failed_group_commit(open_store: Opener, spec: yf.Spec, helpers: Any) -> None:
    faulty = helpers.faulty_connection()
    store = open_store(_factory=faulty)
    store.create(rec("c1"), spec)
    store.flush()
    with store._mutex:  # queue both before the writer runs, so that they share the failing transaction
        faulty.arm(2)  # BEGIN IMMEDIATE passes, the first INSERT fails
        store.append("c1", ItemStarted(item=1))
        store.append("c1", ItemStarted(item=2))
    with pytest.raises(yf.StoreError, match=r"2 writes failed and rolled back.*injected fault.*must be reopened"):
        await store.durable()
    with pytest.raises(yf.StoreError, match="must be reopened"):
        store.append("c1", ItemStarted(item=3))
    store.close()  # the failure was reported: close does not raise it again
    with SqliteStore(store.path) as again:
        assert again.events("c1") == []


def test_close_reports_a_failure_nobody_saw(open_store: Opener, spec: yf.Spec, helpers: Any) -> None:
    faulty = helpers.faulty_connection()
    store = open_store(_factory=faulty)
    store.create(rec("c1"), spec)
    store.flush()
    faulty.arm(1)
    store.append("c1", ItemStarted(item=1))
    with pytest.raises(yf.StoreError, match="1 write failed"):
        store.close()
    store.close()  # idempotent


CHILD = textwrap.dedent("""
    import os, signal, sys
    import yawlflow as yf
    from yawlflow._events import CaseStarted, ItemCompleted
    from yawlflow._sqlite import SqliteStore
    from yawlflow._store import CaseRecord

    store = SqliteStore(sys.argv[1])
    store.create(CaseRecord(case="c1", spec_id="seq", net="main"), yf.loads(sys.argv[2]))
    store.append("c1", CaseStarted(case="c1", net="main"))
    for i in range(1, 301):
        store.append("c1", ItemCompleted(item=i, output={"i": i}))
        if i % 100 == 0:
            store.flush()
            print("acked", i, flush=True)
    for i in range(301, 400):
        store.append("c1", ItemCompleted(item=i, output={"i": i}))  # never acknowledged
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_acknowledged_events_survive_sigkill(db_path: Path) -> None:
    from yawlflow._provenance import verify

    child = subprocess.run([sys.executable, "-c", CHILD, str(db_path), AUTO_THEN_EXTERNAL], capture_output=True,
                           text=True, check=False, timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.split() == ["acked", "100", "acked", "200", "acked", "300"]
    with SqliteStore(db_path) as store:  # the dead child's lock is gone
        events = store.events("c1")
        assert len(events) >= 301
        assert events[0] == CaseStarted(case="c1", net="main")
        assert [e.item for e in events[1:]] == list(range(1, len(events)))  # type: ignore[union-attr]
    assert verify(db_path) == []


# -- spec versions ----------------------------------------------------------------------------
def test_each_spec_version_is_stored_once(open_store: Opener, raw: Callable[..., sqlite3.Connection],
                                          spec: yf.Spec, other_spec: yf.Spec) -> None:
    store = open_store()
    for i in range(5):
        store.create(rec(f"old{i}"), spec)
    store.create(rec("equal"), yf.loads(AUTO_THEN_EXTERNAL))  # loaded again: another object, same content
    store.create(rec("new"), other_spec)
    store.flush()
    assert raw().execute("SELECT count(*) FROM specs").fetchone()[0] == 2
    assert store.spec_version("old0") == store.spec_version("old4") == store.spec_version("equal")
    assert store.spec_version("new") != store.spec_version("old0")
    assert len(store.spec_version("new")) == 64


def test_specs_come_back_decoded_after_reopening(open_store: Opener, spec: yf.Spec, other_spec: yf.Spec) -> None:
    store = open_store()
    store.create(rec("old"), spec)
    store.create(rec("new"), other_spec)
    store.close()
    store = open_store()
    assert store.spec_of("old") == spec
    assert store.spec_of("new") == other_spec
    assert store.spec_of("old") is store.spec_of("old")  # decoded once per version


def test_a_spec_given_as_plain_data_is_kept_as_data(open_store: Opener) -> None:
    store = open_store()
    store.create(rec("c1"), {"id": "seq", "nets": {}})
    store.close()
    assert open_store().spec_of("c1") == {"id": "seq", "nets": {}}


# -- listing ----------------------------------------------------------------------------------
def test_records_filter_by_status_and_tenant(open_store: Opener, spec: yf.Spec) -> None:
    store = open_store()
    for case, tenant in [("a", "x"), ("b", "y"), ("c", "x"), ("d", None)]:
        store.create(rec(case, tenant=tenant), spec)
    store.set_status("c", "completed")
    assert [r.case for r in store.records(status="running")] == ["a", "b", "d"]
    assert [r.case for r in store.records(tenant="x")] == ["a", "c"]
    assert [r.case for r in store.records(status="running", tenant="x")] == ["a"]
    assert store.record("c") == rec("c", tenant="x", status="completed")
    with pytest.raises(yf.StoreError, match="no case 'z'"):
        store.record("z")


def test_head_names_the_last_record(open_store: Opener, spec: yf.Spec) -> None:
    store = open_store()
    store.create(rec("c1"), spec)
    assert store.head("c1") == (-1, bytes(32))
    store.append("c1", ItemStarted(item=1))
    seq, digest = store.head("c1")
    store.close()
    assert open_store().head("c1") == (seq, digest) and seq == 0 and len(digest) == 32


# -- snapshots --------------------------------------------------------------------------------
def test_state_is_the_latest_snapshot_and_the_events_after_it(open_store: Opener, spec: yf.Spec) -> None:
    store = open_store(snapshot_every=3)
    store.create(rec("c1"), spec)
    assert store.latest_snapshot("c1") is None
    for i in range(7):
        store.append("c1", ItemStarted(item=i))
        if store.needs_snapshot("c1"):
            store.snapshot("c1", f"state after {i}".encode(), i)
    # seq 0..6: snapshots after 2 and 5; the older one is replaced
    store.close()
    store = open_store(snapshot_every=3)
    snap = store.latest_snapshot("c1")
    assert snap == Snapshot(5, b"state after 5")
    assert store.events("c1", start=snap.upto_seq + 1) == [ItemStarted(item=6)]
    assert not store.needs_snapshot("c1")
    store.append("c1", ItemStarted(item=7))
    store.append("c1", ItemStarted(item=8))
    assert store.needs_snapshot("c1")


def test_snapshot_must_follow_a_record_of_the_case(open_store: Opener, spec: yf.Spec) -> None:
    store = open_store()
    store.create(rec("c1"), spec)
    with pytest.raises(yf.StoreError, match="no record 0 to snapshot after"):
        store.snapshot("c1", b"x", 0)
    store.append("c1", ItemStarted(item=1))
    with pytest.raises(yf.StoreError, match=r"no record 1 to snapshot after .its last is 0"):
        store.snapshot("c1", b"x", 1)
    with pytest.raises(TypeError, match="must be bytes"):
        store.snapshot("c1", "text", 0)  # type: ignore[arg-type]


def test_snapshot_every_zero_never_asks(open_store: Opener, spec: yf.Spec) -> None:
    store = open_store(snapshot_every=0)
    store.create(rec("c1"), spec)
    for i in range(300):
        store.append("c1", ItemStarted(item=i))
    assert not store.needs_snapshot("c1")


def test_a_tampered_snapshot_is_ignored(open_store: Opener, spec: yf.Spec, raw: Callable[..., sqlite3.Connection],
                                        caplog: pytest.LogCaptureFixture) -> None:
    store = open_store()
    store.create(rec("c1"), spec)
    store.append("c1", ItemStarted(item=1))
    store.snapshot("c1", b"good", 0)
    store.close()
    raw().execute("UPDATE snapshots SET state = ?", (b"evil",))
    assert open_store().latest_snapshot("c1") is None  # fold from the start instead
    assert "fails its hash" in caplog.text


def test_events_from_a_start(open_store: Opener, spec: yf.Spec) -> None:
    store = open_store()
    store.create(rec("c1"), spec)
    for i in range(5):
        store.append("c1", ItemStarted(item=i))
    assert store.events("c1", start=3) == [ItemStarted(item=3), ItemStarted(item=4)]
    assert store.events("c1", start=5) == []
    assert store.events("c1", start=9) == []
    with pytest.raises(ValueError, match=">= 0"):
        store.events("c1", start=-1)


# -- what cannot be stored --------------------------------------------------------------------
@pytest.mark.parametrize("writer", ["thread", "inline"])
@pytest.mark.parametrize(("output", "why"), [
    ({"x": object()}, "cannot be stored"),
    ({"x": {1: "a"}}, None),  # int keys: MessagePack keeps them, but nested data is Any: fine
])
def test_an_event_that_cannot_be_stored_is_refused_and_changes_nothing(
    open_store: Opener, spec: yf.Spec, writer: str, output: dict[str, Any], why: str | None
) -> None:
    store = open_store(writer=writer)
    store.create(rec("c1"), spec)
    store.append("c1", ItemStarted(item=0))
    if why is None:
        assert store.append("c1", ItemCompleted(item=1, output=output)) == 1
        return
    with pytest.raises(yf.StoreError, match=f"case 'c1': a item_completed event {why}"):
        store.append("c1", ItemCompleted(item=1, output=output))
    assert store.append("c1", ItemStarted(item=2)) == 1
    assert store.events("c1") == [ItemStarted(item=0), ItemStarted(item=2)]


def test_top_level_keys_must_be_strings(open_store: Opener, spec: yf.Spec) -> None:
    store = open_store()
    store.create(rec("c1"), spec)
    with pytest.raises(yf.StoreError, match="would not decode once stored"):
        store.append("c1", ItemCompleted(item=1, output={1: "a"}))  # type: ignore[dict-item]
    assert store.events("c1") == []


def test_bytes_and_datetimes_in_data_come_back(open_store: Opener, spec: yf.Spec) -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    store = open_store()
    store.create(rec("c1"), spec)
    store.append("c1", CaseStarted(case="c1", net="main", data={"blob": b"\x00\xff", "when": when}))
    store.close()
    assert open_store().events("c1")[0].data == {"blob": b"\x00\xff", "when": when}  # type: ignore[union-attr]


# -- options, URLs, life cycle ----------------------------------------------------------------
@pytest.mark.parametrize(("options", "message"), [
    ({"synchronous": "sometimes"}, "synchronous='sometimes': use one of OFF, NORMAL, FULL, EXTRA"),
    ({"snapshot_every": -1}, "snapshot_every=-1"),
    ({"busy_timeout_ms": "5s"}, "busy_timeout_ms='5s'"),
    ({"writer": "async"}, "writer='async'"),
])
def test_bad_options_are_config_errors(db_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(yf.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SqliteStore(db_path, **options)
    assert not db_path.exists()


def test_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_sqlite_url("sqlite:///rel.db?synchronous=NORMAL&snapshot_every=7&writer=inline") as store:
        assert store.path == Path("rel.db") and store.synchronous == "NORMAL"
        assert store.snapshot_every == 7 and store.writer == "inline"
    assert (tmp_path / "rel.db").exists()
    absolute = tmp_path / "sub dir" / "abs.db"
    absolute.parent.mkdir()
    with open_sqlite_url(f"sqlite:///{absolute}".replace(" ", "%20")) as store:
        assert store.path == absolute
    with SqliteStore(f"sqlite:///{absolute}", readonly=True) as store:
        assert store.readonly
    for bad, message in [("sqlite://host/x.db", "three slashes"), ("sqlite:///", "three slashes"),
                         ("sqlite:///x.db?color=red", "unknown option 'color'"),
                         ("sqlite:///x.db?snapshot_every=many", "whole number")]:
        with pytest.raises(yf.ConfigError, match=message):
            open_sqlite_url(bad)
    with pytest.raises(yf.ConfigError, match="path of a database file"):
        SqliteStore(":memory:")


def test_a_closed_store_says_so(open_store: Opener, spec: yf.Spec) -> None:
    store = open_store()
    store.create(rec("c1"), spec)
    store.close()
    store.close()
    for call in (lambda: store.append("c1", ItemStarted(item=1)), lambda: store.records(),
                 lambda: store.events("c1"), lambda: store.create(rec("c2"), spec), lambda: store.flush()):
        with pytest.raises(yf.StoreError, match="is closed"):
            call()
    assert "closed" in repr(store)


def test_read_only_reads_beside_the_writer_and_refuses_writes(open_store: Opener, spec: yf.Spec,
                                                             db_path: Path) -> None:
    writer = open_store()
    writer.create(rec("c1"), spec)
    writer.append("c1", ItemStarted(item=1))
    writer.publish_spec("acme", spec)
    writer.flush()
    reader = open_store(readonly=True)
    assert reader.events("c1") == [ItemStarted(item=1)]
    assert [r.case for r in reader.records()] == ["c1"]
    assert reader.published_specs() == [("acme", spec)]
    with pytest.raises(yf.StoreError, match="read-only"):
        reader.append("c1", ItemStarted(item=2))
    with pytest.raises(yf.StoreError, match="read-only"):
        reader.publish_spec("acme", spec)
    writer.append("c1", ItemStarted(item=2))
    writer.flush()
    assert len(reader.events("c1")) == 2
    with pytest.raises(yf.StoreError, match="no such file"):
        SqliteStore(db_path.with_name("missing.db"), readonly=True)


def test_specs_decode_after_yawlflow_spec_was_published(db_path: Path) -> None:
    # Publishing renames public classes' __module__ to "yawlflow"; a Struct renamed so would break
    # msgspec's annotation lookup. Run in a child, so that the first touch of yf.Spec is this one.
    script = textwrap.dedent("""
        import sys
        import msgspec
        import yawlflow as yf
        assert yf.Spec.__module__ != "yawlflow"  # Structs keep their module
        assert msgspec.structs.fields(yf.Spec)
        from yawlflow._sqlite import SqliteStore
        from yawlflow._store import CaseRecord
        spec = yf.load("examples/orders.yaml")
        with SqliteStore(sys.argv[1]) as store:
            store.create(CaseRecord(case="c1", spec_id=spec.id, net=spec.root), spec)
        with SqliteStore(sys.argv[1]) as store:
            assert store.spec_of("c1") == spec
        print("ok")
    """)
    root = Path(__file__).parents[2]
    done = subprocess.run([sys.executable, "-c", script, str(db_path)], capture_output=True, text=True, cwd=root,
                          check=False, timeout=60)
    assert done.stdout == "ok\n", done.stderr
