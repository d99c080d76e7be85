"""The ``python`` built-in: allow-listed ``module:function`` only, sync or async, with or without a context."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import yawlflow as yf
from yawlflow.connectors import ConnectorConfigError, PythonConnector, validate_config
from yawlflow.connectors.testing import item_context

pytestmark = pytest.mark.anyio

FUNCTIONS = '''
import threading

import anyio

release = threading.Event()

def double(data):
    return {"n": data["n"] * 2}

async def key(data, ctx):
    await anyio.lowlevel.checkpoint()
    return {"key": ctx.idempotency_key, "task": ctx.task}

def nothing(data):
    return None

def text(data):
    return "not a dict"

def wait(data):
    release.wait(30)
    return {}

def refuse(data):
    raise ValueError("amount must be positive")
'''


@pytest.fixture
def funcs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "yf_test_funcs").mkdir()
    (tmp_path / "yf_test_funcs" / "__init__.py").write_text("")
    (tmp_path / "yf_test_funcs" / "jobs.py").write_text(textwrap.dedent(FUNCTIONS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "yf_test_funcs.jobs"
    jobs = sys.modules.get("yf_test_funcs.jobs")
    if jobs is not None:
        jobs.release.set()  # a thread abandoned by a cancelled call ends
    for name in ("yf_test_funcs", "yf_test_funcs.jobs"):
        sys.modules.pop(name, None)


def config(ref: str) -> object:
    return validate_config("python", {"function": ref}, "$.config")


async def test_sync_and_async_functions_with_and_without_a_context(funcs: str) -> None:
    connector = PythonConnector(allow=["yf_test_funcs"])  # a package allows its modules
    assert await connector.call(config(f"{funcs}:double"), {"n": 21}, item_context()) == {"n": 42}
    keyed = await connector.call(config(f"{funcs}:key"), {}, item_context("k-1", task="t"))
    assert keyed == {"key": "k-1", "task": "t"}
    assert await connector.call(config(f"{funcs}:nothing"), {}, item_context()) is None


async def test_a_module_not_allowed_is_refused_with_the_fix(funcs: str) -> None:
    connector = PythonConnector(allow=["yf_other"])
    with pytest.raises(yf.ConnectorError, match=(
        r"^connector 'python': handler 'yf_test_funcs.jobs:double': module 'yf_test_funcs.jobs' is not allowed; "
        r"add it to the engine's configuration \(handlers: \{allow: \[yf_test_funcs.jobs\]\}\)"
    )) as info:
        await connector.call(config(f"{funcs}:double"), {"n": 1}, item_context())
    assert not info.value.retryable
    assert "yf_test_funcs.jobs" not in sys.modules, "a module not allowed is never imported"


async def test_a_prefix_is_not_a_package(funcs: str) -> None:
    connector = PythonConnector(allow=["yf_test"])  # not yf_test_funcs
    with pytest.raises(yf.ConnectorError, match="is not allowed"):
        await connector.call(config(f"{funcs}:double"), {"n": 1}, item_context())


async def test_what_the_function_raises_or_returns_wrongly(funcs: str) -> None:
    connector = PythonConnector(allow=[funcs])
    with pytest.raises(ValueError, match="amount must be positive"):
        await connector.call(config(f"{funcs}:refuse"), {}, item_context())
    with pytest.raises(yf.ConnectorError, match=r"yf_test_funcs.jobs:text returned str; return a dict or None"):
        await connector.call(config(f"{funcs}:text"), {}, item_context())
    with pytest.raises(yf.ConnectorError, match="cannot import it"):
        await connector.call(config(f"{funcs}:missing"), {}, item_context())


async def test_a_sync_function_in_its_thread_is_abandoned_on_cancellation(funcs: str) -> None:
    connector = PythonConnector(allow=[funcs])
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(connector.call, config(f"{funcs}:wait"), {}, item_context())
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
    assert scope.cancelled_caught


def test_a_bad_reference_is_refused_when_the_spec_loads() -> None:
    with pytest.raises(ConnectorConfigError, match=r"^\$\.config: function 'os.system' is not "
                                                   r"'package.module:function'"):
        validate_config("python", {"function": "os.system"}, "$.config")


async def test_health() -> None:
    assert (await PythonConnector().health()).ok
