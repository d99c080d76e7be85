"""Graceful shutdown under ``yawlflow serve`` (issue 8): SIGTERM stops new work at once, the
running item finishes within ``execution.drain`` and its result is kept; what is still running
when the drain time runs out is cancelled, and ``cases resume`` runs it again. The server exits 0.

The server is the command itself, in a subprocess, on a SQLite store and port 0 (it says which
port it took). The slow handler and the test meet on a named pipe, as in tests/cli/test_sigterm.py:
the handler reads it until the test closes its end, and the test's open returns once the handler
runs. The server says when it has stopped taking new work ("yawlflow: stopping"); only then is the
handler let go. Nothing here sleeps.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import pytest

from yawlflow.cli import EXIT_WAITING
from yawlflow.web import hash_key

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes (os.mkfifo) are POSIX only"),
    pytest.mark.skipif(importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None,
                       reason="yawlflow serve needs the web extra (starlette, uvicorn)"),
]

BOUND = 60.0
"""The longest any one step may take (seconds): a bound on a wait, never a pause."""
KEY = "sigterm-operator-key"

SPEC = """\
yawlflow: 1
id: drained
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: "serve_sigterm_handlers:slow", flows: [b]}
      b: {run: "serve_sigterm_handlers:after", flows: [c]}
      c: {external: true, flows: [end]}
"""

HANDLERS = """\
import json
import os


def _called(ctx):
    with open(os.path.join(os.environ["FIFO_DIR"], "calls"), "a") as f:
        f.write(json.dumps([ctx.task, ctx.item_id, ctx.attempt, ctx.idempotency_key]) + "\\n")


def slow(data, ctx):
    _called(ctx)
    # opening blocks until the test holds the other end (so the test knows this runs); reading, until it closes it
    with open(os.path.join(os.environ["FIFO_DIR"], "release")) as pipe:
        pipe.read()
    return {"slow": "done"}


def after(data, ctx):
    _called(ctx)
    return {"after": "ran"}
"""


class Server:
    """A ``yawlflow serve`` subprocess and its stderr, line by line as it comes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)  # EOF: the server has exited

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def expect(self, pattern: str) -> re.Match[str]:
        """Wait (at most BOUND seconds a line) for the stderr line that matches ``pattern``."""
        while True:
            try:
                line = self._queue.get(timeout=BOUND)
            except queue.Empty:
                pytest.fail(f"the server said nothing for {BOUND:g}s, waiting for {pattern!r}:\n{self.log}")
            if line is None:
                pytest.fail(f"the server exited ({self.proc.poll()}) before saying {pattern!r}:\n{self.log}")
            found = re.search(pattern, line)
            if found:
                return found

    def wait(self) -> int:
        """The exit status, once the server has exited (within BOUND) and its stderr is all read."""
        rc = self.proc.wait(BOUND)
        self._reader.join(BOUND)
        return rc


