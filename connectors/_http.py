"""The ``http`` connector: one HTTP request per item, with httpx (``pip install 'yawlflow[http]'``).

The URL, headers and query are templates filled from the item's input (URL values are
percent-encoded); the JSON body is the input (or one key of it). The response becomes
``{status, body}`` (``body``: parsed JSON, or text), plus the headers the config asks for.

Errors are classified at this boundary: 5xx, 408, 425 and 429 are retryable (with the server's
``Retry-After`` honoured by the retry policy), every other 4xx is not; a timeout, a refused or
reset connection, or a response cut off is retryable; a bad URL or an unsupported scheme is
not. The item's idempotency key goes out as the ``Idempotency-Key`` header.

One ``httpx.AsyncClient`` (its connection pool) per connector instance, made by ``open`` and
closed by ``close``: the pool hooks.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import anyio
import msgspec

from yawlflow._errors import ConnectorError
from yawlflow._handlers import ItemContext

from ._convert import Seconds
from ._errors import ConnectorTimeoutError
from ._protocol import API_VERSION, ConnectorEnv, Health, Output
from ._template import check_template, fill

try:
    import httpx
except ImportError:  # pragma: no cover - the error says how to install it
    httpx = None  # type: ignore[assignment]

__all__ = ("HttpConnector", "HttpStatusError")

_RETRYABLE = (408, 425, 429)


class HttpStatusError(ConnectorError):
    """The server answered with an error status.

    Attributes:
        status: the HTTP status code.
        retry_after: seconds the server asked to wait (``Retry-After``), where it did.
    """

    def __init__(self, message: str, *, status: int, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message, retryable=retryable, connector="http")
        self.status = status
        self.retry_after = retry_after


class HttpConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The ``http`` connector's config.

    Attributes:
        url: the URL template, e.g. ``https://api.example.com/orders/{order_id}``.
        method: the HTTP method.
        headers: header templates.
        query: query parameter templates.
        body: ``auto``: the input as JSON for POST, PUT and PATCH, none otherwise; ``input``:
            always; ``none``: never.
        body_key: send ``input[body_key]`` as the JSON body instead of the whole input.
        timeout: httpx's limit on connecting, each read, each write, and waiting for a pooled
            connection (the policy's ``timeout`` bounds the whole call on the engine clock).
        response: ``auto`` (JSON when the server says so, else text), ``json``, ``text``, ``none``.
        response_headers: the response headers to return, under ``headers``.
        max_response: the most bytes of response body read; more fails the call.
        idempotency_header: the header the idempotency key goes out in (``None``: not sent).
        retry_statuses: 4xx statuses that are retryable besides 5xx.
    """

    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    query: dict[str, str] = msgspec.field(default_factory=dict)
    body: Literal["auto", "input", "none"] = "auto"
    body_key: str | None = None
    timeout: Seconds = Seconds(30.0)
    response: Literal["auto", "json", "text", "none"] = "auto"
    response_headers: tuple[str, ...] = ()
    max_response: int = 10 << 20
    idempotency_header: str | None = "Idempotency-Key"
    retry_statuses: tuple[int, ...] = _RETRYABLE

    def __post_init__(self) -> None:
        for template in (self.url, *self.headers.values(), *self.query.values()):
            check_template(template)
        if not self.url.startswith(("http://", "https://", "{")):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")


