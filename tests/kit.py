"""Nets and helpers that several test modules share, each one the same in all of them.

``tests/conftest.py`` puts this folder on ``sys.path`` (pytest's ``--import-mode=importlib``
puts nothing there), so a test module imports them by name: ``from kit import NESTED_WITH_EXTERNALS,
inc``. A net that only one module runs, or that differs in any way from these, stays in its module:
a test's net is part of what it tests.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import yawlflow as yf
from yawlflow._store import CaseRecord
from yawlflow.cli import main

# -- nets ------------------------------------------------------------------------------------------

AUTO_THEN_EXTERNAL = """
yawlflow: 1
id: seq
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, flows: [b]}
      b: {external: true, flows: [end]}
"""
"""A sequence: the auto step ``a`` (``inc``), then the external step ``b``; spec id ``seq``."""

AUTO_EXTERNAL_AUTO = """
yawlflow: 1
id: ext
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, flows: [b]}
      b: {external: true, flows: [c]}
      c: {run: inc, flows: [end]}
"""
"""A sequence: the auto step ``a`` (``inc``), the external step ``b``, the auto step ``c`` (``inc``)."""

APPROVE_OR_EXPIRE = """
yawlflow: 1
id: timed
nets:
  main:
    input: start
    output: end
    conditions:
      wait: {flows: [approve, expire]}
    tasks:
      a: {flows: [wait]}
      approve: {external: true, flows: [end]}
      expire: {timer: {after: 10s}, flows: [end]}
"""
"""A deferred choice after the empty task ``a``: the external ``approve`` or the timer ``expire``
(10 s), whichever comes first."""

NESTED_WITH_EXTERNALS = """
yawlflow: 1
id: nested
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, split: and, flows: [sub, b]}
      sub: {net: inner, flows: [c]}
      b: {external: true, flows: [c]}
      c: {join: and, run: inc, flows: [end]}
  inner:
    input: s
    output: t
    tasks:
      x: {run: inc, flows: [y]}
      y: {external: true, flows: [z]}
      z: {run: inc, flows: [t]}
"""
"""A sub-net beside an external step: ``a`` (``inc``) splits into the composite ``sub`` (the net
``inner``: ``x`` (``inc``), the external ``y``, ``z`` (``inc``)) and the external ``b``; the
AND-join ``c`` (``inc``) ends the case."""


def inc(data: dict[str, Any]) -> dict[str, Any]:
    """The handler ``inc``: adds 1 to ``n`` (0 when absent)."""
    return {"n": data.get("n", 0) + 1}


def rec(case: str, **fields: Any) -> CaseRecord:
    """A store's record of the case ``case`` of ``AUTO_THEN_EXTERNAL`` (spec ``seq``, net ``main``)."""
    return CaseRecord(case=case, spec_id="seq", net="main", **fields)


# -- the CLI ---------------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``yawlflow ARGV`` in this process: its exit code, stdout and stderr (never a traceback)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# -- SQLite store files ----------------------------------------------------------------------------


def sqlite_url(db: Path) -> str:
    """The store URL of the SQLite file ``db`` (the suite's ``db`` fixture names one)."""
    return f"sqlite:///{db}"


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` of a file."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def downgrade_to_schema_2(path: Path) -> None:
    """Make a store's file what schema 2 was: no published table, schema_version 2."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TABLE published")  # and its index
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        conn.execute("DELETE FROM meta WHERE key = 'migration.3'")
    finally:
        conn.close()


def downgrade_to_schema_1(path: Path) -> None:
    """Make a store's file what release 1 wrote: no wall_ns column, schema_version 1."""
    downgrade_to_schema_2(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("ALTER TABLE events DROP COLUMN wall_ns")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        conn.execute("DELETE FROM meta WHERE key = 'migration.2'")
    finally:
        conn.close()


def faulty_connection(log: list[str] | None = None) -> type[Any]:
    """A sqlite3.Connection class whose Nth execute raises, once ``arm(N)`` is called (or its
    ``countdown`` set to N); ``fired`` says whether it did.

    ``log`` (if given) receives every statement executed.
    """

    class Faulty(sqlite3.Connection):
        countdown: int | None = None
        fired = False

        @classmethod
        def arm(cls, n: int | None) -> None:
            cls.countdown = n
            cls.fired = False

        def _tick(self, sql: str) -> None:
            if log is not None:
                log.append(" ".join(sql.split()))
            cls = type(self)
            if cls.countdown is not None:
                cls.countdown -= 1
                if cls.countdown == 0:
                    cls.countdown = None
                    cls.fired = True
                    raise sqlite3.OperationalError(f"injected fault at: {sql.split()[0]}")

        def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
            self._tick(sql)
            return super().execute(sql, parameters)

        def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
            self._tick(sql)
            return super().executemany(sql, parameters)

    return Faulty


S = TypeVar("S")


@contextlib.contextmanager
def closing_stores(open_one: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """``open_one`` (which opens a store), noting what it opens; on leaving, each store it opened
    is closed, newest first, a ``StoreError`` from ``close`` ignored. For store-opening fixtures."""
    opened: list[Any] = []

    def opener(*args: Any, **options: Any) -> S:
        store = open_one(*args, **options)
        opened.append(store)
        return store

    yield opener
    for store in reversed(opened):
        with contextlib.suppress(yf.StoreError):
            store.close()
