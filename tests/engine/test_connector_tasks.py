"""Connectors in the engine (issue 7): a task with ``run: {connector: NAME, config: {...}}`` calls
the engine's connector host — config validated against the connector's ``Config``, the
idempotency key passed through, the connector's verdict (``retryable``) deciding the item's
retries, one breaker per connector shared by every task, cancellation reaching an in-flight call,
``reconcile`` asked for an in-doubt item on resume, ``close()`` when the engine stops."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

import yawlflow as yf
from yawlflow.connectors import CircuitOpenError, ConnectorConfigError, Health

pytestmark = pytest.mark.anyio


def spec(config: str = "{greeting: hi}", retry: str = "", connector: str = "echo") -> yf.Spec:
    return yf.loads(f"""
yawlflow: 1
id: conn
nets:
  main:
    input: start
    output: end
    tasks:
      call: {{run: {{connector: {connector}, config: {config}}}, {retry} flows: [end]}}
""")


class Echo:
    """Answers with its config and the item's context; counts calls; can be told to fail."""

    class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
        greeting: str

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail: list[BaseException] = []
        self.closed = False
        self.done: dict[str, dict[str, Any]] = {}

    async def call(self, config: Config, input: Mapping[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        self.calls.append((ctx.idempotency_key, ctx.attempt))
        if self.fail:
            raise self.fail.pop(0)
        out = {"said": config.greeting, "key": ctx.idempotency_key}
        self.done[ctx.idempotency_key] = out
        return out

    async def health(self) -> Health:
        return Health(ok=True)

    async def reconcile(self, key: str) -> dict[str, Any] | None:
        return self.done.get(key)

    async def close(self) -> None:
        self.closed = True


async def test_a_connector_task_calls_its_connector_with_the_validated_config_and_the_key() -> None:
    echo = Echo()
    async with yf.Engine(connectors={"echo": echo}) as engine:
        case = await engine.start(spec())
        result = await case.result()
    assert result.status == "completed"
    assert result.data == {"said": "hi", "key": f"{case.id}/0"}
    assert echo.calls == [(f"{case.id}/0", 1)]
    assert echo.closed  # the engine closed its connectors when it stopped


async def test_a_bad_config_for_an_engine_connector_fails_the_item_naming_the_element() -> None:
    async with yf.Engine(connectors={"echo": Echo()}) as engine:
        case = await engine.start(spec("{greting: hi}", "retry: {attempts: 3},"))
        result = await case.result()
    assert result.status == "failed"
    [failed] = [r for r in result.trace if r["event"] == "item.failed"]
    assert "$.nets.main.tasks.call.run.config" in failed["data"]["error"]
    assert "greting" in failed["data"]["error"]
    assert not [r for r in result.trace if r["event"] == "item.retried"]  # a config cannot get better


async def test_an_unknown_connector_fails_the_item_with_a_clear_message() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(spec(connector="nosuch"))
        result = await case.result()
    assert result.status == "failed"
    assert "no connector named 'nosuch'" in (result.error or "")


async def test_the_connectors_verdict_decides_whether_the_item_is_retried() -> None:
    echo = Echo()
    echo.fail = [yf.ConnectorError("503 from downstream", retryable=True, connector="echo"),
                 yf.ConnectorError("404: no such order", retryable=False, connector="echo")]
    async with yf.Engine(connectors={"echo": echo}, seed=1) as engine:
        case = await engine.start(spec(retry="retry: {attempts: 5, backoff: 1ms},"))
        result = await case.result()
    assert result.status == "failed"
    events = [r["event"] for r in result.trace if r["item"] == 0]
    assert events == ["item.enabled", "item.started", "item.retried", "item.failed"]
    assert [attempt for _key, attempt in echo.calls] == [1, 2]
    assert "404: no such order" in (result.error or "")


async def test_one_breaker_per_connector_is_shared_by_every_case() -> None:
    echo = Echo()
    config = {"connectors": {"echo": {"breaker": {"window": 2, "min_calls": 2, "failure_rate": 1.0,
                                                  "cool_down": "1h"}}}}
    echo.fail = [ConnectionResetError("reset"), ConnectionResetError("reset")]
    async with yf.Engine(connectors={"echo": echo}, config=config) as engine:
        failed = [await (await engine.start(spec())).result() for _ in range(2)]
        third = await (await engine.start(spec())).result()
    assert [r.status for r in failed] == ["failed", "failed"]
    assert third.status == "failed" and CircuitOpenError.__name__ in (third.error or "")
    assert len(echo.calls) == 2  # the open breaker let the third call nowhere near the connector


async def test_cancelling_a_case_cancels_its_in_flight_connector_call() -> None:
    entered = anyio.Event()
    cancelled: list[bool] = []

    class Stuck(Echo):
        async def call(self, config: Echo.Config, input: Mapping[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
            entered.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                cancelled.append(True)
                raise
            return {}

    async with yf.Engine(connectors={"echo": Stuck()}) as engine:
        case = await engine.start(spec())
        await entered.wait()
        await case.cancel()
        await anyio.wait_all_tasks_blocked()
        assert cancelled == [True]
        assert (await case.result()).status == "cancelled"


async def test_an_in_doubt_connector_item_is_reconciled_on_resume(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    entered = anyio.Event()

    class Lost(Echo):
        async def call(self, config: Echo.Config, input: Mapping[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
            self.done[ctx.idempotency_key] = {"said": "done before the crash"}  # the effect took place ...
            entered.set()
            await anyio.sleep_forever()  # ... but the engine stops before hearing of it
            return {}

    lost = Lost()
    async with yf.Engine(store=store, connectors={"echo": lost}) as engine:
        case = await engine.start(spec())
        await entered.wait()
    echo = Echo()
    echo.done = dict(lost.done)  # the downstream remembers
    async with yf.Engine(store=store, connectors={"echo": echo}) as engine:
        [resumed] = await engine.resume()
        result = await resumed.result()
    assert result.case_id == case.id and result.status == "completed"
    assert result.data == {"said": "done before the crash"}
    assert echo.calls == []  # reconciled, not called again


def test_a_bad_connector_policy_in_the_engine_config_is_refused_naming_it() -> None:
    with pytest.raises(ConnectorConfigError, match=r"config\.connectors\.echo\.retry: attempts is 0"):
        yf.Engine(config={"connectors": {"echo": {"retry": {"attempts": 0}}}})


async def test_the_bulkhead_never_exceeds_its_limit_under_1000_concurrent_items() -> None:
    class Gauge(Echo):
        class Config(msgspec.Struct, frozen=True):
            pass

        def __init__(self) -> None:
            super().__init__()
            self.now = self.peak = 0
            self.full = anyio.Event()  # calls wait until 16 are in at once: more would show in the peak

        async def call(self, config: Any, input: Mapping[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
            self.now += 1
            self.peak = max(self.peak, self.now)
            if self.now >= 16:
                self.full.set()
            await self.full.wait()
            for _ in range(3):  # let the other items' tasks run meanwhile
                await anyio.lowlevel.checkpoint()
            self.now -= 1
            return {}

    gauge = Gauge()
    many = yf.loads("""
yawlflow: 1
id: many
nets:
  main:
    input: start
    output: end
    tasks:
      call: {run: {connector: gauge}, instances: {count: 1000}, flows: [end]}
""")
    config = {"connectors": {"gauge": {"bulkhead": {"max_concurrent": 16, "queue": 1000}}}}
    async with yf.Engine(connectors={"gauge": gauge}, config=config) as engine:
        result = await (await engine.start(many)).result()
    assert result.status == "completed"
    assert sum(1 for r in result.trace if r["event"] == "item.completed" and r["instance"] is not None) == 1000
    assert gauge.peak == 16
