"""The ``http`` built-in against a real HTTP server on 127.0.0.1: templates, bodies, status mapping,
slow responses, resets, dropped connections, timeouts (httpx's and the engine clock's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.connectors import (
    ConnectorConfigError,
    ConnectorEnv,
    ConnectorTimeoutError,
    HttpConnector,
    HttpStatusError,
    Policy,
    call_with_resilience,
    validate_config,
)
from yawlflow.connectors.testing import item_context
from yawlflow.testing import FakeClock

pytestmark = pytest.mark.anyio


@pytest.fixture
async def http(clock: FakeClock) -> AsyncIterator[HttpConnector]:
    connector = HttpConnector()
    await connector.open(ConnectorEnv(name="http", clock=clock))
    yield connector
    await connector.close()


def cfg(**config: Any) -> Any:
    return validate_config("http", config, "$.config")


async def test_url_template_query_headers_and_idempotency_key(http: HttpConnector, http_server: Any) -> None:
    out = await http.call(
        cfg(url=http_server.url + "/echo/{order.id}/{name}", query={"q": "{name}"}, headers={"X-Tenant": "{tenant}"}),
        {"order": {"id": 7}, "name": "a b/c?", "tenant": "acme"}, item_context("key-1"),
    )
    assert out is not None and out["status"] == 200
    seen = out["body"]
    assert seen["path"] == "/echo/7/a%20b%2Fc%3F", "path values are percent-encoded, / and ? included"
    assert seen["query"] == {"q": "a b/c?"}
    await http.call(cfg(url=http_server.url + "/echo?fixed=1", query={"q": "{n}"}), {"n": 2}, item_context())
    assert http_server.seen[-1]["query"] == {"fixed": "1", "q": "2"}, "the url's own query is kept"
    assert seen["headers"]["x-tenant"] == "acme"
    assert seen["headers"]["idempotency-key"] == "key-1"
    assert seen["method"] == "GET" and seen["body"] is None


async def test_a_json_body_from_the_input(http: HttpConnector, http_server: Any) -> None:
    await http.call(cfg(url=http_server.url + "/echo", method="POST"), {"amount": 12, "items": [1, 2]}, item_context())
    assert http_server.seen[-1]["body"] == {"amount": 12, "items": [1, 2]}
    await http.call(cfg(url=http_server.url + "/echo", method="PUT", body_key="order"), {"order": {"id": 1}, "x": 2},
                    item_context())
    assert http_server.seen[-1]["body"] == {"id": 1}
    await http.call(cfg(url=http_server.url + "/echo", method="POST", body="none"), {"x": 1}, item_context())
    assert http_server.seen[-1]["body"] is None


async def test_the_response_becomes_status_and_body(http: HttpConnector, http_server: Any) -> None:
    out = await http.call(cfg(url=http_server.url + "/echo", response_headers=["Content-Type"]), {}, item_context())
    assert out is not None and out["body"]["path"] == "/echo" and out["headers"] == {"Content-Type": "application/json"}
    assert await http.call(cfg(url=http_server.url + "/text"), {}, item_context()) == {"status": 200, "body": "hello"}


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True), (408, True),
                                                   (400, False), (404, False), (409, False), (422, False)])
async def test_status_codes_map_to_verdicts(http: HttpConnector, http_server: Any, status: int,
                                            retryable: bool) -> None:
    with pytest.raises(HttpStatusError) as info:
        await http.call(cfg(url=http_server.url + f"/status/{status}?token=secret"), {}, item_context())
    assert info.value.status == status and info.value.retryable is retryable
    assert str(info.value).startswith(f"connector 'http': GET {http_server.url}/status/{status} answered {status} ")
    assert str(info.value).endswith(": boom") and "secret" not in str(info.value), "the query stays out of messages"


async def test_retry_after_is_read(http: HttpConnector, http_server: Any) -> None:
    with pytest.raises(HttpStatusError) as info:
        await http.call(cfg(url=http_server.url + "/status/429?retry_after=7"), {}, item_context())
    assert info.value.retry_after == 7.0


async def test_a_reset_connection_is_retryable(http: HttpConnector, http_server: Any) -> None:
    with pytest.raises(yf.ConnectorError, match=r"^connector 'http': GET .*/reset: ReadError") as info:
        await http.call(cfg(url=http_server.url + "/reset"), {}, item_context())
    assert info.value.retryable and isinstance(info.value.__cause__, Exception)


async def test_a_connection_dropped_without_a_response_is_retryable(http: HttpConnector, http_server: Any) -> None:
    with pytest.raises(yf.ConnectorError, match="RemoteProtocolError") as info:
        await http.call(cfg(url=http_server.url + "/drop"), {}, item_context())
    assert info.value.retryable


async def test_a_refused_connection_is_retryable(http: HttpConnector) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(yf.ConnectorError, match="ConnectError") as info:
            await http.call(cfg(url=f"http://127.0.0.1:{port}/"), {}, item_context())
    assert info.value.retryable


async def test_a_slow_response_times_out_in_httpx(http: HttpConnector, http_server: Any) -> None:
    with pytest.raises(ConnectorTimeoutError, match=r"GET .*/slow: ReadTimeout after 0.2s") as info:
        await http.call(cfg(url=http_server.url + "/slow", timeout=0.2), {}, item_context())
    assert info.value.retryable


async def test_a_slow_response_times_out_on_the_engine_clock(http: HttpConnector, http_server: Any,
                                                            clock: FakeClock) -> None:
    failed: list[BaseException] = []
    policy = Policy(timeout=30.0, breaker=None, bulkhead=None)  # type: ignore[arg-type]

    async def call() -> None:
        try:
            await call_with_resilience(http, cfg(url=http_server.url + "/slow"), {}, item_context(), policy, clock,
                                       name="http")
        except ConnectorTimeoutError as exc:
            failed.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await clock.advance(29.999)
        assert not failed
        await clock.advance(0.001)
    assert len(failed) == 1 and "longer than its timeout of 30s" in str(failed[0])


async def test_cancelling_the_caller_ends_the_request_at_once(http: HttpConnector, http_server: Any) -> None:
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(http.call, cfg(url=http_server.url + "/slow"), {}, item_context())
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
    assert scope.cancelled_caught


async def test_a_response_too_large_is_refused(http: HttpConnector, http_server: Any) -> None:
    with pytest.raises(yf.ConnectorError, match=r"larger than max_response \(100000 bytes\)") as info:
        await http.call(cfg(url=http_server.url + "/big", max_response=100_000), {}, item_context())
    assert not info.value.retryable


async def test_health_url(http_server: Any) -> None:
    connector = HttpConnector(health_url=http_server.url + "/health")
    try:
        assert (await connector.health()).ok
        http_server.healthy = False
        health = await connector.health()
        assert not health.ok and health.detail.endswith("/health: 503")
    finally:
        http_server.healthy = True
        await connector.close()
    assert (await HttpConnector().health()).detail == "no health_url set"


def test_bad_configs_are_refused_when_the_spec_loads() -> None:
    with pytest.raises(ConnectorConfigError, match=r"^\$\.config\.method: Invalid enum value 'FETCH'"):
        cfg(url="https://x", method="FETCH")
    with pytest.raises(ConnectorConfigError, match=r"^\$\.config: template 'https://x/\{id\]': a lone"):
        cfg(url="https://x/{id]")
    with pytest.raises(ConnectorConfigError, match=r"^\$\.config\.timeout: Expected `duration`|^\$\.config\.timeout"):
        cfg(url="https://x", timeout=[1])


async def test_a_missing_template_key_is_not_retryable(http: HttpConnector, http_server: Any) -> None:
    with pytest.raises(yf.ConnectorError, match=r"needs \{id\}, which the item's input lacks") as info:
        await http.call(cfg(url=http_server.url + "/echo/{id}"), {}, item_context())
    assert not info.value.retryable
