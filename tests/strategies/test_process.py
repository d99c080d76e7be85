"""What only the ``process`` strategy does: crashes, names, what crosses the process boundary."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pytest
import strategy_handlers as h
from strategy_kit import make_job

from yawlflow import ConfigError
from yawlflow._strategies import ProcessStrategy, RemoteHandlerError, RemoteTraceback, WorkerCrashedError
from yawlflow._strategy import Job

pytestmark = pytest.mark.anyio

# the loop's side of ``process`` is the thread strategy's (run on every backend by
# test_behaviours.py); what is only the process strategy's runs on asyncio alone, except crashes
asyncio_only = pytest.mark.parametrize("anyio_backend", [pytest.param(("asyncio", {}), id="asyncio")])


@pytest.mark.parametrize(("handler", "args", "how"), [
    ("crash", (3,), "exit code 3"),
    ("kill_self", (), "killed by signal SIGKILL"),
])
async def test_a_crashed_worker_fails_its_job_clearly_and_is_replaced(
        strategies: Callable[..., Any], handler: str, args: tuple[Any, ...], how: str) -> None:
    s = strategies("process")
    before = await s.submit(make_job("process", "pid"))
    job = make_job("process", handler, *args)
    with pytest.raises(WorkerCrashedError) as caught:
        await s.submit(job)
    err = caught.value
    assert err.retryable is True and err.pid == before and err.job_id == job.id
    assert f"died while running job {job.id} (handler 'strategy_handlers:{handler}'): {how}" in str(err)
    assert "may be retried" in str(err) and "replaced by a fresh process" in str(err)
    after = await s.submit(make_job("process", "pid"))
    assert after != before, "the next job ran in a fresh process"
    assert await s.submit(make_job("process", "add", 2, 2)) == 4
    m = s.metrics()
    assert (m.completed, m.failed, m.running) == (3, 1, 0)


def test_a_worker_crashed_error_survives_pickling() -> None:
    err = WorkerCrashedError("died", pid=12, exitcode=-9, handler="m:f", job_id=3)
    back = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert (type(back), str(back), back.pid, back.exitcode, back.handler, back.job_id, back.retryable) == (
        WorkerCrashedError, "died", 12, -9, "m:f", 3, True)


@asyncio_only
async def test_what_is_not_importable_by_name_is_refused_with_the_fix(strategies: Callable[..., Any]) -> None:
    s = strategies("process")

    def closure(x: int) -> int:
        return x

    cases: list[tuple[Job, str]] = [
        (Job(id=901, handler="double", fn=lambda x: 2 * x), "is not importable by name"),
        (Job(id=902, handler="double", fn=closure), "is not importable by name"),
        (Job(id=903, handler="strategy_handlers:add", fn=closure), "imports as <function add"),
        (Job(id=904, handler="no_such_module:f"), "'no_such_module:f' cannot be imported"),
        (Job(id=905, handler="strategy_handlers:nope"), "'strategy_handlers:nope' cannot be imported"),
        (Job(id=906, handler="double"), "it is not a 'module:function' name and no function was given"),
    ]
    for job, why in cases:
        with pytest.raises(ConfigError, match=r"^process strategy: handler .* cannot run in a worker process: ") as e:
            await s.submit(job)
        assert why in str(e.value), str(e.value)
        assert "use a module-level function named 'module:function'" in str(e.value)
        assert "or run this task with strategy: thread" in str(e.value)
    assert s.metrics().submitted == 0, "a refused job is never queued"


@asyncio_only
async def test_a_registered_name_of_a_module_level_function_runs(strategies: Callable[..., Any]) -> None:
    s = strategies("process")
    assert await s.submit(Job(id=911, handler="adder", fn=h.add, args=(20, 22))) == 42


@asyncio_only
async def test_arguments_that_cannot_cross_are_refused(strategies: Callable[..., Any]) -> None:
    s = strategies("process")
    with pytest.raises(ConfigError, match=r"its arguments cannot be sent to a worker process .* pass plain data"):
        await s.submit(make_job("process", "echo", object()))


@asyncio_only
async def test_plain_data_crosses_and_comes_back_as_plain_data(strategies: Callable[..., Any]) -> None:
    s = strategies("process")
    assert await s.submit(make_job("process", "echo", (1, 2), {"a": [1.5, None, True]}, "x")) == [
        [1, 2], {"a": [1.5, None, True]}, "x"]  # a tuple arrives as a list


@asyncio_only
async def test_a_return_value_that_cannot_cross_fails_with_the_fix(strategies: Callable[..., Any]) -> None:
    s = strategies("process")
    with pytest.raises(ConfigError, match=r"returned a object, which cannot be sent back .* return plain data"):
        await s.submit(make_job("process", "returns_object"))


@asyncio_only
async def test_what_an_exception_keeps_across_the_boundary(strategies: Callable[..., Any]) -> None:
    s = strategies("process")
    with pytest.raises(ValueError, match=r"^plain$") as plain:
        await s.submit(make_job("process", "fail_value", "plain"))
    assert isinstance(plain.value.__cause__, RemoteTraceback) and "fail_value" in str(plain.value.__cause__)
    with pytest.raises(RemoteHandlerError) as odd:
        await s.submit(make_job("process", "fail_unpicklable", "no pickle"))
    assert odd.value.type_name == "strategy_handlers.Unpicklable"
    assert "raised strategy_handlers.Unpicklable: no pickle" in str(odd.value)
    assert "in fail_unpicklable" in odd.value.remote_traceback


@asyncio_only
async def test_an_async_handler_runs_in_the_worker_on_its_own_loop(strategies: Callable[..., Any]) -> None:
    s = strategies("process")
    assert await s.submit(Job(id=921, handler="strategy_handlers:add_async", fn=h.add_async, args=(1, 2))) == 3


@asyncio_only
async def test_jobs_spread_over_the_worker_processes() -> None:
    async with ProcessStrategy(workers=2, seed=1) as s:
        jobs = [Job(id=930 + i, handler="strategy_handlers:pid", fn=h.pid) for i in range(2)]
        jobs += [Job(id=940 + i, handler="strategy_handlers:burn", fn=h.burn, args=(20_000,)) for i in range(40)]
        values = await s.submit_many(jobs)
        assert values[2:] == [h.burn(20_000)] * 40
        m = s.metrics()
        assert (m.submitted, m.completed, m.running, m.queue_depth) == (42, 42, 0, 0)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"^execution\.process\.workers must be a whole number >= 1, not 0$"):
        ProcessStrategy(workers=0)
    with pytest.raises(ConfigError, match=r"start_method must be 'spawn' or 'forkserver' .*, not 'fork'"):
        ProcessStrategy(workers=1, start_method="fork")  # type: ignore[arg-type]


@asyncio_only
async def test_the_spawn_start_method_works_and_replaces_a_crashed_worker() -> None:
    async with ProcessStrategy(workers=1, start_method="spawn") as s:
        assert await s.submit(make_job("process", "add", 3, 4)) == 7
        with pytest.raises(WorkerCrashedError, match="exit code 5"):
            await s.submit(make_job("process", "crash", 5))
        assert await s.submit(make_job("process", "add", 1, 1)) == 2
