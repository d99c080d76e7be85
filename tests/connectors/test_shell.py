"""The ``shell`` built-in: allow-listed programs, arguments from the input (never a shell string),
time limits on the engine clock, output limits, exit codes."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.connectors import ConnectorConfigError, ConnectorTimeoutError, ShellConnector, validate_config
from yawlflow.connectors.testing import item_context
from yawlflow.testing import FakeClock

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX programs"),
]

PY = sys.executable
BLOCK_FOREVER = "import threading; threading.Event().wait()"  # a child that runs until it is stopped


def shell(**config: Any) -> Any:
    return validate_config("shell", {"command": PY, **config}, "$.config")


@pytest.fixture
def connector(clock: FakeClock) -> ShellConnector:
    return ShellConnector(allow=[PY], clock=clock)


async def test_arguments_come_from_the_input_one_argv_element_each(connector: ShellConnector) -> None:
    script = "import sys; print('|'.join(sys.argv[1:]))"
    out = await connector.call(shell(args=["-c", script, "{name}", "--id={order.id}"]),
                               {"name": "a b; rm -rf / $(id)", "order": {"id": 7}}, item_context())
    assert out == {"stdout": "a b; rm -rf / $(id)|--id=7\n", "stderr": "", "returncode": 0}


async def test_stdin_env_and_the_idempotency_key(connector: ShellConnector) -> None:
    # every argument is a template: literal braces are doubled
    script = ("import os, sys, json; print(json.dumps({{'in': sys.stdin.read(), 'region': os.environ['REGION'], "
              "'key': os.environ['YAWLFLOW_IDEMPOTENCY_KEY'], 'item': os.environ['YAWLFLOW_ITEM_ID']}}))")
    out = await connector.call(shell(args=["-c", script], stdin="order {id}", env={"REGION": "{region}"},
                                     output="json"), {"id": 3, "region": "eu"}, item_context("key-9"))
    assert out == {"in": "order 3", "region": "eu", "key": "key-9", "item": "1"}


async def test_a_program_not_allowed_is_refused_with_the_fix(connector: ShellConnector) -> None:
    bash = shutil.which("sh") or "/bin/sh"
    with pytest.raises(yf.ConnectorError, match=(
        rf"^connector 'shell': '{bash}' is not allowed \(allowed: .*\); add it to the engine configuration: "
        rf"connectors: \{{shell: \{{settings: \{{allow: \[{bash}\]\}}\}}\}}$"
    )) as info:
        await connector.call(validate_config("shell", {"command": bash, "args": ["-c", "id"]}, "$.c"), {},
                             item_context())
    assert not info.value.retryable


async def test_exit_codes_are_classified(connector: ShellConnector) -> None:
    fail = "import sys; print('disk full', file=sys.stderr); sys.exit({code})"
    with pytest.raises(yf.ConnectorError, match=r"exited with 75 \(ok: \[0\]\): disk full") as info:
        await connector.call(shell(args=["-c", fail.format(code=75)], retry_codes=[75]), {}, item_context())
    assert info.value.retryable
    with pytest.raises(yf.ConnectorError, match="exited with 2") as info:
        await connector.call(shell(args=["-c", fail.format(code=2)], retry_codes=[75]), {}, item_context())
    assert not info.value.retryable
    out = await connector.call(shell(args=["-c", fail.format(code=1)], ok_codes=[0, 1]), {}, item_context())
    assert out is not None and out["returncode"] == 1


async def test_the_time_limit_kills_it_on_the_engine_clock(connector: ShellConnector, clock: FakeClock) -> None:
    failed: list[BaseException] = []

    async def run() -> None:
        try:
            await connector.call(shell(args=["-c", BLOCK_FOREVER], timeout="5s"), {}, item_context())
        except ConnectorTimeoutError as exc:
            failed.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await clock.advance(4.999)
        assert not failed
        await clock.advance(0.001)
    assert len(failed) == 1 and failed[0].retryable
    assert "ran longer than 5s and was killed" in str(failed[0])


async def test_too_much_output_kills_it(connector: ShellConnector) -> None:
    loud = "import sys\nwhile True: sys.stdout.write('x' * 65536)"
    with pytest.raises(yf.ConnectorError, match=r"wrote more than 100000 bytes to stdout and was killed") as info:
        await connector.call(shell(args=["-c", loud], max_output=100_000), {}, item_context())
    assert not info.value.retryable


def running(token: str) -> list[int]:
    """The pids of processes whose command line holds ``token``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if token.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
async def test_cancelling_the_caller_kills_the_process(connector: ShellConnector, tmp_path: Path) -> None:
    token = f"yawlflow-test-{uuid.uuid4().hex}"
    fifo = tmp_path / "up"
    os.mkfifo(fifo)
    script = f"open({str(fifo)!r}, 'w').write('up'); import threading; threading.Event().wait()"
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(connector.call, shell(args=["-c", script, token]), {}, item_context())
            # the child opens the fifo once it runs; reading it waits for that (no sleep, no poll)
            assert await anyio.to_thread.run_sync(fifo.read_text) == "up"
            assert running(token)
            scope.cancel()
    assert running(token) == [], "killed and reaped before the call ended"


async def test_a_call_cancelled_while_spawning_leaves_no_process(connector: ShellConnector) -> None:
    token = f"yawlflow-test-{uuid.uuid4().hex}"
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(connector.call, shell(args=["-c", BLOCK_FOREVER, token]), {}, item_context())
            await anyio.lowlevel.checkpoint()  # the call has begun, its spawn may not have ended
            scope.cancel()
    if Path("/proc/self/cmdline").exists():
        assert running(token) == []


async def test_json_output_must_be_an_object(connector: ShellConnector) -> None:
    with pytest.raises(yf.ConnectorError, match="printed a JSON list; output: json needs an object"):
        await connector.call(shell(args=["-c", "print('[1]')"], output="json"), {}, item_context())
    with pytest.raises(yf.ConnectorError, match="printed no JSON"):
        await connector.call(shell(args=["-c", "print('hello')"], output="json"), {}, item_context())


async def test_a_missing_input_key(connector: ShellConnector) -> None:
    with pytest.raises(yf.ConnectorError, match=r"template '\{nme\}' needs \{nme\}, which the item's input lacks "
                                                r"\(its keys: name\); map it in with the task's `input:`"):
        await connector.call(shell(args=["{nme}"]), {"name": "x"}, item_context())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"args": ["{x[0]}"]}, r"^\$\.c: template '\{x\[0\]\}': field \{x\[0\]\} is not a name"),
        ({"args": ["{x!r}"]}, r"field \{x!r\} is not a name"),
        ({"args": ["{0}"]}, r"field \{0\} is not a name"),
        ({"args": ["a}b"]}, r"a lone '\}'; write '\}\}' for a literal brace"),
        ({"timeout": "soon"}, r"^\$\.c\.timeout: not a duration"),
        ({"comand": "x"}, r"^\$\.c\.comand: unknown field 'comand' \(did you mean 'command'\?"),
    ],
)
def test_bad_configs_are_refused_when_the_spec_loads(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorConfigError, match=message):
        validate_config("shell", {"command": "x", **config}, "$.c")


async def test_health_finds_the_allowed_programs() -> None:
    assert (await ShellConnector(allow=[PY]).health()).ok
    health = await ShellConnector(allow=["/no/such/program"]).health()
    assert not health.ok and health.detail == "not found: /no/such/program"
