"""``yawlflow serve`` in a child process, for tests: wait for uvicorn's "Uvicorn running on URL"
line (``--port 0`` picks a free port and that line says which), never for time to pass."""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

STARTUP = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


@dataclass
class Served:
    """A running server: its base URL and every line it has printed so far (stdout and stderr)."""

    url: str
    output: list[str]


@contextlib.contextmanager
def serving(cmd: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Iterator[Served]:
    """Run ``cmd`` (a ``yawlflow serve --port 0 ...`` command line) until the block ends, then
    SIGTERM it (uvicorn stops, the app's lifespan leaves the engine) and wait for it."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            cwd=cwd, env=None if env is None else dict(env))
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def drain() -> None:  # read every line, so that the child never blocks on a full pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=drain, name="serve-output", daemon=True)
    reader.start()
    try:
        while True:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                pytest.fail(f"{' '.join(cmd)}: no 'Uvicorn running on' line within 60 s:\n{''.join(output)}")
            if line is None:
                pytest.fail(f"{' '.join(cmd)} exited ({proc.wait()}) before serving:\n{''.join(output)}")
            if found := STARTUP.search(line):
                break
        yield Served(url=found.group(1), output=output)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
