"""Handlers for tests/strategies/test_ray.py, imported by name in the Ray workers (the session
cluster puts this folder on the workers' PYTHONPATH, so they are ``ray_handlers:NAME``)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

not_callable = 42


class HandlerFailed(Exception):
    """A handler's own exception class: it must come back as itself."""


def echo(value: Any) -> Any:
    return value


async def aecho(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


def fail(message: str) -> None:
    raise HandlerFailed(message)


def fail_unpicklable(message: str) -> None:
    error = ValueError(message)
    error.lock = threading.Lock()  # type: ignore[attr-defined]  # Ray cannot pickle it back
    raise error


def pid(_: Any = None) -> int:
    return os.getpid()


def block(started: str, seconds: float = 120) -> str:
    """Say it started (the file ``started``), then block in a sleep that only a kill interrupts
    (``ray.cancel(force=True)``)."""
    Path(started).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "finished"


def spin(started: str, seconds: float = 120) -> str:
    """Say it started, then run Python bytecode until ``ray.cancel(force=False)`` interrupts it
    (``KeyboardInterrupt`` between two steps) without killing the worker."""
    Path(started).write_text(str(os.getpid()))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # Python bytecode all the time: the interrupt lands between two steps
        sum(range(1000))
    return "finished"


async def ablock(started: str, seconds: float = 120) -> str:
    """Say it started, then wait in the event loop (an async actor cancels it there)."""
    Path(started).write_text(str(os.getpid()))
    await asyncio.sleep(seconds)
    return "finished"


def die() -> None:
    os._exit(3)
