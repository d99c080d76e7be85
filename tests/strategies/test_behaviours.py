"""One suite of handler behaviours — return, raise, block, cancel, time out, batches, shutdown —
under every strategy (inline, thread, process on asyncio, uvloop and trio; ray, on the session's
Ray cluster, on asyncio only: see ``strategy_kit.EVERY_KIND``).

Where a behaviour differs by strategy, the test says how: a cancelled ``inline`` job is
cancelled where it awaits, a ``process`` job's worker is killed (its socket to the gate closes),
a ``thread`` job is abandoned (it runs on until released, and its result is dropped), a ``ray``
task is cancelled by force (its worker is killed, as a ``process`` job's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from strategy_handlers import HandlerError
from strategy_kit import EVERY_KIND, Gate, make_job

from yawlflow import ConfigError
from yawlflow._strategies import JobCancelledError, RemoteTraceback
from yawlflow._strategy import Strategy

pytestmark = pytest.mark.anyio

POOLS = ["thread", "process"]
# inline, thread and process on every backend; ray on asyncio (see strategy_kit.EVERY_KIND)
every_kind = pytest.mark.parametrize(("anyio_backend", "kind"), EVERY_KIND)


@every_kind
async def test_a_handler_returns_a_value(strategies: Callable[..., Any], kind: str) -> None:
    s = strategies(kind)
    assert isinstance(s, Strategy)
    assert await s.submit(make_job(kind, "add", 2, 3)) == 5
    m = s.metrics()
    assert (m.submitted, m.completed, m.failed, m.running, m.queue_depth) == (1, 1, 0, 0, 0)
    assert m.mean_s > 0 and m.p99_s > 0


@every_kind
async def test_a_handler_raises_and_the_caller_gets_the_exception_with_its_type(
        strategies: Callable[..., Any], kind: str) -> None:
    s = strategies(kind)
    # ray: the worker's traceback comes as a note, which pytest matches along with the message
    with pytest.raises(HandlerError, match=r"^boom\n" if kind == "ray" else r"^boom$") as caught:
        await s.submit(make_job(kind, "fail", "boom"))
    assert str(caught.value) == "boom"
    assert caught.value.code == 42, "attributes survive (pickled across a process boundary)"
    if kind == "process":  # the child's traceback is the cause
        assert isinstance(caught.value.__cause__, RemoteTraceback)
        assert "in fail" in str(caught.value.__cause__)
    if kind == "ray":  # the worker's traceback is a note
        assert any("raised in a Ray worker" in n and "in fail" in n for n in caught.value.__notes__)
    m = s.metrics()
    assert (m.submitted, m.completed, m.failed) == (1, 0, 1)


@every_kind
async def test_a_blocked_handler_returns_once_released(strategies: Callable[..., Any], gate: Gate, kind: str) -> None:
    s = strategies(kind)
    results: list[Any] = []

    async def run() -> None:
        results.append(await s.submit(make_job(kind, "gate", gate.address)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        arrival = await gate.arrive()
        assert s.metrics().running == 1 and not results
        await arrival.release()
    assert results == ["released"]
    assert s.metrics().completed == 1


async def _stopped_or_abandoned(s: Any, kind: str, gate: Gate, follow_up_pid: bool = True) -> None:
    """After a running gate job was cancelled: ``inline``, ``process`` and ``ray`` jobs are gone (their
    socket closes); a ``thread`` job still runs, is released, and its result is dropped. A
    follow-up job then runs on the single worker (``process``: a fresh process)."""
    arrival = gate.arrivals[-1]
    if kind == "thread":
        assert s.metrics().running == 1, "an abandoned thread job runs on"
        await arrival.release()
    else:
        assert await arrival.stopped()
    if kind == "process" and follow_up_pid:
        assert await s.submit(make_job(kind, "pid")) != arrival.pid, "the killed worker was replaced"
    else:
        assert await s.submit(make_job(kind, "add", 1, 1)) == 2
    m = s.metrics()
    assert (m.running, m.queue_depth, m.completed, m.failed) == (0, 0, 1, 1), m


@every_kind
async def test_cancelling_the_awaiting_task_stops_or_abandons_a_running_job(
        strategies: Callable[..., Any], gate: Gate, kind: str) -> None:
    s = strategies(kind)
    outcome: list[str] = []

    async def run(scope: anyio.CancelScope) -> None:
        with scope:
            await s.submit(make_job(kind, "gate", gate.address))
            outcome.append("returned")
        outcome.append("cancelled" if scope.cancelled_caught else "?")

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run, scope)
        await gate.arrive()
        scope.cancel()
    assert outcome == ["cancelled"]
    await _stopped_or_abandoned(s, kind, gate)


@every_kind
async def test_cancel_by_id_makes_the_awaiting_task_raise_job_cancelled(
        strategies: Callable[..., Any], gate: Gate, kind: str) -> None:
    s = strategies(kind)
    job = make_job(kind, "gate", gate.address)
    errors: list[BaseException] = []

    async def run() -> None:
        try:
            await s.submit(job)
        except JobCancelledError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await gate.arrive()
        assert s.cancel(job.id) is True
    assert len(errors) == 1 and f"job {job.id}" in str(errors[0])
    assert s.cancel(job.id) is False, "a finished job cannot be cancelled"
    assert s.cancel(10**9) is False, "nor an unknown one"
    await _stopped_or_abandoned(s, kind, gate)


@pytest.mark.parametrize("kind", POOLS)
async def test_a_pending_job_that_is_cancelled_never_starts(
        strategies: Callable[..., Any], gate: Gate, kind: str) -> None:
    s = strategies(kind)  # one worker: the first job holds it, the second waits
    scope = anyio.CancelScope()
    first: list[Any] = []

    async def hold() -> None:
        first.append(await s.submit(make_job(kind, "gate", gate.address)))

    async def queued() -> None:
        with scope:
            await s.submit(make_job(kind, "gate", gate.address))

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        arrival = await gate.arrive()
        tg.start_soon(queued)
        await anyio.wait_all_tasks_blocked()
        assert s.metrics().queue_depth == 1
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        assert s.metrics().queue_depth == 0
        await arrival.release()
    assert first == ["released"] and scope.cancelled_caught
    assert await s.submit(make_job(kind, "add", 1, 2)) == 3  # runs after the cancelled one would have
    await s.shutdown()  # drain: anything still queued would run now
    assert len(gate.arrivals) == 1, "the cancelled job never reached the gate"
    m = s.metrics()
    assert (m.submitted, m.completed, m.failed, m.queue_depth, m.running) == (3, 2, 1, 0, 0)


@every_kind
async def test_a_timeout_around_submit_cancels_the_job(strategies: Callable[..., Any], gate: Gate, kind: str) -> None:
    s = strategies(kind)
    timed_out: list[BaseException] = []
    scopes: list[anyio.CancelScope] = []

    async def run() -> None:
        try:
            with anyio.fail_after(math.inf) as scope:  # its deadline is set once the job runs
                scopes.append(scope)
                await s.submit(make_job(kind, "gate", gate.address))
        except TimeoutError as exc:
            timed_out.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await gate.arrive()
        scopes[0].deadline = anyio.current_time() + 0.01
    assert len(timed_out) == 1
    await _stopped_or_abandoned(s, kind, gate)


@every_kind
async def test_a_batch_returns_values_in_order(strategies: Callable[..., Any], kind: str) -> None:
    s = strategies(kind, workers=2)
    jobs = [make_job(kind, "add", i, i) for i in range(40)]
    assert await s.submit_many(jobs) == [2 * i for i in range(40)]
    assert await s.submit_many([]) == []
    m = s.metrics()
    assert (m.submitted, m.completed, m.failed) == (40, 40, 0)


@every_kind
async def test_a_batch_raises_its_first_error_and_cancels_the_rest(
        strategies: Callable[..., Any], gate: Gate, kind: str) -> None:
    s = strategies(kind, workers=2)
    errors: list[BaseException] = []

    async def run() -> None:
        try:
            await s.submit_many([make_job(kind, "gate", gate.address, "hold"),
                                 make_job(kind, "gate_then_fail", gate.address, "bad")])
        except HandlerError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        arrivals = {a.tag: a for a in [await gate.arrive(), await gate.arrive()]}
        await arrivals["fail"].release()  # the second job raises while the first still runs
    assert [str(e) for e in errors] == ["bad"]
    if kind == "thread":  # the first job was abandoned: it returns once released, its result dropped
        await arrivals["hold"].release()
    else:  # cancelled: its task, or its worker process, is gone
        assert await arrivals["hold"].stopped()
    await s.shutdown()
    m = s.metrics()
    assert (m.submitted, m.completed, m.failed, m.running, m.queue_depth) == (2, 0, 2, 0, 0), m


@every_kind
async def test_shutdown_drains_running_jobs_then_refuses_new_ones(
        strategies: Callable[..., Any], gate: Gate, kind: str) -> None:
    s = strategies(kind)
    results: list[Any] = []

    async def run() -> None:
        results.append(await s.submit(make_job(kind, "gate", gate.address)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        arrival = await gate.arrive()
        tg.start_soon(s.shutdown)  # drain as long as it takes
        await anyio.wait_all_tasks_blocked()
        assert not results, "shutdown waits for the running job"
        await arrival.release()
    assert results == ["released"]
    with pytest.raises(ConfigError, match=f"the {kind} strategy is shut down"):
        await s.submit(make_job(kind, "add", 1, 1))
    await s.shutdown()  # idempotent


@every_kind
async def test_shutdown_cancels_what_is_left_when_the_drain_time_is_over(
        strategies: Callable[..., Any], gate: Gate, kind: str) -> None:
    s = strategies(kind)
    errors: list[BaseException] = []

    async def run(name: str) -> None:
        try:
            await s.submit(make_job(kind, name, gate.address) if name == "gate" else make_job(kind, "add", 1, 2))
        except JobCancelledError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "gate")
        await gate.arrive()
        # a second job queues behind the first (inline has no queue; ray has none of its own: a
        # job with a free CPU runs at once, and may or may not end within the drain time)
        if kind not in ("inline", "ray"):
            tg.start_soon(run, "add")
            await anyio.wait_all_tasks_blocked()
        await s.shutdown(drain_s=0.05)
    assert len(errors) == (1 if kind in ("inline", "ray") else 2), errors
    assert all("cancelled" in str(e) for e in errors)
    if kind == "thread":
        await gate.arrivals[0].release()  # the abandoned thread returns; its result is dropped
    else:
        assert await gate.arrivals[0].stopped()