@contextmanager
def serve(tmp_path: Path, drain: str) -> Iterator[tuple[Server, httpx.Client]]:
    """``yawlflow serve`` on a SQLite store, with the slow handler allowed and ``execution.drain``;
    yields it once it listens, with a client that holds an operator key."""
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "serve_sigterm_handlers.py").write_text(HANDLERS)
    (tmp_path / "yawlflow.yaml").write_text(
        f"handlers: {{allow: [serve_sigterm_handlers]}}\nexecution: {{drain: {drain}}}\n")
    (tmp_path / "keys.yaml").write_text(
        f"keys:\n  ops:\n    sha256: {hash_key(KEY)}\n    role: operator\n    tenant: acme\n")
    os.mkfifo(tmp_path / "release")
    access = (tmp_path / "access.log").open("wb")  # uvicorn's access log: a file, so it never blocks the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "yawlflow", "serve", "--store", store_url(tmp_path), "--port", "0",
         "--config", str(tmp_path / "yawlflow.yaml"), "--keys", str(tmp_path / "keys.yaml"),
         "--spec", str(tmp_path / "spec.yaml")],
        cwd=tmp_path, env=environ(tmp_path), stdin=subprocess.DEVNULL, stdout=access,
        stderr=subprocess.PIPE,
    )
    server = Server(proc)
    try:
        port = int(server.expect(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=BOUND,
                          headers={"Authorization": f"Bearer {KEY}"}) as client:
            assert client.get("/openapi.json").status_code == 200  # it listens, and answers
            yield server, client
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        access.close()


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cases.db'}"


def environ(tmp_path: Path) -> dict[str, str]:
    """The commands' environment: the handlers find the pipe through FIFO_DIR; ./yawlflow.yaml is the config."""
    return {**{k: v for k, v in os.environ.items() if k != "YAWLFLOW_CONFIG"}, "FIFO_DIR": str(tmp_path)}


def start_case(client: httpx.Client) -> str:
    r = client.post("/api/v1/cases", json={"spec": "drained"}, headers={"Idempotency-Key": "sigterm-1"})
    assert r.status_code == 201, r.text
    case_id: str = r.json()["id"]
    return case_id


def handler_runs(tmp_path: Path) -> IO[str]:
    """Once the slow handler runs (it opens the pipe), the pipe's end that lets it go when closed."""
    return open(tmp_path / "release", "w")  # the caller closes it, to let the handler go


def calls(tmp_path: Path) -> list[list[Any]]:
    """The handlers called so far, in order: ``[task, item_id, attempt, idempotency_key]`` each."""
    path = tmp_path / "calls"
    return [orjson.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def tasks_called(tmp_path: Path) -> list[str]:
    return [task for task, *_ in calls(tmp_path)]


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "yawlflow", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=BOUND, check=False, env=environ(tmp_path))


def show(tmp_path: Path, case_id: str) -> dict[str, Any]:
    shown = cli(tmp_path, "cases", "show", "--store", store_url(tmp_path), "--json", case_id)
    assert shown.returncode == 0, shown.stderr
    payload: dict[str, Any] = orjson.loads(shown.stdout)
    return payload


def states(case: dict[str, Any]) -> dict[str, list[str]]:
    """Each work item's lifecycle, by task."""
    return {item["task"]: item["states"] for item in case["work_items"]}


def test_sigterm_drains_the_running_item_and_starts_nothing_new(tmp_path: Path) -> None:
    with serve(tmp_path, drain="60s") as (server, client):
        case_id = start_case(client)
        with handler_runs(tmp_path):
            server.proc.send_signal(signal.SIGTERM)
            said = server.expect(r"yawlflow: stopping.*").group(0)  # the engine takes no new work from here
            assert "60s (execution.drain)" in said and f"yawlflow cases resume --store {store_url(tmp_path)}" in said
        # the handler is let go: a finishes during the drain
        rc = server.wait()
    assert rc == 0, f"the server exited {rc} on SIGTERM:\n{server.log}"
    assert "Application shutdown complete" in server.log and "Traceback" not in server.log, server.log
    # a's result was applied in the drain; b, which it enabled, was not run: it is held for resume
    assert tasks_called(tmp_path) == ["a"]
    case = show(tmp_path, case_id)
    assert case["status"] == "running"
    assert states(case)["a"][-1] == "completed"
    assert "completed" not in states(case).get("b", [])
    completed = [r for r in case["trace"] if r["event"] == "item.completed"]
    assert [(r["task"], r["data"]) for r in completed] == [("a", {"slow": "done"})]
    # the next engine on the store goes on: b runs (a does not run again), and the case waits at c
    resumed = cli(tmp_path, "cases", "resume", "--store", store_url(tmp_path), "--json")
    assert resumed.returncode == EXIT_WAITING, resumed.stderr
    [outcome] = orjson.loads(resumed.stdout)
    assert outcome["case_id"] == case_id and outcome["status"] == "waiting"
    assert outcome["data"] == {"slow": "done", "after": "ran"}
    assert [item["task"] for item in outcome["offered"]] == ["c"]
    assert tasks_called(tmp_path) == ["a", "b"]


@pytest.mark.parametrize("drain", ["1s", "0s"], ids=["drain-runs-out", "no-drain"])
def test_what_is_still_running_when_the_drain_ends_is_cancelled_and_runs_again_on_resume(
    tmp_path: Path, drain: str
) -> None:
    with serve(tmp_path, drain=drain) as (server, client):
        case_id = start_case(client)
        with handler_runs(tmp_path):
            server.proc.send_signal(signal.SIGTERM)
            said = server.expect(r"yawlflow: stopping.*").group(0)
            assert f"{drain} (execution.drain)" in said
            if drain != "0s":
                server.expect(r"items still running after the drain time \(1s\) are cancelled")
            # the engine has left (a cancelled, the store closed) while the handler still runs
            server.expect("Application shutdown complete")
        # Only now is the handler let go: what it returns is dropped. (Its thread is an AnyIO worker,
        # not a daemon thread: the interpreter would wait for it before the process could exit.)
        rc = server.wait()
    assert rc == 0, f"the server exited {rc} on SIGTERM:\n{server.log}"
    assert "Traceback" not in server.log, server.log
    # nothing was lost: a is in the store as started, not completed; b never ran
    assert tasks_called(tmp_path) == ["a"]
    case = show(tmp_path, case_id)
    assert case["status"] == "running"
    assert states(case)["a"] == ["enabled", "started"]
    assert "b" not in states(case)
    # resume runs a again (the same item: at-least-once), then b; the case waits at c
    resume = subprocess.Popen(
        [sys.executable, "-m", "yawlflow", "cases", "resume", "--store", store_url(tmp_path), "--json"],
        cwd=tmp_path, env=environ(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        with handler_runs(tmp_path):  # a runs again ...
            pass  # ... and is let go at once
        out, err = resume.communicate(timeout=BOUND)
    finally:
        if resume.poll() is None:
            resume.kill()
            resume.communicate()
    assert resume.returncode == EXIT_WAITING, err
    [outcome] = orjson.loads(out)
    assert outcome["case_id"] == case_id and outcome["status"] == "waiting"
    assert outcome["data"] == {"slow": "done", "after": "ran"}
    assert tasks_called(tmp_path) == ["a", "a", "b"]
    # the same item again, with the same idempotency key (docs/durability.md: at-least-once, keyed)
    (task, item, _, key), (task_again, item_again, _, key_again), _ = calls(tmp_path)
    assert (task_again, item_again, key_again) == (task, item, key) == ("a", 0, f"{case_id}/0")
    case = show(tmp_path, case_id)
    assert states(case)["a"] == ["enabled", "started", "completed"]
    assert [r["task"] for r in case["trace"] if r["event"] == "item.completed"] == ["a", "b"]
