"""Stores: the event log of every case is the source of truth; state = fold(events).

``memory://`` keeps the log in this process (tests, one-off runs). ``sqlite:///path.db`` is the
embedded durable store (:mod:`yawlflow._sqlite`, ADR 0005); ``postgresql://…`` is shared by several engines
(:mod:`yawlflow._postgres`, case leases). The engine
treats them alike through :class:`Store`: it appends every applied event, snapshots a case's
state when the store asks for one, and awaits :meth:`Store.durable` before an API call returns,
so an acknowledged event is on disk. The in-memory store makes the durability calls free: they
return at once and never yield to the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from ._errors import ConfigError, StoreError
from ._events import Event

__all__ = ("CaseDamagedError", "CaseExistsError", "CaseRecord", "MemoryStore", "Snapshot", "Store", "check_store_url",
           "open_store")


class CaseRecord(msgspec.Struct, kw_only=True):
    """What a store keeps about one case besides its events."""

    case: str
    spec_id: str
    net: str
    status: str = "running"
    tenant: str | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A case's state after its event ``upto_seq``: state = ``state`` + fold(events after it)."""

    upto_seq: int
    state: bytes


class CaseExistsError(StoreError):
    """``create`` was given the id of a case the store already has."""


class CaseDamagedError(StoreError):
    """What the store holds for one case cannot be used (a record missing or undecodable, a spec
    that is not a yawlflow spec, a log the runner refuses): that case is skipped on resume, the
    others go on. A failure to *read* the store is a plain :class:`~yawlflow.StoreError`."""


class Store(Protocol):
    """The protocol every store follows (memory, SQLite, PostgreSQL).

    Writes (``create``, ``append``, ``set_status``, ``snapshot``, ``publish_spec``) return at once;
    they are on disk once :meth:`flush` returns or :meth:`durable` has been awaited after them.
    Reads wait for the writes made before them. ``snapshot_every`` is 0 for a store that keeps no
    snapshots.
    """

    @property
    def snapshot_every(self) -> int:
        """Snapshot a case after this many events (0: the store keeps no snapshots)."""
        ...

    def create(self, record: CaseRecord, spec: Any) -> None:
        """Register a new case (and the spec it runs).

        Raises:
            CaseExistsError: a case with that id exists.
        """
        ...

    def append(self, case: str, event: Event) -> int:
        """Append one event to the case's log; return its seq (0 for the case's first)."""
        ...

    def events(self, case: str, start: int = 0) -> list[Event]:
        """The case's log from seq ``start`` on, oldest first."""
        ...

    def times(self, case: str, start: int = 0) -> list[int]:
        """When each event from seq ``start`` on was appended: wall-clock ns since the Unix epoch.

        One per event of :meth:`events` (same ``start``). The engine's own clock (an event's
        ``at_ns``) is monotonic or virtual; this is the real time, for exports (XES) and people.
        """
        ...

    def set_status(self, case: str, status: str) -> None:
        """Record the case's status."""
        ...

    def record(self, case: str) -> CaseRecord:
        """The record of one case (:class:`~yawlflow.StoreError` if there is none)."""
        ...

    def records(self, status: str | None = None, tenant: str | None = None) -> list[CaseRecord]:
        """Every case, in creation order; only those with ``status`` and/or ``tenant`` when given."""
        ...

    def spec_of(self, case: str) -> Any:
        """The spec a case runs."""
        ...

    def snapshot(self, case: str, state: bytes, upto_seq: int) -> None:
        """Keep the case's encoded state after its event ``upto_seq``."""
        ...

    def publish_spec(self, tenant: str | None, spec: Any) -> None:
        """Publish ``spec`` for ``tenant`` (``None``: every tenant): new cases may start from it.

        Replaces the spec of the same id that ``tenant`` had published. The version is kept as
        :meth:`create` keeps a case's (once, by the hash of its encoding), so a case started
        from it runs that very version. A write like the others: on disk once :meth:`flush`
        returns or :meth:`durable` has been awaited; refused by a read-only store. Published
        specs are not part of a case's provenance chain (``yawlflow verify`` checks the case
        logs; a spec version is named by its content's hash, which anyone can recompute).

        Raises:
            ValueError: ``tenant`` is the empty string.
            StoreError: the spec has no ``id`` or cannot be stored, or the store refuses writes.
        """
        ...

    def published_specs(self, tenant: str | None = None) -> list[tuple[str | None, Any]]:
        """The published specs as ``(tenant, spec)``: every one, or those ``tenant`` may start when given.

        ``tenant`` given: the specs published for it and those published for every tenant
        (``None``); a caller prefers the tenant's own of an id. Sorted by tenant (``None``
        first), then spec id.
        """
        ...

    def latest_snapshot(self, case: str) -> Snapshot | None:
        """The case's latest snapshot, or ``None``."""
        ...

    def needs_snapshot(self, case: str) -> bool:
        """Whether ``snapshot_every`` events have passed since the case's latest snapshot."""
        ...

    def flush(self) -> None:
        """Block until every write made so far is on disk."""
        ...

    async def durable(self) -> None:
        """Wait, without blocking the event loop, until every write made so far is on disk."""
        ...

    def close(self) -> None:
        """Write what is pending and release the store (and its lock)."""
        ...

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        ...


