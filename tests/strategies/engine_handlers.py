"""Handlers an engine runs on the thread and process strategies (importable by name in workers)."""

from __future__ import annotations

import os
import threading
from typing import Any


def where(data: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Say which process and thread ran the item, and the item context it got."""
    key = ctx["idempotency_key"] if isinstance(ctx, dict) else ctx.idempotency_key
    return {"pid": os.getpid(), "thread": threading.current_thread().name, "key": key}


def crash_first(data: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    """Kill the worker process on the first attempt; succeed on the next."""
    if ctx["attempt"] == 1:
        os._exit(3)
    return {"attempt": ctx["attempt"]}


def square(data: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """One instance of a multiple-instance task: square its item; fail the first attempt of item 3."""
    attempt = ctx["attempt"] if isinstance(ctx, dict) else ctx.attempt
    if data["item"] == 3 and attempt == 1:
        raise ValueError("item 3 fails its first attempt")
    return {"square": data["item"] ** 2, "pid": os.getpid()}


entered = threading.Event()
release = threading.Event()
calls: list[int] = []


def hold(data: dict[str, Any]) -> dict[str, Any]:
    """Note the call, say so, and wait (bounded) until the test releases it."""
    calls.append(data["item"])
    entered.set()
    release.wait(30)
    return {}
