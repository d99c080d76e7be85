"""What only the PostgreSQL store does: leases shared by several engines, fencing, its schema, its URLs.

The contract every store keeps is in test_contract.py (which runs on PostgreSQL too). These tests
need a server: ``YAWLFLOW_TEST_POSTGRES_URL`` (``bash .ci/run`` starts one); each test gets a
fresh schema (``pg_url``), so tests are independent. Without the variable they are skipped, except
under ``CI=true``, where the first test fails instead.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import anyio
import pytest
from kit import closing_stores, inc, rec

import yawlflow as yf
from yawlflow._events import CaseStarted, ItemCompleted, ItemStarted
from yawlflow._postgres import LeaseLostError, PostgresStore, open_postgres_url, schema_version
from yawlflow._store import CaseExistsError, check_store_url, open_store

PG_ENV = "YAWLFLOW_TEST_POSTGRES_URL"

Opener = Callable[..., PostgresStore]


def with_options(url: str, **options: Any) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query) + [(k, str(v)) for k, v in options.items()]
    return urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query)))


def schema_of(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["schema"]


@pytest.fixture
def open_pg(pg_url: str) -> Iterator[Opener]:
    """Open stores on the test's schema (each one an engine of its own); closed at teardown."""

    def open_one(**options: Any) -> PostgresStore:
        return open_postgres_url(with_options(pg_url, **options))

    with closing_stores(open_one) as opener:
        yield opener


@pytest.fixture
def sql(pg_url: str) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """Run SQL on the test's schema outside any store (autocommit); returns the rows."""
    import psycopg

    conninfo = with_options(pg_url)
    parts = urlsplit(conninfo)
    conninfo = urlunsplit(parts._replace(query="&".join(
        f"{k}={v}" for k, v in parse_qsl(parts.query) if k != "schema")))
    conn = psycopg.connect(conninfo, autocommit=True)
    conn.execute(f'SET search_path TO "{schema_of(pg_url)}"')

    def run(statement: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = conn.execute(statement, params or None)
        return cur.fetchall() if cur.description else []

    yield run
    conn.close()


# -- the server is there when it must be ------------------------------------------------------
def test_ci_has_a_postgres_server() -> None:
    """Under CI the PostgreSQL tests must run: a server that failed to install is a failure, not a skip."""
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {PG_ENV} is unset: .ci/run could not install or start PostgreSQL (see its "
                        "'postgresql' stage), so the PostgreSQL store tests would all be skipped")
        pytest.skip("set YAWLFLOW_TEST_POSTGRES_URL (bash .ci/run starts a server)")
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None and int(row[0]) >= 130000, "the tests drop databases WITH (FORCE): PostgreSQL >= 13"


# -- no server needed: URLs, the optional dependency -------------------------------------------
def test_import_yawlflow_does_not_import_psycopg() -> None:
    code = ("import sys, yawlflow, yawlflow._store, yawlflow._postgres; yawlflow.Engine(); "
            "assert 'psycopg' not in sys.modules, sorted(m for m in sys.modules if 'psycopg' in m)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_psycopg_the_url_is_refused_with_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    for url in ("postgresql://db.example/cases", "postgres://db.example/cases"):
        with pytest.raises(yf.ConfigError, match=r"pip install 'yawlflow\[postgres\]'"):
            check_store_url(url)
        with pytest.raises(yf.ConfigError, match=r"pip install 'yawlflow\[postgres\]'"):
            yf.Engine(store=url)


def test_both_schemes_are_accepted_without_connecting() -> None:
    assert check_store_url("postgresql://alice:pw@db.example:5432/cases?sslmode=require&snapshot_every=50") == \
        "postgresql"
    assert check_store_url("postgres://db.example/cases?owner=engine-a&lease_s=2.5&writer=inline") == "postgres"
    yf.Engine(store="postgresql://db.example/cases")  # checked, not opened


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://h/db?snapshot_every=often", "snapshot_every must be a whole number"),
        ("postgresql://h/db?writer=fast", "writer='fast': use thread"),
        ("postgresql://h/db?schema=My-Cases", "schema='My-Cases': use a lower-case SQL name"),
        ("postgresql://h/db?lease_s=0", r"lease_s=0.0: use a number of seconds > 0"),
        ("postgresql://h/db?lease_s=soon", "lease_s must be a number of seconds"),
        ("postgresql://h/db?owner=", "owner= is empty"),
        ("postgresql://h/db?fast=1", 'invalid URI query parameter: "fast"'),
        ("postgresql://alice:hunter2@[::1/db", "not a valid libpq URL"),
    ],
)
def test_a_bad_url_is_a_config_error_without_the_password(url: str, message: str) -> None:
    with pytest.raises(yf.ConfigError, match=message) as caught:
        check_store_url(url)
    assert "hunter2" not in str(caught.value)