class MemoryStore:
    """The in-memory store: the log lives as long as the store object.

    It keeps no snapshots (a fold of the in-memory log is as fast as decoding one) and has
    nothing to make durable: :meth:`durable`, :meth:`flush` and :meth:`close` cost nothing.
    """

    snapshot_every: int = 0
    """The in-memory store keeps no snapshots."""

    def __init__(self) -> None:
        self._records: dict[str, CaseRecord] = {}
        self._logs: dict[str, list[Event]] = {}
        self._times: dict[str, list[int]] = {}
        self._specs: dict[str, Any] = {}
        self._published: dict[tuple[str | None, str], Any] = {}  # (tenant or None: every tenant, spec id)

    def create(self, record: CaseRecord, spec: Any) -> None:
        """Register a new case.

        Raises:
            CaseExistsError: a case with that id exists.
        """
        if record.case in self._records:
            raise CaseExistsError(f"case {record.case!r} already exists in the store")
        self._records[record.case] = record
        self._logs[record.case] = []
        self._times[record.case] = []
        self._specs[record.case] = spec

    def append(self, case: str, event: Event) -> int:
        """Append one event; return its seq (0 for the case's first).

        Raises:
            StoreError: no such case.
        """
        log = self._log(case)
        log.append(event)
        self._times[case].append(time.time_ns())
        return len(log) - 1

    def _log(self, case: str) -> list[Event]:
        try:
            return self._logs[case]
        except KeyError:
            raise StoreError(f"no case {case!r} in the store") from None

    def events(self, case: str, start: int = 0) -> list[Event]:
        """The case's log from seq ``start`` on.

        Raises:
            StoreError: no such case.
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        return self._log(case)[start:]

    def times(self, case: str, start: int = 0) -> list[int]:
        """When each event from seq ``start`` on was appended (wall-clock ns since the Unix epoch).

        Raises:
            StoreError: no such case.
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, not {start}")
        self._log(case)
        return self._times[case][start:]

    def set_status(self, case: str, status: str) -> None:
        """Record the case's status.

        Raises:
            StoreError: no such case.
        """
        self._log(case)
        self._records[case].status = status

    def record(self, case: str) -> CaseRecord:
        """The record of one case (a copy).

        Raises:
            StoreError: no such case.
        """
        self._log(case)
        r = self._records[case]
        return CaseRecord(case=r.case, spec_id=r.spec_id, net=r.net, status=r.status, tenant=r.tenant,
                          parent=r.parent)

    def records(self, status: str | None = None, tenant: str | None = None) -> list[CaseRecord]:
        """Every case, in creation order; only those with ``status`` and/or ``tenant`` when given."""
        if status is None and tenant is None:
            return list(self._records.values())
        return [r for r in self._records.values()
                if (status is None or r.status == status) and (tenant is None or r.tenant == tenant)]

    def spec_of(self, case: str) -> Any:
        """The spec a case runs.

        Raises:
            StoreError: no such case.
        """
        self._log(case)
        return self._specs[case]

    def snapshot(self, case: str, state: bytes, upto_seq: int) -> None:
        """Nothing: the in-memory store keeps no snapshots (``snapshot_every`` is 0).

        Raises:
            StoreError: no such case.
        """
        self._log(case)

    def publish_spec(self, tenant: str | None, spec: Any) -> None:
        """Publish ``spec`` for ``tenant`` (``None``: every tenant), replacing its spec of that id.

        Raises:
            ValueError: ``tenant`` is the empty string.
            StoreError: the spec has no ``id``.
        """
        self._published[(tenant, published_id(tenant, spec))] = spec

    def published_specs(self, tenant: str | None = None) -> list[tuple[str | None, Any]]:
        """The published specs as ``(tenant, spec)``: every one, or those ``tenant`` may start when given."""
        return [(t, spec) for (t, _), spec in sorted(self._published.items(), key=lambda kv: published_order(kv[0]))
                if tenant is None or t is None or t == tenant]

    def latest_snapshot(self, case: str) -> Snapshot | None:
        """Always ``None``: fold the log from the start.

        Raises:
            StoreError: no such case.
        """
        self._log(case)
        return None

    def needs_snapshot(self, case: str) -> bool:
        """Always ``False``."""
        return False

    def flush(self) -> None:
        """Nothing to write."""

    async def durable(self) -> None:
        """Nothing to wait for: returns at once, without a checkpoint."""

    def close(self) -> None:
        """Nothing to release: the log stays readable (an engine may be entered again)."""

    async def aclose(self) -> None:
        """Nothing to release."""


