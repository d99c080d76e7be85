"""The store contract: what every store (memory, SQLite, PostgreSQL) does the same way.

Each test runs against every store below. A store-specific behaviour belongs in that store's own
tests, not here. The PostgreSQL runs need a server (``YAWLFLOW_TEST_POSTGRES_URL``; ``bash .ci/run``
starts one) and skip without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kit import rec

import yawlflow as yf
from yawlflow._events import (
    CaseCancelRequested,
    CaseStarted,
    Event,
    ForceCompleteRequested,
    InstanceAdded,
    ItemCancelRequested,
    ItemCompleted,
    ItemFailed,
    ItemStarted,
    SignalForwarded,
    SignalReceived,
    TimerFired,
)
from yawlflow._postgres import PostgresStore, open_postgres_url
from yawlflow._sqlite import SqliteStore
from yawlflow._store import CaseRecord, MemoryStore

Store = MemoryStore | SqliteStore | PostgresStore


@pytest.fixture(params=["memory", "sqlite-thread", "sqlite-inline", "postgres-thread", "postgres-inline"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which store the test runs against."""
    return str(request.param)


@pytest.fixture
def reopen(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
    """Open the store under test; calling it again closes and reopens the same file (or database).

    The in-memory store has nothing to reopen: it returns the same object. Each PostgreSQL store
    is a new engine (a new lease owner) on the test's own schema.
    """
    current: list[Store] = []
    pg_url = request.getfixturevalue("pg_url") if kind.startswith("postgres") else ""

    def opener() -> Store:
        if kind == "memory":
            if not current:
                current.append(MemoryStore())
            return current[0]
        if current:
            old = current.pop()
            assert isinstance(old, SqliteStore | PostgresStore)
            old.close()
        writer = "thread" if kind.endswith("-thread") else "inline"
        store: Store
        if kind.startswith("postgres"):
            store = open_postgres_url(f"{pg_url}&writer={writer}")
        else:
            store = SqliteStore(tmp_path / "contract.db", writer=writer)
        current.append(store)
        return store

    yield opener
    for store in current:
        if isinstance(store, SqliteStore | PostgresStore):
            store.close()


@pytest.fixture
def store(reopen: Callable[[], Store]) -> Store:
    """The store under test, empty."""
    return reopen()


def every_kind(case: str) -> list[Event]:
    """One event of every kind, with every field set away from its default."""
    return [
        CaseStarted(case=case, net="main", data={"n": 1, "s": "x", "l": [1, 2], "d": {"k": None}}, seed=7,
                    flags=3, parent="p", at_ns=10),
        ItemStarted(item=1, at_ns=11),
        ItemCompleted(item=1, output={"ok": True, "f": 1.5}, at_ns=12),
        ItemCompleted(item=2, output=None, at_ns=13),
        ItemFailed(item=3, error="boom", error_type="ValueError", at_ns=14),
        ItemCancelRequested(item=4, at_ns=15),
        SignalReceived(signal="paid", data={"ref": "x1"}, persistent=False, keep=True, at_ns=16),
        SignalForwarded(signal="paid", at_ns=17),
        TimerFired(item=5, purpose="timeout", at_ns=18),
        InstanceAdded(task="review", data={"item": 4}, at_ns=19),
        ForceCompleteRequested(task="review", at_ns=20),
        CaseCancelRequested(at_ns=21),
    ]


def test_a_new_store_has_no_cases(store: Store) -> None:
    assert store.records() == []


def test_create_registers_the_case_running(store: Store, spec: yf.Spec) -> None:
    store.create(rec("c1", tenant="acme", parent=None), spec)
    store.create(rec("c1/3", parent="c1"), spec)
    assert store.records() == [
        CaseRecord(case="c1", spec_id="seq", net="main", status="running", tenant="acme", parent=None),
        CaseRecord(case="c1/3", spec_id="seq", net="main", status="running", tenant=None, parent="c1"),
    ]
    assert store.events("c1") == []


def test_records_come_in_creation_order(store: Store, spec: yf.Spec) -> None:
    ids = ["m", "b", "z", "a", "k"]
    for case in ids:
        store.create(rec(case), spec)
    assert [r.case for r in store.records()] == ids


def test_a_duplicate_case_is_refused_and_changes_nothing(store: Store, spec: yf.Spec, other_spec: yf.Spec) -> None:
    store.create(rec("c1", tenant="a"), spec)
    store.append("c1", CaseStarted(case="c1", net="main"))
    with pytest.raises(yf.StoreError, match="'c1' already exists"):
        store.create(rec("c1", tenant="b"), other_spec)
    assert store.records() == [rec("c1", tenant="a")]
    assert store.spec_of("c1") == spec
    assert store.events("c1") == [CaseStarted(case="c1", net="main")]


def test_events_come_back_in_order_and_equal(store: Store, spec: yf.Spec) -> None:
    store.create(rec("c1"), spec)
    events = every_kind("c1")
    for event in events:
        store.append("c1", event)
    assert store.events("c1") == events


def test_logs_of_cases_are_independent(store: Store, spec: yf.Spec) -> None:
    for case in ("a", "b", "c"):
        store.create(rec(case), spec)
    for i in range(5):
        for case in ("a", "b", "c"):
            if case != "b" or i % 2:
                store.append(case, ItemCompleted(item=i, output={"case": case}))
    assert [e.item for e in store.events("a")] == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    assert [e.item for e in store.events("b")] == [1, 3]  # type: ignore[union-attr]
    assert all(e.output == {"case": "c"} for e in store.events("c"))  # type: ignore[union-attr]


def test_events_returns_a_copy(store: Store, spec: yf.Spec) -> None:
    store.create(rec("c1"), spec)
    store.append("c1", ItemStarted(item=1))
    got = store.events("c1")
    got.append(ItemStarted(item=2))
    got.clear()
    assert store.events("c1") == [ItemStarted(item=1)]


def test_events_of_an_unknown_case_is_a_store_error(store: Store) -> None:
    with pytest.raises(yf.StoreError, match="no case 'nope'"):
        store.events("nope")


def test_set_status_shows_in_records(store: Store, spec: yf.Spec) -> None:
    store.create(rec("a"), spec)
    store.create(rec("b"), spec)
    store.set_status("a", "suspended")
    store.set_status("a", "completed")
    assert [(r.case, r.status) for r in store.records()] == [("a", "completed"), ("b", "running")]


def test_spec_of_gives_the_spec_each_case_runs(store: Store, spec: yf.Spec, other_spec: yf.Spec) -> None:
    store.create(rec("old"), spec)
    store.create(rec("new"), other_spec)
    assert store.spec_of("old") == spec
    assert store.spec_of("new") == other_spec
    assert store.spec_of("old") is spec  # in the process that created it: the very object


def test_a_case_can_be_appended_to_after_it_finished(store: Store, spec: yf.Spec) -> None:
    # Late results are dropped by the engine, not refused by the store: the store keeps what it is given.
    store.create(rec("c1"), spec)
    store.append("c1", CaseCancelRequested())
    store.set_status("c1", "cancelled")
    store.append("c1", ItemCompleted(item=1))
    assert len(store.events("c1")) == 2


def test_what_was_stored_is_there_after_reopening(reopen: Callable[[], Store], spec: yf.Spec) -> None:
    store = reopen()
    store.create(rec("c1", tenant="t"), spec)
    for event in every_kind("c1"):
        store.append("c1", event)
    store.set_status("c1", "failed")
    store = reopen()
    assert store.records() == [rec("c1", tenant="t", status="failed")]
    assert store.events("c1") == every_kind("c1")
    assert store.spec_of("c1") == spec
    store.append("c1", ItemStarted(item=9))
    assert store.events("c1")[-1] == ItemStarted(item=9)


def test_append_returns_the_seq(store: Store, spec: yf.Spec) -> None:
    store.create(rec("a"), spec)
    store.create(rec("b"), spec)
    assert [store.append("a", ItemStarted(item=i)) for i in range(3)] == [0, 1, 2]  # type: ignore[func-returns-value]
    assert store.append("b", ItemStarted(item=0)) == 0  # type: ignore[func-returns-value]


def test_append_to_an_unknown_case_is_a_store_error(store: Store) -> None:
    with pytest.raises(yf.StoreError, match="no case 'nope'"):
        store.append("nope", ItemStarted(item=1))


def test_set_status_of_an_unknown_case_is_a_store_error(store: Store) -> None:
    with pytest.raises(yf.StoreError, match="no case 'nope'"):
        store.set_status("nope", "completed")


def test_spec_of_an_unknown_case_is_a_store_error(store: Store) -> None:
    with pytest.raises(yf.StoreError, match="no case 'nope'"):
        store.spec_of("nope")


# -- published specs ----------------------------------------------------------------------------


def test_published_specs_are_kept_per_tenant(store: Store, spec: yf.Spec, other_spec: yf.Spec) -> None:
    assert store.published_specs() == []
    store.publish_spec("b", other_spec)
    store.publish_spec(None, spec)
    store.publish_spec("a", spec)
    assert store.published_specs() == [(None, spec), ("a", spec), ("b", other_spec)]
    assert store.published_specs("a") == [(None, spec), ("a", spec)]  # its own and every tenant's
    assert store.published_specs("b") == [(None, spec), ("b", other_spec)]
    assert store.published_specs("c") == [(None, spec)]  # never another tenant's


def test_publishing_replaces_the_tenant_s_spec_of_that_id(store: Store, spec: yf.Spec,
                                                          other_spec: yf.Spec) -> None:
    store.publish_spec("a", spec)
    store.publish_spec("b", spec)
    store.publish_spec(None, spec)
    store.publish_spec("a", other_spec)
    store.publish_spec(None, other_spec)
    assert store.published_specs() == [(None, other_spec), ("a", other_spec), ("b", spec)]
    store.publish_spec("a", spec)  # and back: a version is kept once, named by its hash
    assert store.published_specs("a") == [(None, other_spec), ("a", spec)]


def test_published_specs_are_there_after_reopening(reopen: Callable[[], Store], spec: yf.Spec,
                                                   other_spec: yf.Spec) -> None:
    store = reopen()
    store.publish_spec("a", spec)
    store.publish_spec(None, other_spec)
    store.create(rec("c1", tenant="a"), spec)  # a case of the published version shares its row
    store = reopen()
    assert store.published_specs() == [(None, other_spec), ("a", spec)]
    assert store.spec_of("c1") == spec
    store.publish_spec("a", other_spec)
    store = reopen()
    assert store.published_specs("a") == [(None, other_spec), ("a", other_spec)]
    assert store.spec_of("c1") == spec  # a case keeps its own version


def test_publishing_gives_the_very_spec_back_in_this_process(store: Store, spec: yf.Spec) -> None:
    store.publish_spec("a", spec)
    [(_, got)] = store.published_specs()
    assert got is spec


def test_publishing_refuses_an_empty_tenant_and_a_spec_without_an_id(store: Store, spec: yf.Spec) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        store.publish_spec("", spec)
    with pytest.raises(yf.StoreError, match="needs an id"):
        store.publish_spec("a", {"nets": {}})
    assert store.published_specs() == []