def test_an_unreachable_server_names_host_and_database_not_the_password() -> None:
    url = "postgresql://alice:hunter2@127.0.0.1:1/orders?connect_timeout=5"  # nothing listens on port 1
    with pytest.raises(yf.StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "db 'orders' on 127.0.0.1:1 as alice" in message
    assert "cannot connect" in message
    assert "check that the server is running" in message
    assert "hunter2" not in message


# -- opening, schema, migrations ---------------------------------------------------------------
def test_a_missing_database_says_to_create_it(pg_database: str) -> None:
    url = urlunsplit(urlsplit(pg_database)._replace(path="/no_such_database_here"))
    with pytest.raises(yf.StoreError, match=r"db 'no_such_database_here'.*create the database"):
        open_store(url)


def test_a_new_schema_is_created_at_the_current_version(open_pg: Opener, sql: Callable[..., Any],
                                                        pg_url: str) -> None:
    open_pg()
    meta = dict(sql("SELECT key, value FROM meta"))
    assert meta["schema_version"] == str(schema_version()) == "2"
    assert meta["migration.1"].startswith("the initial schema")
    assert meta["migration.2"].startswith("published specs")
    tables = {name for (name,) in sql("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                      schema_of(pg_url))}
    assert tables == {"meta", "specs", "cases", "events", "snapshots", "leases", "published"}


def test_engines_opening_a_new_database_at_once_migrate_it_once(pg_url: str, sql: Callable[..., Any]) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_one() -> None:
        start.wait()
        try:
            stores.append(open_postgres_url(pg_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for store in stores:
        store.close()
    assert errors == []
    assert len(stores) == 4
    assert sql("SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]


def test_a_newer_schema_is_refused_naming_both_versions(open_pg: Opener, sql: Callable[..., Any]) -> None:
    open_pg().close()
    sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(yf.StoreError, match="its version is 99, but this yawlflow knows versions up to 2"):
        open_pg()


def test_a_schema_1_store_migrates_keeps_its_cases_and_verifies(open_pg: Opener, sql: Callable[..., Any],
                                                                pg_url: str, spec: yf.Spec,
                                                                other_spec: yf.Spec) -> None:
    store = open_pg()
    store.create(rec("c1"), spec)
    store.append("c1", CaseStarted(case="c1", net="main"))
    head = store.head("c1")
    store.close()
    sql("DROP TABLE published")  # what schema 1 held
    sql("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    sql("DELETE FROM meta WHERE key = 'migration.2'")
    with pytest.raises(yf.StoreError, match="holds schema version 1, this yawlflow's is 2; open it for writing"):
        open_store(pg_url, readonly=True)
    store = open_pg()  # migrates
    assert store.published_specs() == []
    assert store.head("c1") == head and store.spec_of("c1") == spec
    store.publish_spec("acme", other_spec)
    store.append("c1", ItemStarted(item=1))  # its case goes on
    store.close()
    assert sql("SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]
    reader = open_store(pg_url, readonly=True)
    try:
        assert isinstance(reader, PostgresStore)
        assert reader.published_specs() == [("acme", other_spec)]
        assert len(reader.events("c1")) == 2
        assert reader.verify() == []
    finally:
        reader.close()


def test_engines_publishing_at_once_keep_one_spec_per_tenant_and_id(open_pg: Opener, sql: Callable[..., Any],
                                                                    spec: yf.Spec, other_spec: yf.Spec) -> None:
    a, b = open_pg(), open_pg()
    for _ in range(20):  # two writer threads, interleaved commits; NULL (every tenant) is one key too
        for tenant in (None, "acme"):
            a.publish_spec(tenant, spec)
            b.publish_spec(tenant, other_spec)
    a.flush()
    b.flush()
    assert sql("SELECT tenant, spec_id, count(*) FROM published GROUP BY tenant, spec_id ORDER BY tenant") == [
        ("acme", "seq", 1), (None, "seq", 1)]
    assert a.published_specs() == b.published_specs()
    b.publish_spec("acme", spec)
    b.flush()
    assert a.published_specs("acme")[-1] == ("acme", spec)  # another engine's publish, seen at once


def test_a_schema_of_someone_else_is_refused_and_left_alone(open_pg: Opener, sql: Callable[..., Any],
                                                             pg_url: str) -> None:
    sql(f'CREATE SCHEMA "{schema_of(pg_url)}"')
    sql("CREATE TABLE invoices (id int)")
    with pytest.raises(yf.StoreError, match=r"holds tables that are not a yawlflow store \(invoices\)"):
        open_pg()
    assert sql("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
               schema_of(pg_url)) == [("invoices",)]


def test_read_only_opens_nothing_new(pg_url: str, open_pg: Opener, spec: yf.Spec) -> None:
    with pytest.raises(yf.StoreError, match=r"has no yawlflow store.*open it for writing once"):
        open_store(pg_url, readonly=True)
    writer = open_pg()
    writer.create(rec("c1"), spec)
    writer.append("c1", CaseStarted(case="c1", net="main"))
    writer.publish_spec("acme", spec)
    writer.flush()
    reader = open_store(pg_url, readonly=True)
    try:
        assert isinstance(reader, PostgresStore) and reader.readonly
        assert reader.events("c1") == [CaseStarted(case="c1", net="main")]
        assert reader.published_specs() == [("acme", spec)]
        with pytest.raises(yf.StoreError, match="opened read-only"):
            reader.append("c1", ItemStarted(item=1))
        with pytest.raises(yf.StoreError, match="opened read-only"):
            reader.publish_spec("acme", spec)
        with pytest.raises(yf.StoreError, match="opened read-only"):
            reader.claim()
    finally:
        reader.close()
    assert writer.lease_of("c1")[0] == writer.owner  # the reader took and released nothing


def test_the_log_is_append_only(open_pg: Opener, sql: Callable[..., Any], spec: yf.Spec) -> None:
    import psycopg

    store = open_pg()
    store.create(rec("c1"), spec)
    store.append("c1", ItemStarted(item=1))
    store.flush()
    for statement in ("UPDATE events SET kind = 'x'", "DELETE FROM events", "TRUNCATE events CASCADE"):
        with pytest.raises(psycopg.Error, match="the event log is append-only"):
            sql(statement)
    assert store.events("c1") == [ItemStarted(item=1)]


def test_verify_names_the_first_broken_record(open_pg: Opener, sql: Callable[..., Any], pg_url: str,
                                              spec: yf.Spec) -> None:
    store = open_pg()
    for case in ("a", "b"):
        store.create(rec(case), spec)
        for i in range(5):
            store.append(case, ItemCompleted(item=i, output={"i": i}))
    store.snapshot("b", b"state", 4)
    assert store.verify() == []
    store.close()
    sql("ALTER TABLE events DISABLE TRIGGER events_are_append_only")  # as someone tampering would
    sql("UPDATE events SET body = set_byte(body, length(body) - 1, get_byte(body, length(body) - 1) # 1) "
        "WHERE seq = 2 AND case_key = (SELECT key FROM cases WHERE id = 'a')")
    reader = open_store(pg_url, readonly=True)
    try:
        assert isinstance(reader, PostgresStore)
        problems = reader.verify()
        assert [(p.case, p.seq) for p in problems] == [("a", 2)]
        assert "does not match its hash" in problems[0].message
        assert reader.verify("b") == []
        with pytest.raises(yf.StoreError, match="no case 'zz'"):
            reader.verify("zz")
    finally:
        reader.close()


def test_snapshots_are_bound_to_the_chain(open_pg: Opener, sql: Callable[..., Any], spec: yf.Spec) -> None:
    store = open_pg(snapshot_every=3)
    store.create(rec("c1"), spec)
    for i in range(3):
        store.append("c1", ItemStarted(item=i))
    assert store.needs_snapshot("c1")
    store.snapshot("c1", b"one", 1)  # an older record: the anchor is looked up
    store.snapshot("c1", b"two", 2)
    assert not store.needs_snapshot("c1")
    got = store.latest_snapshot("c1")
    assert got is not None and (got.upto_seq, got.state) == (2, b"two")
    assert sql("SELECT upto_seq FROM snapshots") == [(2,)]  # the older one was replaced
    sql("UPDATE snapshots SET state = 'tampered'::bytea")
    assert store.latest_snapshot("c1") is None  # ignored: fold from the start
    assert [(p.seq, "snapshot" in p.message) for p in store.verify()] == [(2, True)]


def test_times_are_the_wall_clock_at_append(open_pg: Opener, spec: yf.Spec) -> None:
    store = open_pg()
    store.create(rec("c1"), spec)
    before = time.time_ns()
    for i in range(4):
        store.append("c1", ItemStarted(item=i, at_ns=i))  # the engine's clock is another thing
    after = time.time_ns()
    times = store.times("c1")
    assert len(times) == 4
    assert times == sorted(times)
    assert before <= times[0] and times[-1] <= after
    assert store.times("c1", 2) == times[2:]
    with pytest.raises(yf.StoreError, match="no case 'nope'"):
        store.times("nope")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_durable_waits_without_blocking_the_loop(open_pg: Opener, pg_url: str, spec: yf.Spec,
                                                 backend: str) -> None:
    import psycopg

    store = open_pg()
    store.create(rec("c1"), spec)
    store.flush()
    parts = urlsplit(pg_url)
    blocker = psycopg.connect(urlunsplit(parts._replace(query="&".join(
        f"{k}={v}" for k, v in parse_qsl(parts.query) if k != "schema"))))
    blocker.execute(f'SET search_path TO "{schema_of(pg_url)}"')
    blocker.execute("SELECT * FROM leases FOR UPDATE")  # the writer's next commit waits for this lock
    store.append("c1", ItemStarted(item=1))
    seen: list[tuple[int, bool]] = []

    async def main() -> None:
        done = anyio.Event()

        async def wait_durable() -> None:
            await store.durable()
            done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_durable)
            ticks = 0
            while ticks < 100:  # the loop runs on while durable() waits for the commit
                await anyio.sleep(0)
                ticks += 1
            seen.append((ticks, done.is_set()))
            blocker.rollback()  # let the writer's transaction go on
            await done.wait()

    try:
        anyio.run(main, backend=backend)
    finally:
        blocker.close()
    assert seen == [(100, False)]
    assert store.pending == 0
    assert store.events("c1") == [ItemStarted(item=1)]


def test_group_commit_takes_what_is_queued_in_one_transaction(open_pg: Opener, spec: yf.Spec) -> None:
    store = open_pg()
    for n in range(20):
        store.create(rec(f"c{n}"), spec)
    store.flush()
    before = store.commits
    for n in range(20):
        for i in range(5):
            store.append(f"c{n}", ItemStarted(item=i))
    store.flush()
    assert store.commits - before < 100  # 100 writes, far fewer commits
    assert all(store.events(f"c{n}") == [ItemStarted(item=i) for i in range(5)] for n in range(20))


def test_a_lost_connection_makes_the_store_fail_until_reopened(open_pg: Opener, sql: Callable[..., Any],
                                                               spec: yf.Spec, pg_database: str) -> None:
    store = open_pg()
    store.create(rec("c1"), spec)
    store.flush()
    sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'yawlflow' "
        "AND pid <> pg_backend_pid() AND datname = current_database()")
    store.append("c1", ItemStarted(item=1))
    with pytest.raises(yf.StoreError, match=r"db 'yawlflow_test_\w+' on .*: the connection was lost during a write.*"
                       "reopen the store"):
        store.flush()
    with pytest.raises(yf.StoreError):
        store.append("c1", ItemStarted(item=2))
    again = open_pg()
    assert again.events("c1") == []  # the lost write never committed, and nothing half-way


# -- leases ------------------------------------------------------------------------------------
def test_create_leases_the_case_to_its_creator(open_pg: Opener, spec: yf.Spec) -> None:
    a = open_pg(owner="engine-a", lease_s=60)
    a.create(rec("c1"), spec)
    a.flush()
    owner, left = a.lease_of("c1")
    assert owner == "engine-a"
    assert 50 < left <= 60
    assert a.leased() == ["c1"]
    assert open_pg(owner="engine-b").claim() == []  # leased: nothing to claim


def test_two_engines_claiming_at_once_never_share_a_case(open_pg: Opener, spec: yf.Spec,
                                                         sql: Callable[..., Any]) -> None:
    creator = open_pg(owner="creator")
    ids = [f"case-{n:02d}" for n in range(40)]
    for case in ids:
        creator.create(rec(case), spec)
    creator.close()  # releases every lease: 40 free cases

    engines = [open_pg(owner="engine-a"), open_pg(owner="engine-b")]
    got: list[list[str]] = [[], []]
    last: list[int] = [1, 1]
    rounds = threading.Barrier(2)
    errors: list[BaseException] = []

    def claimer(i: int) -> None:
        rng = random.Random(1000 + i)  # seeded batch sizes: the same interleaving pressure on every run
        try:
            while True:
                rounds.wait()  # both claim in the same round
                claimed = engines[i].claim(limit=rng.randint(1, 4))
                got[i].extend(r.case for r in claimed)
                last[i] = len(claimed)
                rounds.wait()  # both see both results before deciding to stop
                if last == [0, 0]:
                    return
        except BaseException as exc:  # reported below
            errors.append(exc)
            rounds.abort()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(got[0]).isdisjoint(got[1])
    assert sorted(got[0] + got[1]) == ids
    assert len(got[0] + got[1]) == len(ids)  # nobody got a case twice either
    owners = dict(sql("SELECT c.id, l.owner FROM leases l JOIN cases c ON c.key = l.case_key"))
    assert owners == {**dict.fromkeys(got[0], "engine-a"), **dict.fromkeys(got[1], "engine-b")}


def test_claim_takes_a_case_with_its_running_sub_cases(open_pg: Opener, spec: yf.Spec) -> None:
    a = open_pg(owner="engine-a")
    a.create(rec("root"), spec)
    a.create(rec("root/1", parent="root"), spec)
    a.create(rec("root/1/4", parent="root/1"), spec)
    a.create(rec("root/2", parent="root"), spec)
    a.create(rec("orphan-parent"), spec)
    a.create(rec("orphan-parent/3", parent="orphan-parent"), spec)
    a.create(rec("done"), spec)
    a.set_status("root/2", "completed")
    a.set_status("orphan-parent", "failed")
    a.set_status("done", "completed")
    a.close()
    b = open_pg(owner="engine-b")
    first = b.claim(limit=1)
    assert [r.case for r in first] == ["root", "root/1", "root/1/4"]  # one tree, whole; not the ended sub-case
    assert [r.case for r in b.claim()] == ["orphan-parent/3"]  # its parent ended: a tree of its own
    assert b.claim() == []
    assert b.leased() == ["root", "root/1", "root/1/4", "orphan-parent/3"]


def test_a_tree_with_a_sub_case_still_leased_elsewhere_is_not_claimed(open_pg: Opener, spec: yf.Spec) -> None:
    a = open_pg(owner="engine-a", lease_s=60)
    a.create(rec("root"), spec)
    a.create(rec("root/1", parent="root"), spec)
    a.flush()
    a.release(cases=["root"])  # the root is free, its sub-case is not
    b = open_pg(owner="engine-b")
    assert b.claim() == []
    a.release()
    assert [r.case for r in b.claim()] == ["root", "root/1"]


def test_an_expired_lease_is_claimed_and_the_old_owner_is_fenced(open_pg: Opener, spec: yf.Spec) -> None:
    a = open_pg(owner="engine-a")
    a.create(rec("c1"), spec)
    a.create(rec("c2"), spec)
    a.append("c1", ItemStarted(item=0))
    a.flush()
    assert a.renew(ttl_s=0) == 2  # both leases expire now (as if engine-a had stalled)
    b = open_pg(owner="engine-b")
    assert [r.case for r in b.claim(limit=1)] == ["c1"]
    assert b.events("c1") == [ItemStarted(item=0)]
    b.append("c1", ItemStarted(item=1))
    b.flush()

    a.append("c1", ItemStarted(item=99))  # engine-a has not noticed yet: queued, then refused at commit
    a.append("c2", ItemStarted(item=5))  # its other case is still its own: committed in the same round
    with pytest.raises(LeaseLostError, match="case 'c1' is leased to engine 'engine-b'") as caught:
        a.flush()
    assert caught.value.cases == {"c1": "engine-b"}
    a.flush()  # reported once
    with pytest.raises(LeaseLostError, match="case 'c1' is leased to engine 'engine-b'"):
        a.append("c1", ItemStarted(item=100))  # refused at once from now on
    assert b.events("c1") == [ItemStarted(item=0), ItemStarted(item=1)]
    assert a.events("c2") == [ItemStarted(item=5)]
    assert b.verify() == []
    assert b.renew() == 1


def test_fencing_in_inline_mode_raises_from_the_write(open_pg: Opener, spec: yf.Spec) -> None:
    a = open_pg(owner="engine-a", writer="inline")
    a.create(rec("c1"), spec)
    a.renew(ttl_s=0)
    b = open_pg(owner="engine-b")
    assert [r.case for r in b.claim()] == ["c1"]
    with pytest.raises(LeaseLostError, match="case 'c1' is leased to engine 'engine-b'"):
        a.set_status("c1", "cancelled")
    assert b.record("c1").status == "running"


def test_a_case_leased_to_another_engine_is_refused_at_once(open_pg: Opener, spec: yf.Spec) -> None:
    a = open_pg(owner="engine-a")
    a.create(rec("c1"), spec)
    a.flush()
    b = open_pg(owner="engine-b")
    assert b.events("c1") == []  # reading is free
    with pytest.raises(LeaseLostError, match="case 'c1' is leased to engine 'engine-a'") as caught:
        b.append("c1", CaseStarted(case="c1", net="main"))
    assert caught.value.cases == {"c1": "engine-a"}
    with pytest.raises(LeaseLostError):
        b.set_status("c1", "cancelled")


def test_a_write_takes_a_free_lease_unless_the_log_moved_on(open_pg: Opener, spec: yf.Spec) -> None:
    a = open_pg(owner="engine-a")
    a.create(rec("c1"), spec)
    a.create(rec("c2"), spec)
    a.release()
    b = open_pg(owner="engine-b")
    b.append("c1", ItemStarted(item=1))  # free: this write takes it (a stopped engine's case, `cases cancel`)
    b.flush()
    assert b.lease_of("c1")[0] == "engine-b"
    c = open_pg(owner="engine-c")
    assert c.events("c2") == []  # engine-c reads the log of c2 ...
    b.append("c2", ItemStarted(item=2))  # ... engine-b writes it meanwhile, and lets it go
    b.release()
    c.append("c2", ItemStarted(item=3))  # built on an old read: refused, never interleaved
    with pytest.raises(LeaseLostError, match="case 'c2' was written by another engine since this store read it"):
        c.flush()
    assert c.events("c2") == [ItemStarted(item=2)]
    assert [r.case for r in c.claim()] == ["c1", "c2"]  # claiming loads it afresh: writable again
    c.append("c2", ItemStarted(item=3))
    c.flush()
    assert c.events("c2") == [ItemStarted(item=2), ItemStarted(item=3)]
    assert c.verify() == []


def test_renew_extends_the_running_cases_it_still_holds(open_pg: Opener, spec: yf.Spec) -> None:
    a = open_pg(owner="engine-a", lease_s=5)
    for case in ("c1", "c2", "c3"):
        a.create(rec(case), spec)
    a.set_status("c3", "completed")
    a.flush()
    assert a.renew(ttl_s=120) == 2  # the finished case needs no lease
    assert 100 < a.lease_of("c1")[1] <= 120
    assert a.lease_of("c3")[1] <= 5
    a.renew(ttl_s=0)
    b = open_pg(owner="engine-b")
    assert [r.case for r in b.claim()] == ["c1", "c2"]
    assert a.renew() == 0  # lost: nothing to renew, and leased() says so
    assert a.leased() == []
    assert b.leased() == ["c1", "c2"]


def test_release_frees_the_leases_for_another_engine(open_pg: Opener, spec: yf.Spec) -> None:
    a = open_pg(owner="engine-a")
    for case in ("c1", "c2", "c3"):
        a.create(rec(case), spec)
    a.append("c1", ItemStarted(item=1))  # pending: committed before the lease goes
    assert a.release(cases=["c1"]) == 1
    b = open_pg(owner="engine-b")
    assert [r.case for r in b.claim()] == ["c1"]
    assert b.events("c1") == [ItemStarted(item=1)]
    a.close()  # closing releases the rest
    assert [r.case for r in b.claim()] == ["c2", "c3"]
    with pytest.raises(TypeError, match="list of case ids"):
        b.release(cases="c1")


def test_claim_renew_release_act_for_this_store_s_owner_only(open_pg: Opener) -> None:
    a = open_pg(owner="engine-a")
    assert a.claim("engine-a", 10, None) == []
    for call in (lambda: a.claim("engine-b", 10), lambda: a.renew("engine-b", 10), lambda: a.release("engine-b")):
        with pytest.raises(yf.ConfigError, match="writes as engine 'engine-a', not 'engine-b'"):
            call()
    with pytest.raises(yf.ConfigError, match="ttl_s=-1"):
        a.claim(ttl_s=-1)
    with pytest.raises(yf.ConfigError, match="limit=-2"):
        a.claim(limit=-2)
    assert open_pg().owner.startswith("engine-")  # a random id by default
    assert open_pg().owner != open_pg().owner


def test_a_create_that_loses_the_race_for_its_id_is_refused_at_commit(open_pg: Opener, pg_url: str,
                                                                      spec: yf.Spec) -> None:
    import psycopg

    a = open_pg(owner="engine-a")
    parts = urlsplit(pg_url)
    other = psycopg.connect(urlunsplit(parts._replace(query="&".join(
        f"{k}={v}" for k, v in parse_qsl(parts.query) if k != "schema"))))
    try:  # another engine's transaction creates "same", not committed yet: engine-a cannot see it
        other.execute(f'SET search_path TO "{schema_of(pg_url)}"')
        other.execute("INSERT INTO specs VALUES ('\\x00', 'seq', 'data', '\\x00', 0)")
        other.execute("INSERT INTO cases (id, spec_hash, spec_id, net, status, last_seq, last_hash, created_at, "
                      "updated_at) VALUES ('same', '\\x00', 'seq', 'main', 'running', -1, '\\x00', 0, 0)")
        a.create(rec("same"), spec)  # accepted and queued; its commit finds the id taken (or waits to)
        a.append("same", CaseStarted(case="same", net="main"))
        other.commit()
    finally:
        other.close()
    with pytest.raises(CaseExistsError, match="'same' was created by another engine at the same moment") as caught:
        a.flush()
    assert isinstance(caught.value, LeaseLostError) and caught.value.cases == {"same": None}
    with pytest.raises(LeaseLostError):
        a.append("same", ItemStarted(item=1))
    assert a.events("same") == []  # the other engine's case, untouched
    assert a.lease_of("same") == (None, 0.0)


def test_an_engine_on_postgres_resumes_what_another_left(pg_url: str, spec: yf.Spec) -> None:
    async def main() -> tuple[str, Any]:
        async with yf.Engine(store=pg_url) as first:
            first.handlers.register("inc", inc)
            case = await first.start(spec, data={"n": 1})
            await case.idle()
            case_id = case.id
        async with yf.Engine(store=pg_url) as second:
            second.handlers.register("inc", inc)
            assert [c.id for c in await second.resume()] == [case_id]
            again = second.case(case_id)
            item = again.work_items(state="offered")[0]
            await again.complete(item.id, {"ok": True})
            result = await again.result()
        return result.status, result.data

    assert anyio.run(main) == ("completed", {"n": 2, "ok": True})
