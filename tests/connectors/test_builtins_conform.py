"""The built-in connectors pass the conformance kit a plugin author runs, on every backend."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from yawlflow.connectors import HttpConnector, PythonConnector, ShellConnector
from yawlflow.connectors.testing import BadConfig, Call, Conformance, ConnectorTests, Failure

PY = sys.executable

FUNCTIONS = '''
import anyio
import yawlflow as yf

def key(data, ctx):
    return {"key": ctx.idempotency_key}

async def wait(data):
    await anyio.sleep_forever()

def busy(data):
    raise yf.ConnectorError("the ledger is busy", retryable=True)
'''


class OnEveryBackend(ConnectorTests):
    """The kit runs on asyncio unless told otherwise: these run where the suite's other async tests do."""

    @pytest.fixture(params=[pytest.param(("asyncio", {}), id="asyncio"),
                            pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop"),
                            pytest.param(("trio", {}), id="trio")])
    def anyio_backend(self, request: pytest.FixtureRequest) -> Any:
        return request.param


class TestPython(OnEveryBackend):
    @pytest.fixture
    def conformance(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Conformance]:
        (tmp_path / "yf_kit_funcs.py").write_text(textwrap.dedent(FUNCTIONS))
        monkeypatch.syspath_prepend(str(tmp_path))
        yield Conformance(
            connector=PythonConnector(allow=["yf_kit_funcs"]),
            ok=Call(config={"function": "yf_kit_funcs:key"}),
            failures=[Failure(config={"function": "yf_kit_funcs:busy"}, retryable=True, match="busy"),
                      Failure(config={"function": "os:getcwd"}, retryable=False, match="not allowed")],
            bad_configs=[BadConfig(config={"function": "os.system"}, path=""),
                         BadConfig(config={"function": 3}, path="function"),
                         BadConfig(config={"fn": "a:b"}, path="fn")],
            blocking=Call(config={"function": "yf_kit_funcs:wait"}),
            key_seen=lambda output: output["key"] if output else None,
            name="python",
        )
        sys.modules.pop("yf_kit_funcs", None)


class TestShell(OnEveryBackend):
    @pytest.fixture
    def conformance(self) -> Conformance:
        key = "import os, json; print(json.dumps({{'key': os.environ['YAWLFLOW_IDEMPOTENCY_KEY']}}))"
        return Conformance(
            connector=ShellConnector(allow=[PY]),
            ok=Call(config={"command": PY, "args": ["-c", key], "output": "json"}),
            failures=[Failure(config={"command": PY, "args": ["-c", "raise SystemExit(75)"], "retry_codes": [75]},
                              retryable=True, match="exited with 75"),
                      Failure(config={"command": "/bin/sh", "args": ["-c", "id"]}, retryable=False,
                              match="not allowed")],
            bad_configs=[BadConfig(config={"command": 1}, path="command"),
                         BadConfig(config={"command": PY, "args": ["{0}"]}, path=""),
                         BadConfig(config={"command": PY, "output": "xml"}, path="output")],
            blocking=Call(config={"command": PY, "args": ["-c", "import threading; threading.Event().wait()"]}),
            key_seen=lambda output: output["key"] if output else None,
            name="shell",
        )


class TestHttp(OnEveryBackend):
    @pytest.fixture
    def conformance(self, http_server: Any) -> Conformance:
        url = http_server.url
        return Conformance(
            connector=HttpConnector(),
            ok=Call(config={"url": url + "/echo/{id}"}, input={"id": 1}),
            failures=[Failure(config={"url": url + "/status/503"}, retryable=True, match="answered 503"),
                      Failure(config={"url": url + "/status/404"}, retryable=False, match="answered 404"),
                      Failure(config={"url": url + "/reset"}, retryable=True),
                      Failure(config={"url": url + "/slow", "timeout": 0.05}, retryable=True, match="Timeout")],
            bad_configs=[BadConfig(config={}, path=""), BadConfig(config={"url": "ftp://x"}, path=""),
                         BadConfig(config={"url": "https://x", "method": "FETCH"}, path="method"),
                         BadConfig(config={"url": "https://x", "headers": {"a": 1}}, path="headers")],
            blocking=Call(config={"url": url + "/slow"}),
            key_seen=lambda output: output["body"]["headers"].get("idempotency-key") if output else None,
            name="http",
        )
