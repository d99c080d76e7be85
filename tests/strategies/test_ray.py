"""The ``ray`` strategy (yawlflow._ray) on one local Ray cluster for the whole session.

The cluster is ``ray_cluster`` in conftest.py (shared with test_behaviours.py): it starts once
(3-6 s), and its workers get this folder on their PYTHONPATH, so the handlers in
``ray_handlers.py`` are importable by name.
A handler that must be running before the test acts on it writes a file; the test waits for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from yawlflow._errors import ConfigError
from yawlflow._strategy import Job, Strategy

ray = pytest.importorskip("ray", reason="Ray is not installed here (pip install 'yawlflow[ray]'); .ci/run installs it")

from yawlflow._ray import (  # noqa: E402  (after the skip: without Ray these tests do not run)
    RayHandlerError,
    RayJobCancelledError,
    RayStrategy,
    RayWorkerDiedError,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.fixture
async def tasks(ray_cluster: Any) -> AsyncIterator[RayStrategy]:
    """Ray tasks, cancelled without killing their worker (a new worker takes ~2 s to start here):
    the handlers they cancel (``spin``) return to Python often. ``test_cancelling_...`` forces."""
    strategy = RayStrategy(force_cancel=False)
    yield strategy
    await strategy.shutdown(drain_s=0)


@pytest.fixture(scope="session")
def actor_pool(ray_cluster: Any) -> Iterator[RayStrategy]:
    """Two actors for the session (each is a worker process: ~2 s to start here)."""
    strategy = RayStrategy(mode="actor", actors=2)
    yield strategy
    anyio.run(strategy.shutdown, 0)


@pytest.fixture
def actors(actor_pool: RayStrategy) -> RayStrategy:
    assert actor_pool.metrics().running == 0
    return actor_pool


class CancelSpy:
    """Records ``ray.cancel`` calls (the refs, to check them afterwards) and makes them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        real = ray.cancel

        def cancel(ref: Any, **kwargs: Any) -> None:
            self.calls.append((ref, kwargs))
            real(ref, **kwargs)

        monkeypatch.setattr(ray, "cancel", cancel)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> CancelSpy:
    return CancelSpy(monkeypatch)


_ids = iter(range(1, 1 << 30))


def job(handler: str, *args: Any) -> Job:
    return Job(id=next(_ids), handler=f"ray_handlers:{handler}" if ":" not in handler else handler, args=args)


def start_flag(folder: Path) -> Path:
    """A named pipe a handler writes to when it starts (the write blocks until :func:`started` reads)."""
    flag = folder / "started"
    os.mkfifo(flag)
    return flag


async def started(path: Path) -> None:
    """Wait until a handler says it started: read its named pipe (``start_flag``), no polling."""
    with anyio.fail_after(60):
        await anyio.to_thread.run_sync(path.read_text, abandon_on_cancel=True)


async def cancelled_in_ray(ref: Any) -> BaseException:
    """What Ray says about a cancelled ref (got in a thread: ``ray.get`` blocks)."""
    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)) as info:
        await anyio.to_thread.run_sync(lambda: ray.get(ref, timeout=60))
    return info.value


# -- without a cluster --------------------------------------------------------------------------


def test_importing_yawlflow_does_not_import_ray() -> None:
    code = "import sys, yawlflow, yawlflow._ray; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


async def test_missing_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    strategy = RayStrategy()
    install = r"^strategy 'ray' needs Ray, which is not installed .*: pip install 'yawlflow\[ray\]'$"
    with pytest.raises(ConfigError, match=install):
        await strategy.submit(job("echo", 1))


def test_is_a_strategy_and_checks_its_arguments() -> None:
    assert isinstance(RayStrategy(), Strategy)
    assert RayStrategy.name == "ray"
    with pytest.raises(ConfigError, match="unknown mode 'actors'"):
        RayStrategy(mode="actors")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="actors must be a positive integer"):
        RayStrategy(mode="actor", actors=0)


async def test_a_handler_without_a_module_name_is_refused_before_ray() -> None:
    strategy = RayStrategy()  # never started: the name is checked first
    with pytest.raises(ConfigError, match=r"handler 'charge_card' is not a 'module:function' name"):
        await strategy.submit(Job(id=1, handler="charge_card"))

    def nested() -> None: ...

    with pytest.raises(ConfigError, match=r"a nested function or lambda, .*: move it to module level$"):
        await strategy.submit(Job(id=2, handler="tests:nested", fn=nested))
    assert strategy.metrics().submitted == 0


# -- tasks ------------------------------------------------------------------------------------------


async def test_return(tasks: RayStrategy) -> None:
    assert await tasks.submit(job("echo", {"n": 1})) == {"n": 1}
    assert await tasks.submit(job("aecho", [1, 2])) == [1, 2]
    assert await tasks.submit(job("operator:add", 2, 3)) == 5
    m = tasks.metrics()
    assert (m.submitted, m.completed, m.failed, m.running, m.queue_depth, m.stolen) == (3, 3, 0, 0, 0, 0)
    assert 0 < m.mean_s <= m.p99_s


