"""The ``shell`` connector: runs an allow-listed program with arguments from the item's input.

Never through a shell: the program and each argument are one ``argv`` element each, so an
input value such as ``"; rm -rf /"`` is one harmless argument. The program must be in the
connector's ``allow`` setting, exactly as the config writes it (an absolute path is safest: a
bare name is looked up on ``PATH``). Each run is bounded in time (``timeout``, on the engine
clock; the process is killed) and in output (``max_output`` bytes of stdout, and of stderr; the
process is killed when either is exceeded). The item's idempotency key, case id and item id are
in its environment (``YAWLFLOW_IDEMPOTENCY_KEY``, ``YAWLFLOW_CASE_ID``, ``YAWLFLOW_ITEM_ID``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import anyio
import msgspec
from anyio.abc import ByteReceiveStream, Process

from yawlflow._clock import Clock, SystemClock
from yawlflow._errors import ConnectorError
from yawlflow._handlers import ItemContext

from ._convert import Seconds
from ._errors import ConnectorTimeoutError
from ._protocol import API_VERSION, ConnectorEnv, Health, Output
from ._template import check_template, fill
from ._timeout import Expired, within

__all__ = ("ShellConnector",)


class ShellConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The ``shell`` connector's config.

    Attributes:
        command: the program, as the connector's ``allow`` setting lists it.
        args: its arguments, each a template filled from the input (``"{order.id}"``).
        stdin: a template written to its standard input (``None``: none).
        env: extra environment variables (values are templates).
        timeout: the longest a run may take (engine clock); the process is then killed.
        max_output: the most bytes of stdout (and of stderr) kept; more kills the process.
        output: ``text``: ``{stdout, stderr, returncode}``; ``json``: stdout parsed, an object.
        ok_codes: exit codes that mean success.
        retry_codes: exit codes that mean "try again later" (e.g. 75, EX_TEMPFAIL).
    """

    command: str
    args: tuple[str, ...] = ()
    stdin: str | None = None
    env: dict[str, str] = msgspec.field(default_factory=dict)
    timeout: Seconds = Seconds(60.0)
    max_output: int = 1 << 20
    output: Literal["text", "json"] = "text"
    ok_codes: tuple[int, ...] = (0,)
    retry_codes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for template in (*self.args, *(self.env.values()), *([self.stdin] if self.stdin is not None else [])):
            check_template(template)
        if self.max_output < 1:
            raise ValueError("max_output must be at least 1 byte")


