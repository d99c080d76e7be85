"""CEL expressions: compiled once, evaluated over case data; the only expression language.

The ``cel`` distribution's package ``__init__`` imports its command-line tool (prompt_toolkit,
rich, typer: ~0.35 s). We load only its compiled extension module, lazily, on the first
expression (~25 ms), so ``import yawlflow`` and specs without expressions pay nothing.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from functools import lru_cache
from typing import Any, Protocol

__all__ = ("CelError", "compile_expr", "evaluate")


class _Program(Protocol):
    def execute(self, context: dict[str, Any] | None = None) -> Any: ...


class CelError(Exception):
    """A CEL expression failed to compile or to evaluate; the message says why."""


_module: Any = None


def _cel() -> Any:
    global _module
    if _module is None:
        found = importlib.util.find_spec("cel")
        if found is None or not found.submodule_search_locations:  # pragma: no cover
            raise CelError("CEL support needs the 'common-expression-language' package: pip install yawlflow")
        folder = next(iter(found.submodule_search_locations))
        suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
        names = sorted(f for f in os.listdir(folder) if f.startswith("cel.") and f.endswith(suffixes))
        if not names:  # pragma: no cover
            raise CelError(f"the CEL extension module is missing from {folder}: reinstall common-expression-language")
        spec = importlib.util.spec_from_file_location("cel.cel", os.path.join(folder, names[0]))
        if spec is None or spec.loader is None:  # pragma: no cover
            raise CelError("cannot load the CEL extension module")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _module = module
    return _module


@lru_cache(maxsize=4096)
def compile_expr(source: str) -> _Program:
    """Compile a CEL expression (cached by its text).

    Raises:
        CelError: the expression does not parse.
    """
    try:
        program: _Program = _cel().compile(source)
    except ValueError as exc:
        raise CelError(str(exc).replace("\n", " ")) from None
    return program


def evaluate(source: str, variables: dict[str, Any]) -> Any:
    """Evaluate ``source`` over ``variables``.

    Raises:
        CelError: it does not parse, or evaluating it failed (an undefined name, a type error).
    """
    program = compile_expr(source)
    try:
        return program.execute(variables)
    except CelError:
        raise
    except Exception as exc:  # the extension raises RuntimeError, TypeError, ZeroDivisionError, ...
        raise CelError(f"{type(exc).__name__}: {exc}") from None
