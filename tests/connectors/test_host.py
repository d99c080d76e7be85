"""The connector host: instances and their pool hooks, shared guards, health checks, policy layers."""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import pytest

import yawlflow as yf
from yawlflow.connectors import (
    CircuitOpenError,
    ConnectorConfigError,
    ConnectorHost,
    Health,
    Policy,
    Registry,
    parse_policy,
)
from yawlflow.connectors.testing import ScriptedConnector, item_context
from yawlflow.testing import FakeClock

pytestmark = pytest.mark.anyio

FLAKY = yf.ConnectorError("503", retryable=True)


class Defaults(ScriptedConnector):
    """A connector with a default policy of its own."""

    policy: ClassVar[dict[str, Any]] = {"timeout": "5s", "retry": {"attempts": 2, "backoff": "1s"}, "breaker": None}


def registry_with(**connectors: Any) -> Registry:
    registry = Registry(discover=False)
    for name, connector in connectors.items():
        registry.register(name, connector)
    return registry


async def test_one_instance_per_name_opened_once_and_closed_with_the_host(clock: FakeClock) -> None:
    made: list[ScriptedConnector] = []

    class Counting(ScriptedConnector):
        def __init__(self, **settings: Any) -> None:
            super().__init__()
            self.settings = settings
            made.append(self)

    host = ConnectorHost(registry=registry_with(db=Counting), clock=clock,
                         config={"db": {"settings": {"dsn": "sqlite://"}}})
    async with host:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(host.call, "db", {}, {}, item_context())
        assert len(made) == 1 and made[0].opened == 1 and len(made[0].calls) == 5
        assert made[0].settings == {"dsn": "sqlite://"}
        assert made[0].closed == 0
    assert made[0].closed == 1


async def test_settings_the_class_refuses_name_the_place(clock: FakeClock) -> None:
    host = ConnectorHost(registry=registry_with(db=ScriptedConnector), clock=clock,
                         config={"db": {"settings": {"dsn": "x"}}})
    async with host:
        with pytest.raises(ConnectorConfigError, match=r"^config\.connectors\.db\.settings: ScriptedConnector\(\) "
                                                       r"refused them: .*unexpected keyword argument 'dsn'"):
            await host.call("db", {}, {}, item_context())


async def test_a_host_must_be_open() -> None:
    host = ConnectorHost(registry=registry_with(db=ScriptedConnector))
    with pytest.raises(yf.ConfigError, match="not open: use `async with ConnectorHost"):
        await host.call("db", {}, {}, item_context())


def test_a_bad_policy_in_the_configuration_is_refused_at_once() -> None:
    with pytest.raises(ConnectorConfigError, match=r"^config\.connectors\.db\.retry\.atempts: unknown field"):
        ConnectorHost(config={"db": {"retry": {"atempts": 3}}})
    with pytest.raises(yf.ConfigError, match=r"^config\.connectors\.db: expected a mapping"):
        ConnectorHost(config={"db": 3})


async def test_policy_layers_class_then_configuration_then_task(clock: FakeClock) -> None:
    host = ConnectorHost(registry=registry_with(db=Defaults), clock=clock,
                         config={"db": {"retry": {"backoff": "2s"}, "bulkhead": {"max_concurrent": 3}}})
    p = host.policy("db", {"retry": {"attempts": 4}}, "$.nets.main.tasks.t.run.policy")
    assert p.timeout == 5.0                                   # the class's
    assert (p.retry.attempts, p.retry.backoff) == (4, 2.0)    # the task's, the configuration's
    assert p.breaker is None and p.bulkhead is not None and p.bulkhead.max_concurrent == 3
    with pytest.raises(ConnectorConfigError, match=r"^\$\.p\.bulkhead: bulkhead is shared by every task that uses "
                                                   r"the connector \(set it in the engine configuration: connectors: "
                                                   r"\{db: \{bulkhead: \.\.\.\}\}\)"):
        host.policy("db", {"bulkhead": {"max_concurrent": 1}}, "$.p")


async def test_the_breaker_is_shared_by_every_call_to_a_name(clock: FakeClock) -> None:
    changes: list[tuple[str, str, str]] = []
    connector = ScriptedConnector(default=FLAKY, clock=clock)
    host = ConnectorHost(registry=registry_with(api=connector), clock=clock,
                         config={"api": {"breaker": {"window": 2, "min_calls": 2, "failure_rate": 1.0}}},
                         on_breaker_change=lambda name, old, new, why: changes.append((name, old, new)))
    async with host:
        for task in ("a", "b"):
            with pytest.raises(yf.ConnectorError, match="503"):
                await host.call("api", {}, {}, item_context(task=task))
        with pytest.raises(CircuitOpenError, match=r"circuit open: 2 of the last 2 calls failed"):
            await host.call("api", {}, {}, item_context(task="c"))
        breaker = host.breaker("api")
        assert breaker is not None and breaker.state == "open"
    assert changes == [("api", "closed", "open")]
    assert len(connector.calls) == 2


