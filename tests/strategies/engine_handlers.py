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
