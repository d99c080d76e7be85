"""Graceful shutdown under ``yawlflow run`` (issue 8): SIGTERM stops the wait, the engine drains
its running items (``execution.drain``) and starts nothing new; with a durable store nothing is
lost and ``cases resume`` goes on. The handler and the test meet on named pipes, not sleeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from yawlflow.cli import EXIT_WAITING

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes (os.mkfifo) are POSIX only")

SPEC = """\
yawlflow: 1
id: drained
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: "sigterm_handlers:slow", flows: [b]}
      b: {run: "sigterm_handlers:after", flows: [c]}
      c: {external: true, flows: [end]}
"""

HANDLERS = """\
import os


def slow(data):
    folder = os.environ["FIFO_DIR"]
    with open(os.path.join(folder, "started"), "w") as pipe:  # blocks until the test opens it
        pipe.write("started")
    with open(os.path.join(folder, "release")) as pipe:  # blocks until the test writes
        pipe.read()
    return {"slow": "done"}


def after(data):
    return {"after": "ran"}
"""


def test_sigterm_drains_the_running_item_and_starts_nothing_new(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "sigterm_handlers.py").write_text(HANDLERS)
    (tmp_path / "yawlflow.yaml").write_text("handlers: {allow: [sigterm_handlers]}\nexecution: {drain: 60s}\n")
    os.mkfifo(tmp_path / "started")
    os.mkfifo(tmp_path / "release")
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    child = subprocess.Popen(
        [sys.executable, "-m", "yawlflow", "run", str(tmp_path / "spec.yaml"), "--store", store, "--json"],
        cwd=tmp_path, env={**os.environ, "FIFO_DIR": str(tmp_path)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        with open(tmp_path / "started") as pipe:  # returns once the handler runs
            assert pipe.read() == "started"
        child.send_signal(signal.SIGTERM)
        assert child.stderr is not None
        said = child.stderr.readline()  # the engine has stopped taking new work when it says so
        assert "SIGTERM: stopping" in said
        with open(tmp_path / "release", "w") as pipe:  # the handler finishes during the drain
            pipe.write("go")
        out, err = child.communicate(timeout=60)
        err = said + err
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == EXIT_WAITING, err
    assert "SIGTERM: stopping" in err and "yawlflow cases resume" in err
    payload = orjson.loads(out)
    assert payload["data"] == {"slow": "done"}  # a's result was applied in the drain ...
    assert [r["task"] for r in payload["trace"] if r["event"] == "item.completed"] == ["a"]
    # ... and b, which it enabled, was not run: it runs when the case is resumed
    resumed = subprocess.run([sys.executable, "-m", "yawlflow", "cases", "resume", "--store", store, "--json"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert resumed.returncode == EXIT_WAITING, resumed.stderr
    [case] = orjson.loads(resumed.stdout)
    assert case["data"] == {"slow": "done", "after": "ran"}