class HttpConnector:
    """HTTP requests with httpx (see the module docstring).

    Args:
        max_connections: the pool's limit on connections.
        max_keepalive_connections: idle connections kept.
        verify: verify TLS certificates (a path: a CA bundle).
        health_url: ``health()`` GETs it (2xx or 3xx: healthy); ``None``: always healthy.

    Raises:
        ConnectorError: httpx is not installed (the message gives the command).
    """

    yawlflow_api = API_VERSION
    Config = HttpConfig

    def __init__(self, *, max_connections: int = 100, max_keepalive_connections: int = 20,
                 verify: bool | str = True, health_url: str | None = None) -> None:
        if httpx is None:  # pragma: no cover
            raise ConnectorError("connector 'http' needs httpx, which is not installed: pip install 'yawlflow[http]'",
                                 connector="http")
        self._limits = httpx.Limits(max_connections=max_connections,
                                    max_keepalive_connections=max_keepalive_connections)
        self._verify = verify
        self.health_url = health_url
        self._client: httpx.AsyncClient | None = None

    async def open(self, env: ConnectorEnv) -> None:
        """Open the connection pool."""
        self._client_()

    async def close(self) -> None:
        """Close the connection pool (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _client_(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(limits=self._limits, verify=self._verify, follow_redirects=True)
        return self._client

    async def call(self, config: HttpConfig, input: Mapping[str, Any], ctx: ItemContext) -> Output:
        """Make the request.

        Raises:
            HttpStatusError: the server answered 4xx or 5xx (retryable: 5xx, 408, 425, 429).
            ConnectorTimeoutError: httpx's timeout passed.
            ConnectorError: the connection failed (retryable), the URL is bad or the response
                too large (not retryable), or a template's key is missing from the input.
        """
        url = fill(config.url, input, quote=lambda v: quote(v, safe=""), connector="http")
        headers = {k: fill(v, input, connector="http") for k, v in config.headers.items()}
        if config.idempotency_header:
            headers.setdefault(config.idempotency_header, ctx.idempotency_key)
        params = {k: fill(v, input, connector="http") for k, v in config.query.items()}
        send_body = config.body == "input" or (config.body == "auto" and config.method in ("POST", "PUT", "PATCH"))
        payload: Any = None
        if send_body:
            if config.body_key is not None:
                if config.body_key not in input:
                    raise ConnectorError(f"connector 'http': body_key {config.body_key!r} is not in the item's "
                                         f"input (its keys: {', '.join(sorted(input)) or 'none'})", connector="http")
                payload = input[config.body_key]
            else:
                payload = dict(input)
        timeout = httpx.Timeout(float(config.timeout))
        client = self._client_()
        try:
            target = httpx.URL(url).copy_merge_params(params) if params else url  # keeps the url's own query
            async with client.stream(config.method, target, headers=headers, json=payload if send_body else None,
                                     timeout=timeout) as response:
                body = bytearray()
                too_big = False
                # Over the limit, cancel the read rather than leave the loop: the cancellation unwinds
                # httpx's nested async generators from the inside, so none is left suspended (trio warns).
                with anyio.CancelScope() as reading:
                    async for chunk in response.aiter_bytes():
                        if too_big:
                            continue
                        body.extend(chunk)
                        if len(body) > config.max_response:
                            too_big = True
                            reading.cancel()
                if too_big:
                    raise ConnectorError(
                        f"connector 'http': {config.method} {_safe(url)}: the response is larger than "
                        f"max_response ({config.max_response} bytes); raise max_response", connector="http",
                    )
        except httpx.TimeoutException as exc:
            raise ConnectorTimeoutError(f"connector 'http': {config.method} {_safe(url)}: {type(exc).__name__} "
                                        f"after {float(config.timeout):g}s ({exc})", connector="http") from exc
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            raise ConnectorError(f"connector 'http': {config.method} {_safe(url)}: {type(exc).__name__}: {exc}; "
                                 "check the url", connector="http") from exc
        except httpx.TransportError as exc:
            raise ConnectorError(f"connector 'http': {config.method} {_safe(url)}: {type(exc).__name__}: "
                                 f"{exc or 'the connection failed'}", retryable=True, connector="http") from exc
        status = response.status_code
        if status >= 400:
            retryable = status >= 500 or status in config.retry_statuses
            snippet = bytes(body[:300]).decode(errors="replace").strip()
            raise HttpStatusError(
                f"connector 'http': {config.method} {_safe(url)} answered {status} {response.reason_phrase}"
                + (f": {snippet}" if snippet else ""),
                status=status, retryable=retryable, retry_after=_retry_after(response.headers.get("retry-after")),
            )
        out: dict[str, Any] = {"status": status, "body": _parse(config, response, bytes(body))}
        if config.response_headers:
            out["headers"] = {h: response.headers[h] for h in config.response_headers if h in response.headers}
        return out

    async def health(self) -> Health:
        """GET ``health_url`` (if set): healthy on 2xx or 3xx."""
        if self.health_url is None:
            return Health(ok=True, detail="no health_url set")
        try:
            response = await self._client_().get(self.health_url, timeout=5.0)
        except httpx.HTTPError as exc:
            return Health(ok=False, detail=f"GET {self.health_url}: {type(exc).__name__}: {exc}")
        return Health(ok=response.status_code < 400, detail=f"GET {self.health_url}: {response.status_code}")


def _parse(config: HttpConfig, response: httpx.Response, body: bytes) -> Any:
    kind = config.response
    if kind == "none" or config.method == "HEAD":
        return None
    if kind == "auto":
        kind = "json" if "json" in response.headers.get("content-type", "") else "text"
    if kind == "text":
        return body.decode(response.encoding or "utf-8", errors="replace")
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ConnectorError(f"connector 'http': {config.method} {_safe(str(response.url))}: the response is not "
                             f"JSON ({exc}); set response: text", connector="http") from None


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _safe(url: str) -> str:
    """``url`` without its query (which may hold tokens) for messages."""
    return url.split("?", 1)[0]
