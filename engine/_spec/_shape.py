"""Typed reads of plain spec data, each reporting a located problem instead of raising.

Theory of operation: :class:`Reader` is the vocabulary the spec walker (``_validate``) is
written in. Every method takes the path of a value and the value, returns it in the model's
type when it fits, and otherwise records a :class:`~yawlflow._errors.Problem` at that path and
returns ``None`` (or an empty default), so the walk goes on and finds the next problem too.
CEL expressions are only collected here (with their paths); they are compiled in one batch at
the end, and only if the spec has any, because loading the CEL extension costs time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._duration import DURATION_HINT, parse_duration
from ._report import Path, Reporter, describe, did_you_mean

__all__ = ("Reader",)

_QUOTE_HINT = "quote names that YAML reads as other types, e.g. 'no', 'on', '1'"


class Reader:
    """Reads plain values at paths, reporting what does not fit to a :class:`Reporter`."""

    __slots__ = ("expressions", "report")

    def __init__(self, report: Reporter) -> None:
        self.report = report
        self.expressions: list[tuple[Path, str]] = []

    # -- containers ---------------------------------------------------------------------------

    def mapping(
        self, path: Path, value: Any, what: str = "a mapping", hint: str = ""
    ) -> dict[str, Any] | None:
        """``value`` as a dict with string keys, or ``None`` after reporting what it is instead."""
        if isinstance(value, dict) and set(map(type, value)) <= {str}:
            return value  # the common case, decoded JSON or YAML: not copied, as it is only read
        if not isinstance(value, Mapping):
            self.report.error(
                path, f"expected {what}, got {describe(value)}", hint or "write key: value pairs"
            )
            return None
        out: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, str):
                out[key] = item
            else:
                self.report.error(path, f"keys must be strings, got {describe(key)}", _QUOTE_HINT)
        return out

    def keys(
        self,
        path: Path,
        mapping: Mapping[str, Any],
        allowed: Sequence[str],
        required: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Report unknown keys (suggesting the closest allowed one) and missing required keys.

        Args:
            path: where ``mapping`` is.
            mapping: the mapping to check.
            allowed: every key it may have.
            required: the keys it must have, each with the hint shown when it is missing.

        Returns:
            The suggestion made for each unknown key that looked like a typo.
        """
        guesses: list[str] = []
        for key in mapping:
            if key in allowed:
                continue
            guess = did_you_mean(key, allowed)
            if guess is not None:
                guesses.append(guess)
            hint = f"did you mean {guess!r}?" if guess else f"use one of: {', '.join(allowed)}"
            self.report.error((*path, key), f"unknown key {key!r}", hint, key=True)
        for key, hint in (required or {}).items():
            if key not in mapping:
                self.report.error(path, f"missing key {key!r}", hint)
        return guesses

    # -- scalars ------------------------------------------------------------------------------

    def name(self, path: Path, value: Any, what: str = "a name", *, key: bool = False) -> str | None:
        """A non-empty string naming something (a task, a condition, a net, a handler).

        ``key``: the name is the mapping key at ``path``, and the problem is located there.
        """
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, str):
            self.report.error(path, f"expected {what}, got an empty string", "write a name", key=key)
        else:
            hint = _QUOTE_HINT if isinstance(value, bool | int | float) else "write a name"
            self.report.error(path, f"expected {what} (a string), got {describe(value)}", hint, key=key)
        return None

    def names(self, path: Path, value: Any, what: str = "a name") -> tuple[str, ...]:
        """A list of names."""
        if not isinstance(value, list | tuple):
            hint = f"write [{value}]" if isinstance(value, str) else ""
            self.report.error(path, f"expected a list of names, got {describe(value)}", hint or "e.g. [a, b]")
            return ()
        found = (self.name((*path, i), item, what) for i, item in enumerate(value))
        return tuple(n for n in found if n is not None)

    def integer(self, path: Path, value: Any, *, minimum: int | None = None, what: str = "") -> int | None:
        """An int (not a bool), at least ``minimum`` when given."""
        if not isinstance(value, int) or isinstance(value, bool):
            self.report.error(
                path, f"expected an integer, got {describe(value)}", "write a whole number, e.g. 2"
            )
            return None
        if minimum is not None and value < minimum:
            subject = what or render_last(path)
            self.report.error(
                path, f"{subject} must be at least {minimum}, got {value}", f"use {minimum} or more"
            )
            return None
        return value

    def boolean(self, path: Path, value: Any) -> bool | None:
        """``true`` or ``false``."""
        if isinstance(value, bool):
            return value
        self.report.error(path, f"expected true or false, got {describe(value)}", "write true or false")
        return None

    def choice(self, path: Path, value: Any, choices: Sequence[str], what: str) -> str | None:
        """One of ``choices``: ``unknown <what> 'x' (use one of: a, b)`` otherwise."""
        if isinstance(value, str) and value in choices:
            return value
        listed = f"use one of: {', '.join(choices)}"
        if isinstance(value, str):
            guess = did_you_mean(value, choices)
            hint = f"did you mean {guess!r}? {listed}" if guess else listed
            self.report.error(path, f"unknown {what} {value!r}", hint)
        else:
            self.report.error(path, f"expected a {what} name, got {describe(value)}", listed)
        return None

    def duration(self, path: Path, value: Any, *, positive: bool = False) -> tuple[str, int] | None:
        """A duration as written and in nanoseconds; zero is refused when ``positive``."""
        if not isinstance(value, str):
            hint = DURATION_HINT
            if isinstance(value, int | float) and not isinstance(value, bool):
                hint = f"write {f'{value}s'!r} for {value} seconds"
            self.report.error(path, f"expected a duration, got {describe(value)}", hint)
            return None
        try:
            ns = parse_duration(value.strip())
        except ValueError as exc:
            self.report.error(path, f"bad duration: {exc}", DURATION_HINT)
            return None
        if positive and ns == 0:
            self.report.error(
                path, f"{render_last(path)} must be longer than zero, got {value!r}", DURATION_HINT
            )
            return None
        return value, ns

    def expression(self, path: Path, value: Any, what: str = "a CEL expression") -> str | None:
        """A CEL expression (a non-empty string), kept to be compiled with the others later."""
        if isinstance(value, str) and value.strip():
            self.expressions.append((path, value))
            return value
        if isinstance(value, str):
            self.report.error(
                path, f"expected {what}, got an empty string", "write an expression, e.g. amount > 0"
            )
        else:
            hint = "write an expression in a string, e.g. 'amount > 0'"
            if isinstance(value, bool | int | float):
                hint = f"write it as a string: {_quoted(value)}"
            self.report.error(path, f"expected {what} (a string), got {describe(value)}", hint)
        return None

    def int_or_expression(self, path: Path, value: Any, *, minimum: int) -> int | str | None:
        """An integer (at least ``minimum``) or a CEL expression."""
        if isinstance(value, str):
            return self.expression(path, value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.integer(path, value, minimum=minimum)
        self.report.error(
            path,
            f"expected an integer or a CEL expression, got {describe(value)}",
            "e.g. 3, or 'len(orders)'",
        )
        return None

    def expressions_map(self, path: Path, value: Any) -> dict[str, str] | None:
        """A mapping of keys to CEL expressions (a task's ``input`` / ``output``)."""
        mapping = self.mapping(
            path, value, "a mapping of keys to CEL expressions", "e.g. {total: amount * 2}"
        )
        if mapping is None:
            return None
        out: dict[str, str] = {}
        for key, expr in mapping.items():
            checked = self.expression((*path, key), expr)
            if checked is not None:
                out[key] = checked
        return out


def render_last(path: Path) -> str:
    """The last key of ``path`` (what a message calls the value), joined to its parent's."""
    keys = [p for p in path if isinstance(p, str)]
    return ".".join(keys[-2:]) if len(keys) >= 2 else (keys[-1] if keys else "the value")


def _quoted(value: bool | int | float) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return f'"{text}"'