async def test_health_checks_run_on_the_clock_and_feed_the_breaker(clock: FakeClock) -> None:
    connector = ScriptedConnector(clock=clock, healthy=False)
    host = ConnectorHost(registry=registry_with(api=connector), clock=clock,
                         config={"api": {"health": {"interval": "10s"}}})
    async with host:
        await host.instance("api")
        breaker = host.breaker("api")
        assert breaker is not None
        await clock.advance(9.999)
        assert breaker.state == "closed"
        await clock.advance(0.001)
        assert breaker.state == "open"
        connector.healthy = True
        await clock.advance(10)
        assert breaker.state == "half_open"
    assert clock.next_deadline() is None, "closing the host stops the checks"


async def test_a_health_check_that_raises_or_hangs_is_unhealthy(clock: FakeClock) -> None:
    class Broken(ScriptedConnector):
        async def health(self) -> Health:
            raise OSError("no route to host")

    class Hanging(ScriptedConnector):
        async def health(self) -> Health:
            await anyio.sleep_forever()
            raise AssertionError

    host = ConnectorHost(registry=registry_with(broken=Broken, hanging=Hanging), clock=clock,
                         config={"hanging": {"health": {"timeout": "2s", "interval": "1h"}}})
    async with host:
        health = await host.check_health("broken")
        assert health == Health(ok=False, detail="health() raised OSError: no route to host")
        async with anyio.create_task_group() as tg:
            results: list[Health] = []

            async def check() -> None:
                results.append(await host.check_health("hanging"))

            tg.start_soon(check)
            await clock.advance(2)
        assert results == [Health(ok=False, detail="health() took longer than 2s")]
        breaker = host.breaker("hanging")
        assert breaker is not None and breaker.state == "open"


async def test_configs_as_written_are_validated_at_the_call(clock: FakeClock) -> None:
    host = ConnectorHost(registry=registry_with(s=ScriptedConnector), clock=clock)
    async with host:
        assert await host.call("s", {"tag": "x"}, {}, item_context()) == {"tag": "x"}
        with pytest.raises(ConnectorConfigError, match=r"^\$\.config\.tga: unknown field 'tga' \(did you mean 'tag'"):
            await host.call("s", {"tga": "x"}, {}, item_context())


async def test_a_whole_policy_may_be_passed(jumping: FakeClock) -> None:
    connector = ScriptedConnector(FLAKY, FLAKY, {"third": True}, clock=jumping)
    host = ConnectorHost(registry=registry_with(s=connector), clock=jumping)
    async with host:
        p = parse_policy({"retry": {"attempts": 3}}, "$.p")
        assert await host.call("s", {}, {}, item_context(), policy=p) == {"third": True}
        assert await host.call("s", {}, {}, item_context(), policy={"retry": {"attempts": 1}}) == {}


async def test_reconcile_without_support_is_none(clock: FakeClock) -> None:
    class Remembering(ScriptedConnector):
        async def reconcile(self, key: str) -> dict[str, Any] | None:
            return {"key": key} if key == "seen" else None

    host = ConnectorHost(registry=registry_with(s=ScriptedConnector, r=Remembering), clock=clock)
    async with host:
        assert await host.reconcile("s", "seen") is None
        assert await host.reconcile("r", "seen") == {"key": "seen"}
        assert await host.reconcile("r", "other") is None


async def test_a_failing_close_is_reported_after_closing_the_rest(clock: FakeClock) -> None:
    class BadClose(ScriptedConnector):
        async def close(self) -> None:
            raise OSError("socket already gone")

    good = ScriptedConnector()
    host = ConnectorHost(registry=registry_with(bad=BadClose, good=good), clock=clock)
    with pytest.raises(yf.ConnectorError, match=r"^connector 'bad': close\(\) failed: OSError: socket already gone"):
        async with host:
            await host.instance("bad")
            await host.instance("good")
    assert good.closed == 1


def test_the_default_policy() -> None:
    p = Policy()
    assert p.timeout is None and p.retry.attempts == 1
    assert p.breaker is not None and p.bulkhead is not None and p.health is None
