"""Fixtures of the strategy tests: strategies of each kind, shut down after the test, and a
:class:`~strategy_kit.Gate`.

This folder goes on ``sys.path`` (as benches/conftest.py does for its helpers) so that
``strategy_handlers`` is importable by name, in this process and in the worker processes the
``process`` strategy spawns (``spawn`` hands the parent's ``sys.path`` on), and so that the
tests import ``strategy_kit``.

``ray_cluster`` is the one local Ray of the session, for test_ray.py and for the ``ray`` kind of
test_behaviours.py: it starts once (3-6 s), 2 CPUs, no dashboard, usage stats off, its session
folder under the test session's tmp folder (or a short one under /tmp when that path is too long
for Ray's sockets), no token auth (it would write ~/.ray/auth_token), on the loopback interface.
Its workers get this folder on their PYTHONPATH, so ``ray_handlers`` and ``strategy_handlers``
are importable by name there.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategy_kit import Gate, make_strategy

from yawlflow._strategy import Strategy

HERE = Path(__file__).resolve().parent
_SOCKET_ROOM = 48  # Ray adds ~60 bytes (session_<date>_<pid>/sockets/plasma_store) to its temp dir
_NO_RAY = "Ray is not installed here (pip install 'yawlflow[ray]'); .ci/run installs it"


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local Ray for the session (see the module docstring); the ``ray`` module."""
    ray = pytest.importorskip("ray", reason=_NO_RAY)
    temp = tmp_path_factory.mktemp("ray")
    short = len(str(temp)) <= _SOCKET_ROOM
    temp_dir = str(temp) if short else tempfile.mkdtemp(dir="/tmp", prefix="yf-ray-")
    pythonpath = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        # no token auth: it would write ~/.ray/auth_token; the cluster listens on loopback only
        mp.setenv("RAY_AUTH_MODE", "disabled")
        mp.syspath_prepend(str(HERE))  # the driver unpickles the handlers' exceptions
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _temp_dir=temp_dir,
            _node_ip_address="127.0.0.1",
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
        )
        try:
            yield ray
        finally:
            ray.shutdown()
            if not short:
                shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
async def strategies(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Any]]:
    """``strategies(kind, workers=1)``: a new strategy, shut down (drain time 0) after the test
    (``ray``: on the session's cluster, ``ray_cluster``)."""
    made: list[Strategy] = []
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("kind") == "ray":
        request.getfixturevalue("ray_cluster")  # before the test (ray.init blocks)

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
