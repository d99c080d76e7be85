"""Make public names report the public module, so tracebacks say ``yawlflow.SpecError``.

msgspec Structs keep their own module: msgspec resolves a Struct's string annotations (this
package uses ``from __future__ import annotations``) in the module ``__module__`` names, so a
renamed Struct could no longer be decoded or inspected.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

__all__ = ("lazy", "publish")


def publish(module: str, names: Iterable[str], namespace: dict[str, Any]) -> None:
    """Set ``__module__`` of each public class and function in ``namespace`` to ``module``."""
    for name in names:
        obj = namespace.get(name)
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            continue
        if obj is not None and hasattr(obj, "__module__") and callable(obj):
            with contextlib.suppress(AttributeError, TypeError):  # builtins and C types refuse
                obj.__module__ = module


def lazy(module: str, names: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports ``names`` (public name -> submodule,
    relative to ``module``) on first use, publishes each and keeps it in ``namespace``."""

    def __getattr__(name: str) -> Any:
        submodule = names.get(name)
        if submodule is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(submodule, module), name)
        publish(module, [name], {name: value})
        namespace[name] = value
        return value

    return __getattr__
