"""The engine runs handlers on the strategy its configuration names (issue 8): the engine's
default `execution.strategy`, a task's own `strategy:`; a crashed worker process fails the item
with a retryable error, so the task's `retry` runs it again on a fresh worker."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import yawlflow as yf

pytestmark = pytest.mark.anyio

SPEC = """
yawlflow: 1
id: placed
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: "engine_handlers:where", flows: [b]}
      b: {run: "engine_handlers:where", strategy: process, flows: [end]}
"""

CRASH = """
yawlflow: 1
id: crash
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: "engine_handlers:crash_first", strategy: process, retry: {attempts: 2, backoff: 1ms}, flows: [end]}
"""

CONFIG = {"handlers": {"allow": ["engine_handlers"]}, "execution": {"strategy": "thread", "thread": {"workers": 2},
                                                                  "process": {"workers": 1}}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the strategies themselves are tested on every backend in this folder


async def test_the_engines_strategy_and_a_tasks_own_place_each_item() -> None:
    seen: list[dict[str, object]] = []

    async with yf.Engine(config=CONFIG) as engine:
        engine.hooks.add("after_item_complete", lambda e: seen.append(dict(e.data or {})))
        case = await engine.start(yf.loads(SPEC))
        result = await case.result()
        metrics = engine.metrics()["strategies"]
    assert result.status == "completed"
    on_thread, on_process = seen
    assert on_thread["pid"] == os.getpid() and on_thread["thread"] != threading.main_thread().name
    assert on_process["pid"] != os.getpid()  # a worker process
    assert on_process["key"] == f"{case.id}/1"  # the item context crossed the boundary
    assert metrics["thread"]["completed"] == 1 and metrics["process"]["completed"] == 1


async def test_a_crashed_worker_fails_the_attempt_and_the_retry_runs_on_a_fresh_one() -> None:
    async with yf.Engine(config=CONFIG) as engine:
        result = await (await engine.start(yf.loads(CRASH))).result()
    assert result.status == "completed"
    [retried] = [r for r in result.trace if r["event"] == "item.retried"]
    assert "WorkerCrashedError" in retried["data"]["error"]
    assert result.data == {"attempt": 2}


@pytest.mark.parametrize("strategy", ["inline", "thread", "process"])
async def test_switching_the_strategy_in_yawlflow_yaml_changes_what_runs_the_items(
    strategy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one line of configuration and a restart, no code change (issue 8): the metrics say who ran them
    config = tmp_path / "yawlflow.yaml"
    config.write_text(f"handlers: {{allow: [engine_handlers]}}\nexecution: {{strategy: {strategy}}}\n")
    monkeypatch.setenv("YAWLFLOW_CONFIG", str(config))
    spec = yf.loads(SPEC.replace("strategy: process, ", ""))  # no task of its own: the engine's default
    async with yf.Engine() as engine:
        result = await (await engine.start(spec)).result()
        metrics = engine.metrics()["strategies"]
    assert result.status == "completed"
    assert set(metrics) == {strategy} and metrics[strategy]["completed"] == 2
    assert metrics[strategy]["submitted"] == 2 and metrics[strategy]["running"] == 0
    pids = {r["data"].get("pid") for r in result.trace if r["event"] == "item.completed"}
    assert (os.getpid() in pids) == (strategy != "process")
