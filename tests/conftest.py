"""Suite-wide fixtures: the anyio backends every async test runs on, hypothesis profiles, a SQLite
store file per test, and a PostgreSQL database of the test session's own (when a server is given).

This folder goes on ``sys.path`` (``--import-mode=importlib`` puts nothing there), so that test
modules import the nets and helpers they share from ``kit`` (tests/kit.py)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

BACKENDS: list[Any] = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop"),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Every async test runs on asyncio, asyncio with uvloop, and trio."""
    return request.param


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where a test's SQLite store file lives (``kit.sqlite_url(db)`` is its URL)."""
    return tmp_path / "cases.db"


# -- PostgreSQL (bash .ci/run starts a throwaway server and sets YAWLFLOW_TEST_POSTGRES_URL) ------
PG_ENV = "YAWLFLOW_TEST_POSTGRES_URL"
PG_SKIP = "set YAWLFLOW_TEST_POSTGRES_URL (bash .ci/run starts a server)"


def _pg_server() -> str:
    server = os.environ.get(PG_ENV)
    if not server:
        pytest.skip(PG_SKIP)
    return server


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this test session's own on the server ``YAWLFLOW_TEST_POSTGRES_URL`` names
    (a ``postgresql://`` URL whose user may create databases), dropped at the end; its URL.

    Without that variable, the tests that use it are skipped.
    """
    import psycopg
    from psycopg import sql

    server = _pg_server()
    name = f"yawlflow_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server)._replace(path="/" + name))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """The store URL of a fresh, empty schema of this test's own (``?schema=t_…``), dropped at teardown."""
    import psycopg
    from psycopg import sql

    schema = f"t_{uuid.uuid4().hex[:16]}"
    parts = urlsplit(pg_database)
    yield urlunsplit(parts._replace(query="&".join(q for q in (parts.query, f"schema={schema}") if q)))
    with psycopg.connect(pg_database, autocommit=True) as admin:
        admin.execute("SET lock_timeout = '20s'")
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
