"""Stores: the event log of every case is the source of truth; state = fold(events).

``memory://`` keeps the log in this process (tests, one-off runs). The durable stores (SQLite,
PostgreSQL) implement the same protocol.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from ._errors import ConfigError, StoreError
from ._events import Event

__all__ = ("CaseRecord", "MemoryStore", "Store", "open_store")


class CaseRecord(msgspec.Struct, kw_only=True):
    """What a store keeps about one case besides its events."""

    case: str
    spec_id: str
    net: str
    status: str = "running"
    tenant: str | None = None
    parent: str | None = None


class Store(Protocol):
    """The protocol every store follows."""

    def create(self, record: CaseRecord, spec: Any) -> None:
        """Register a new case (and the spec it runs)."""
        ...

    def append(self, case: str, event: Event) -> int:
        """Append one event to the case's log (durably, for durable stores); return its seq."""
        ...

    def events(self, case: str) -> list[Event]:
        """The case's log, oldest first."""
        ...

    def set_status(self, case: str, status: str) -> None:
        """Record the case's status."""
        ...

    def records(self) -> list[CaseRecord]:
        """Every case, in creation order."""
        ...

    def spec_of(self, case: str) -> Any:
        """The spec a case runs."""
        ...


class MemoryStore:
    """The in-memory store: the log lives as long as the store object."""

    def __init__(self) -> None:
        self._records: dict[str, CaseRecord] = {}
        self._logs: dict[str, list[Event]] = {}
        self._specs: dict[str, Any] = {}

    def create(self, record: CaseRecord, spec: Any) -> None:
        """Register a new case.

        Raises:
            StoreError: a case with that id exists.
        """
        if record.case in self._records:
            raise StoreError(f"case {record.case!r} already exists in the store")
        self._records[record.case] = record
        self._logs[record.case] = []
        self._specs[record.case] = spec

    def append(self, case: str, event: Event) -> int:
        """Append one event; return its seq (0 for the case's first).

        Raises:
            StoreError: no such case.
        """
        log = self._log(case)
        log.append(event)
        return len(log) - 1

    def _log(self, case: str) -> list[Event]:
        try:
            return self._logs[case]
        except KeyError:
            raise StoreError(f"no case {case!r} in the store") from None

    def events(self, case: str) -> list[Event]:
        """The case's log.

        Raises:
            StoreError: no such case.
        """
        return list(self._log(case))

    def set_status(self, case: str, status: str) -> None:
        """Record the case's status.

        Raises:
            StoreError: no such case.
        """
        self._log(case)
        self._records[case].status = status

    def records(self) -> list[CaseRecord]:
        """Every case, in creation order."""
        return list(self._records.values())

    def spec_of(self, case: str) -> Any:
        """The spec a case runs.

        Raises:
            StoreError: no such case.
        """
        self._log(case)
        return self._specs[case]


def open_store(url: str) -> Store:
    """Open the store named by ``url``.

    Raises:
        ConfigError: the URL names no store this build provides.
    """
    if not isinstance(url, str):
        raise ConfigError(f"store must be a URL string such as 'memory://', not {url!r}")
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme == "memory":
        return MemoryStore()
    if scheme in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            f"store {url!r}: the {scheme} store is not part of this release yet; use 'memory://' "
            "(durable stores arrive with yawlflow's durable-cases work)"
        )
    raise ConfigError(f"store {url!r}: unknown store URL (use memory://, sqlite:///path.db or postgresql://...)")