def published_id(tenant: object, spec: Any) -> str:
    """The id a spec is published under (its ``id``), once ``tenant`` is checked.

    Raises:
        ValueError: ``tenant`` is not ``None`` or a non-empty string.
        StoreError: the spec has no string ``id``.
    """
    if tenant is not None and (not isinstance(tenant, str) or not tenant):
        raise ValueError(f"tenant must be None (every tenant) or a non-empty string, not {tenant!r}")
    spec_id = getattr(spec, "id", None)
    if not isinstance(spec_id, str) or not spec_id:
        raise StoreError(f"a published spec needs an id (a yawlflow.Spec, as yawlflow.load returns), not {spec!r:.80}")
    return spec_id


def published_order(key: tuple[str | None, str]) -> tuple[bool, str, str]:
    """How published specs are listed: those of every tenant first, then by tenant and spec id."""
    tenant, spec_id = key
    return (tenant is not None, tenant or "", spec_id)


def check_store_url(url: object) -> str:
    """Check a store URL without opening anything; return its scheme.

    Raises:
        ConfigError: not a URL of a store this build provides (the message says which ones are).
    """
    if not isinstance(url, str):
        raise ConfigError(f"store must be a URL string such as 'memory://' or 'sqlite:///cases.db', not {url!r}")
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme == "memory":
        return scheme
    if scheme == "sqlite":
        from ._sqlite import _path_of_url

        _path_of_url(url.split("?", 1)[0])
        return scheme
    if scheme in ("postgresql", "postgres"):
        from ._postgres import check_postgres_url

        check_postgres_url(url)  # ConfigError: psycopg missing (says what to install), or a malformed URL
        return scheme
    if not scheme and url.endswith((".db", ".sqlite", ".sqlite3")):
        raise ConfigError(f"store {url!r}: a store is named by a URL: write 'sqlite:///{url}' (relative) or "
                          f"'sqlite:////absolute/{url.lstrip('/')}'")
    raise ConfigError(f"store {url!r}: unknown store URL (use memory://, sqlite:///path.db or postgresql://...)")


def open_store(url: str, *, readonly: bool = False) -> Store:
    """Open the store named by ``url``: ``memory://``, ``sqlite:///path.db`` or ``postgresql://…``.

    Args:
        url: the store's URL; ``sqlite:`` URLs take options as query parameters
            (``?synchronous=NORMAL&snapshot_every=500``, see :func:`yawlflow._sqlite.open_sqlite_url`),
            and so do ``postgresql:`` ones, beside libpq's (:func:`yawlflow._postgres.open_postgres_url`).
        readonly: open a durable store for reading only, without its writer's lock (tools beside a
            running engine); every write then raises.

    Raises:
        ConfigError: the URL names no store this build provides, or a bad option.
        StoreError: the store cannot be opened (locked by another engine, not a store, the server
            unreachable, ...); the message names the file or database and the fix.
    """
    scheme = check_store_url(url)
    if scheme == "memory":
        return MemoryStore()
    if scheme in ("postgresql", "postgres"):
        from ._postgres import open_postgres_url

        return open_postgres_url(url, readonly=readonly)
    from ._sqlite import open_sqlite_url

    store = open_sqlite_url(url, readonly=readonly)
    return store