async def test_raise_comes_back_as_its_class(tasks: RayStrategy) -> None:
    import ray_handlers

    with pytest.raises(ray_handlers.HandlerFailed, match=r"^card declined\n") as info:
        await tasks.submit(job("fail", "card declined"))
    assert any("raised in a Ray worker" in note and "HandlerFailed: card declined" in note
               for note in info.value.__notes__)
    assert tasks.metrics().failed == 1


async def test_an_unpicklable_error_comes_back_with_its_last_line(tasks: RayStrategy) -> None:
    with pytest.raises(RayHandlerError, match=r"raised 'ValueError: bad lock' in the Ray worker") as info:
        await tasks.submit(job("fail_unpicklable", "bad lock"))
    assert info.value.type_name == "ValueError"
    assert "ValueError: bad lock" in info.value.remote_traceback


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        ("ray_handlers:missing", "AttributeError"),
        ("no_such_module_here:run", "ModuleNotFoundError"),
    ],
)
async def test_a_handler_not_importable_by_name_is_refused(tasks: RayStrategy, handler: str, reason: str) -> None:
    refused = rf"^handler '{handler}' is not importable by name in the Ray worker .*{reason}"
    with pytest.raises(ConfigError, match=refused):
        await tasks.submit(job(handler))
    with pytest.raises(ConfigError, match=r"names a int, not a function"):
        await tasks.submit(job("not_callable"))


@pytest.mark.parametrize("force", [True, False])
async def test_cancelling_the_awaiting_task_cancels_the_ray_task(
    ray_cluster: Any, spy: CancelSpy, tmp_path: Path, force: bool
) -> None:
    strategy = RayStrategy() if force else RayStrategy(force_cancel=False)  # forced by default
    flag = start_flag(tmp_path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(strategy.submit, job("block" if force else "spin", str(flag)))
        await started(flag)
        tg.cancel_scope.cancel()
    [(ref, kwargs)] = spy.calls
    assert kwargs == {"force": force}
    error = await cancelled_in_ray(ref)
    if not force:
        assert isinstance(error, ray.exceptions.TaskCancelledError)  # interrupted, its worker kept
    m = strategy.metrics()
    assert (m.running, m.failed, m.completed) == (0, 1, 0)
    await strategy.shutdown()


async def test_time_out(tasks: RayStrategy, spy: CancelSpy, tmp_path: Path) -> None:
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.5):
            await tasks.submit(job("spin", str(tmp_path / "started")))
    [(ref, _)] = spy.calls
    await cancelled_in_ray(ref)


async def test_cancel_by_id(tasks: RayStrategy, tmp_path: Path) -> None:
    flag = start_flag(tmp_path)
    blocking = job("spin", str(flag))
    async with anyio.create_task_group() as tg:

        async def submit() -> None:
            cancelled = rf"^job {blocking.id} \(handler 'ray_handlers:spin'\) was cancelled$"
            with pytest.raises(RayJobCancelledError, match=cancelled):
                await tasks.submit(blocking)

        tg.start_soon(submit)
        await started(flag)
        assert tasks.cancel(blocking.id)
    assert not tasks.cancel(blocking.id)


async def test_a_worker_that_dies_fails_the_job_retryably(tasks: RayStrategy) -> None:
    with pytest.raises(RayWorkerDiedError, match=r"the Ray worker running it died \(WorkerCrashedError\)") as info:
        await tasks.submit(job("die"))
    assert info.value.retryable
    assert await tasks.submit(job("echo", "next")) == "next"


async def test_submit_many_keeps_the_order(tasks: RayStrategy) -> None:
    assert await tasks.submit_many([job("echo", i) for i in range(24)]) == list(range(24))
    assert await tasks.submit_many([]) == []


async def test_submit_many_raises_the_first_error_and_cancels_the_rest(
    tasks: RayStrategy, spy: CancelSpy, tmp_path: Path
) -> None:
    import ray_handlers

    with pytest.raises(ray_handlers.HandlerFailed, match=r"^no\n"):
        await tasks.submit_many([job("spin", str(tmp_path / "started")), job("fail", "no")])
    [(ref, _)] = spy.calls
    await cancelled_in_ray(ref)
    assert tasks.metrics().running == 0


async def test_shutdown_drains_then_cancels_and_keeps_a_ray_it_did_not_start(
    tasks: RayStrategy, tmp_path: Path
) -> None:
    flag = start_flag(tmp_path)
    blocking = job("spin", str(flag))
    async with anyio.create_task_group() as tg:

        async def submit() -> None:
            with pytest.raises(RayJobCancelledError):
                await tasks.submit(blocking)

        tg.start_soon(submit)
        await started(flag)
        await tasks.shutdown(drain_s=0.1)
    assert not tasks.owns_ray
    assert ray.is_initialized()  # the session's Ray: not the strategy's to stop
    with pytest.raises(ConfigError, match="the ray strategy is shut down"):
        await tasks.submit(job("echo", 1))
    await tasks.shutdown()  # idempotent


