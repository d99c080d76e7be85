"""A multiple-instance task on a pool strategy hands its instances to the scheduler as one batch
(issue 8: fork-join), and each instance keeps its own outcome: one that fails is retried alone,
the others are neither cancelled nor held back; cancelling the case cancels what has not started."""

from __future__ import annotations

import os

import anyio
import engine_handlers
import pytest

import yawlflow as yf

pytestmark = pytest.mark.anyio

SQUARES = """
yawlflow: 1
id: squares
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        run: "engine_handlers:square"
        strategy: {strategy}
        instances: {{items: "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]", as: results}}
        retry: {{attempts: 2, backoff: 1ms}}
        flows: [end]
"""

HOLD = """
yawlflow: 1
id: hold
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: "engine_handlers:hold", strategy: thread, instances: {items: "[0, 1, 2, 3, 4, 5, 6, 7]"}, flows: [end]}
"""

CONFIG = {"handlers": {"allow": ["engine_handlers"]},
          "execution": {"thread": {"workers": 2}, "process": {"workers": 2}}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the strategies themselves are tested on every backend in this folder


@pytest.mark.parametrize("strategy", ["thread", "process"])
async def test_the_instances_go_to_the_pool_as_one_batch_each_with_its_own_outcome(strategy: str) -> None:
    async with yf.Engine(config=CONFIG) as engine:
        result = await (await engine.start(yf.loads(SQUARES.format(strategy=strategy)))).result()
        metrics = engine.metrics()["strategies"][strategy]
    assert result.status == "completed"
    assert [r["square"] for r in result.data["results"]] == [i * i for i in range(16)]
    pids = {r["pid"] for r in result.data["results"]}
    assert (pids == {os.getpid()}) if strategy == "thread" else (os.getpid() not in pids)
    # 16 first attempts in one batch, then item 3's retry alone (its siblings were not cancelled)
    assert metrics["batches"] == 1
    assert metrics["submitted"] == 17 and metrics["completed"] == 16 and metrics["failed"] == 1
    retried = [r for r in result.trace if r["event"] == "item.retried"]
    assert len(retried) == 1 and "item 3 fails" in retried[0]["data"]["error"]


async def test_cancelling_the_case_cancels_the_instances_not_started() -> None:
    engine_handlers.entered.clear()
    engine_handlers.release.clear()
    engine_handlers.calls.clear()
    config = {"handlers": {"allow": ["engine_handlers"]}, "execution": {"thread": {"workers": 1}}}
    try:
        async with yf.Engine(config=config) as engine:
            case = await engine.start(yf.loads(HOLD))
            assert await anyio.to_thread.run_sync(engine_handlers.entered.wait, 30)
            await case.cancel()
            await anyio.wait_all_tasks_blocked()  # the item tasks have taken their cancellation
            metrics = engine.metrics()["strategies"]["thread"]
            engine_handlers.release.set()  # the running one returns; its result is dropped
        # leaving the engine drains its pools: a queued instance not cancelled would run now
        assert case.status == "cancelled"
        assert len(engine_handlers.calls) == 1  # one worker: the other seven never started
        assert metrics["batches"] == 1 and metrics["submitted"] == 8
    finally:
        engine_handlers.release.set()