class ShellConnector:
    """Runs allow-listed programs (see the module docstring).

    Args:
        allow: the programs a config may name, as it must write them.
        clock: the clock of its time limit (default: the engine's, given to ``open``).
    """

    yawlflow_api = API_VERSION
    Config = ShellConfig

    def __init__(self, *, allow: Iterable[str] = (), clock: Clock | None = None) -> None:
        self.allow = tuple(allow)
        self._clock: Clock = clock if clock is not None else SystemClock()

    async def open(self, env: ConnectorEnv) -> None:
        """Take the engine's clock."""
        self._clock = env.clock

    async def call(self, config: ShellConfig, input: Mapping[str, Any], ctx: ItemContext) -> Output:
        """Run the program once.

        Raises:
            ConnectorError: the program is not allowed or not found, an argument's key is
                missing, the output is too large or not JSON, or the exit code is not an ok
                one (retryable when it is one of ``retry_codes``).
            ConnectorTimeoutError: it ran longer than ``timeout`` (it was killed).
        """
        program = self._program(config.command)
        argv = [program, *(fill(a, input, connector="shell") for a in config.args)]
        env = dict(os.environ)
        env.update({k: fill(v, input, connector="shell") for k, v in config.env.items()})
        env.update(YAWLFLOW_IDEMPOTENCY_KEY=ctx.idempotency_key, YAWLFLOW_CASE_ID=ctx.case_id,
                   YAWLFLOW_ITEM_ID=str(ctx.item_id))
        stdin = None if config.stdin is None else fill(config.stdin, input, connector="shell").encode()
        out, err = bytearray(), bytearray()
        over: list[str] = []

        async def run() -> int:
            # shielded: a spawn cancelled half-way (trio spawns in a thread) would leave the
            # child running with nobody to kill it; once spawned, the finally below reaps it
            with anyio.CancelScope(shield=True):
                process = await anyio.open_process(
                    argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True,
                )
            try:
                return await _communicate(process, stdin, out, err, config.max_output, over)
            finally:
                await _reap(process)  # killed and waited for, even when cancelled

        try:
            code = await within(self._clock, config.timeout, run)  # the limit counts from before the spawn
        except Expired:
            raise ConnectorTimeoutError(
                f"connector 'shell': {config.command} ran longer than {float(config.timeout):g}s and was "
                "killed; raise the config's timeout if it is just slow", connector="shell",
            ) from None
        if over:
            raise ConnectorError(
                f"connector 'shell': {config.command} wrote more than {config.max_output} bytes to {over[0]} "
                "and was killed; raise the config's max_output, or make it write less", connector="shell",
            )
        text, errors = out.decode(errors="replace"), err.decode(errors="replace")
        if code not in config.ok_codes:
            tail = errors.strip()[-500:] or "(no stderr)"
            raise ConnectorError(
                f"connector 'shell': {config.command} exited with {code} (ok: {list(config.ok_codes)}): {tail}",
                retryable=code in config.retry_codes, connector="shell",
            )
        if config.output == "text":
            return {"stdout": text, "stderr": errors, "returncode": code}
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise ConnectorError(f"connector 'shell': {config.command} printed no JSON ({exc}); its output "
                                 f"began {text[:80]!r}", connector="shell") from None
        if not isinstance(parsed, dict):
            raise ConnectorError(f"connector 'shell': {config.command} printed a JSON {type(parsed).__name__}; "
                                 "output: json needs an object", connector="shell")
        return parsed

    async def health(self) -> Health:
        """Healthy when every allowed program can be found."""
        missing = [p for p in self.allow if _which(p) is None]
        if missing:
            return Health(ok=False, detail=f"not found: {', '.join(missing)}")
        return Health(ok=True, detail=f"{len(self.allow)} program(s) allowed")

    def _program(self, command: str) -> str:
        if command not in self.allow:
            raise ConnectorError(
                f"connector 'shell': {command!r} is not allowed (allowed: {', '.join(self.allow) or 'none'}); add it "
                f"to the engine configuration: connectors: {{shell: {{settings: {{allow: [{command}]}}}}}}",
                connector="shell",
            )
        found = _which(command)
        if found is None:
            raise ConnectorError(f"connector 'shell': {command!r} was not found (not a file, or not on PATH)",
                                 connector="shell")
        return found


def _which(command: str) -> str | None:
    if os.path.isabs(command):
        return command if os.access(command, os.X_OK) else None
    return shutil.which(command)


async def _pump(stream: ByteReceiveStream | None, sink: bytearray, limit: int, name: str, over: list[str],
                process: Process) -> None:
    if stream is None:
        return
    with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
        async for chunk in stream:
            sink.extend(chunk)
            if len(sink) > limit:
                over.append(name)
                del sink[limit:]
                _kill(process)
                return


async def _communicate(process: Process, stdin: bytes | None, out: bytearray, err: bytearray, limit: int,
                       over: list[str]) -> int:
    async def feed() -> None:
        if process.stdin is None:
            return
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
            if stdin:
                await process.stdin.send(stdin)
            await process.stdin.aclose()

    async with anyio.create_task_group() as tg:
        tg.start_soon(feed)
        tg.start_soon(_pump, process.stdout, out, limit, "stdout", over, process)
        tg.start_soon(_pump, process.stderr, err, limit, "stderr", over, process)
    return await process.wait()


async def _reap(process: Process) -> None:
    """Kill the process if it still runs, and wait for it (even when the caller is being cancelled)."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            _kill(process)
        await process.aclose()


def _kill(process: Process) -> None:
    """SIGKILL the process's whole group (it leads a session of its own), so no grandchild keeps a pipe open."""
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
            return
    with contextlib.suppress(ProcessLookupError):
        process.kill()
