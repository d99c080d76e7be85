"""Make public names report the public module, so tracebacks say ``yawlflow.SpecError``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

__all__ = ("publish",)


def publish(module: str, names: Iterable[str], namespace: dict[str, Any]) -> None:
    """Set ``__module__`` of each public class and function in ``namespace`` to ``module``."""
    for name in names:
        obj = namespace.get(name)
        if obj is not None and hasattr(obj, "__module__") and callable(obj):
            with contextlib.suppress(AttributeError, TypeError):  # builtins and C types refuse
                obj.__module__ = module