# -- actors -----------------------------------------------------------------------------------------


async def test_actor_mode_runs_on_the_pool(actors: RayStrategy) -> None:
    import ray_handlers

    before = actors.metrics()
    pids = await actors.submit_many([job("pid", i) for i in range(8)])
    assert len(set(pids)) == 2, "jobs go to the least-loaded actor, ties in turn"
    assert await actors.submit(job("aecho", "a")) == "a"
    with pytest.raises(ray_handlers.HandlerFailed, match=r"^actor\n"):
        await actors.submit(job("fail", "actor"))
    with pytest.raises(ConfigError, match="not importable by name"):
        await actors.submit(job("missing"))
    m = actors.metrics()
    assert (m.submitted - before.submitted, m.completed - before.completed, m.failed - before.failed) == (11, 9, 2)
    assert m.running == 0


async def test_actor_mode_cancels_on_the_actor(actors: RayStrategy, spy: CancelSpy, tmp_path: Path) -> None:
    flag = start_flag(tmp_path)
    async with anyio.create_task_group() as tg:
        tg.start_soon(actors.submit, job("ablock", str(flag)))
        await started(flag)
        tg.cancel_scope.cancel()
    [(ref, kwargs)] = spy.calls
    assert kwargs == {}  # actor tasks are never forced
    assert isinstance(await cancelled_in_ray(ref), ray.exceptions.TaskCancelledError)


async def test_actor_mode_an_actor_that_dies_fails_the_job_retryably(actors: RayStrategy) -> None:
    with pytest.raises(RayWorkerDiedError, match=r"the Ray actor running it died") as info:
        await actors.submit(job("die"))
    assert info.value.retryable
    assert await actors.submit_many([job("echo", i) for i in range(4)]) == [0, 1, 2, 3]  # restarted


# -- a Ray of its own -----------------------------------------------------------------------------


def test_a_ray_it_starts_is_shut_down_with_it(ray_cluster: Any) -> None:
    """In a process of its own: the strategy starts a local Ray (in the folder it is given), runs
    on it, and shuts it down. (``ray_cluster`` for its environment: the auth token, no usage stats.)"""
    temp_dir = tempfile.mkdtemp(dir="/tmp", prefix="yf-ray-own-")
    script = textwrap.dedent(f"""
        import anyio, os, ray
        from yawlflow._ray import RayStrategy
        from yawlflow._strategy import Job

        async def main():
            strategy = RayStrategy(temp_dir={temp_dir!r}, init_kwargs={{"num_cpus": 1}})
            assert await strategy.submit(Job(id=1, handler="operator:mul", args=(6, 7))) == 42
            assert strategy.owns_ray and ray.is_initialized()
            await strategy.shutdown()
            assert not ray.is_initialized()
            assert any(p.startswith("session_") for p in os.listdir({temp_dir!r}))
            print("ok")

        anyio.run(main)
    """)
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_a_ray_started_by_a_process_that_ignores_sigint_still_interrupts_a_cancelled_task(ray_cluster: Any,
                                                                                        tmp_path: Path) -> None:
    """A program started in the background by a shell script ignores SIGINT, and so do the Ray
    workers it starts; Ray interrupts a task as Ctrl-C would, which Python then drops. The task
    restores Python's handler, so ``force_cancel=False`` still interrupts it."""
    temp_dir = tempfile.mkdtemp(dir="/tmp", prefix="yf-ray-ign-")
    flag = start_flag(tmp_path)
    pythonpath = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    script = textwrap.dedent(f"""
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell's background job starts

        from pathlib import Path

        import anyio
        from yawlflow._ray import RayStrategy
        from yawlflow._strategy import Job

        async def main():
            strategy = RayStrategy(temp_dir={temp_dir!r}, force_cancel=False, init_kwargs={{
                "num_cpus": 1, "include_dashboard": False, "_node_ip_address": "127.0.0.1",
                "runtime_env": {{"env_vars": {{"PYTHONPATH": {pythonpath!r}}}}}}})
            spin = Job(id=1, handler="ray_handlers:spin", args=({str(flag)!r},))
            async with anyio.create_task_group() as tg:
                tg.start_soon(strategy.submit, spin)
                await anyio.to_thread.run_sync(Path({str(flag)!r}).read_text)  # the spin has started
                tg.cancel_scope.cancel()
            # the one CPU is free again only if the spin was interrupted: this job runs
            with anyio.fail_after(60):
                assert await strategy.submit(Job(id=2, handler="operator:mul", args=(6, 7))) == 42
            await strategy.shutdown()
            print("ok")

        anyio.run(main)
    """)
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                              timeout=100, check=False)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
