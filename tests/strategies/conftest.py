"""Fixtures of the strategy tests: strategies of each kind, shut down after the test, and a
:class:`~strategy_kit.Gate`.

This folder goes on ``sys.path`` (as benches/conftest.py does for its helpers) so that
``strategy_handlers`` is importable by name, in this process and in the worker processes the
``process`` strategy spawns (``spawn`` hands the parent's ``sys.path`` on), and so that the
tests import ``strategy_kit``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from strategy_kit import Gate, make_strategy

from yawlflow._strategy import Strategy


@pytest.fixture
async def strategies() -> AsyncIterator[Callable[..., Any]]:
    """``strategies(kind, workers=1)``: a new strategy, shut down (drain time 0) after the test."""
    made: list[Strategy] = []

    def factory(kind: str, workers: int = 1, seed: int = 0) -> Any:
        s = make_strategy(kind, workers, seed)
        made.append(s)
        return s

    yield factory
    for s in made:
        with anyio.fail_after(20):
            await s.shutdown(0)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path (a Unix socket's path must fit in ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="yf-gate-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def gate(short_dir: Path) -> AsyncIterator[Gate]:
    """A :class:`Gate`; closed after the test (which releases any handler still blocked)."""
    address = str(short_dir / "gate.sock")
    async with anyio.create_task_group() as tg:
        listener = await anyio.create_unix_listener(address)
        g = Gate(address, tg, listener)
        tg.start_soon(g.serve)
        yield g
        await g.close()
        tg.cancel_scope.cancel()
