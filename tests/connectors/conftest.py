"""Fixtures for the connector tests: a virtual clock, one that jumps to the next deadline, and a
real HTTP server on the loopback interface."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import pytest

from yawlflow.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    """A FakeClock at 0 that moves only when advanced."""
    return FakeClock()


@pytest.fixture
async def jumping() -> AsyncIterator[FakeClock]:
    """A FakeClock that jumps to the next deadline whenever every task is blocked (async tests only)."""
    clock = FakeClock(autojump=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run)
        yield clock
        tg.cancel_scope.cancel()


# -- a real HTTP server on the loopback interface ----------------------------------------------------


class Server(ThreadingHTTPServer):
    """What the handler shares: the requests seen, a gate the slow route waits on, the health answer."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.healthy = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # /reset and /drop end connections on purpose; a cancelled client ends others

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class Handler(BaseHTTPRequestHandler):
    """Routes: /echo, /status/CODE[?retry_after=S], /slow, /reset, /drop, /text, /big, /health."""

    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: bytes, content_type: str = "application/json",
                headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        record = {
            "method": self.command,
            "path": url.path,
            "query": dict(parse_qsl(url.query)),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": json.loads(raw) if raw else None,
        }
        self.server.seen.append(record)
        if url.path.startswith("/echo"):
            self._answer(200, json.dumps(record).encode())
        elif url.path.startswith("/status/"):
            query = dict(parse_qsl(url.query))
            extra = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
            self._answer(int(url.path.rsplit("/", 1)[1]), b"boom", "text/plain", extra)
        elif url.path == "/slow":
            self.server.release.wait(30)
            self._answer(200, b"{}")
        elif url.path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # an RST, not a FIN
            self.close_connection = True
        elif url.path == "/drop":
            self.connection.shutdown(socket.SHUT_RDWR)  # no response at all
            self.close_connection = True
        elif url.path == "/text":
            self._answer(200, b"hello", "text/plain; charset=utf-8")
        elif url.path == "/big":
            self._answer(200, b"x" * 300_000, "text/plain")
        elif url.path == "/health":
            self._answer(200 if self.server.healthy else 503, b"{}")
        else:
            self._answer(404, b"no route")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _route

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # /reset closed the socket under us
            super().finish()


@pytest.fixture(scope="module")
def http_server() -> Iterator[Server]:
    """A threaded HTTP server on 127.0.0.1 (a free port), for the module's tests."""
    server = Server()
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
