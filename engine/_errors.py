"""The whole exception tree of yawlflow.

Errors are split by blame, as in h11: :class:`SpecError` is the author's spec, :class:`InvalidEventError`
is the caller of the API, :class:`ConfigError` the engine's configuration, :class:`StoreError` the
store, :class:`ConnectorError` a connector. Every message says where, what, and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = (
    "ConfigError",
    "ConnectorError",
    "InvalidEventError",
    "Problem",
    "SpecError",
    "StoreError",
    "YawlflowError",
    "YawlflowInternalError",
)


class YawlflowError(Exception):
    """Base of every error yawlflow raises on purpose."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    """One located problem found in a spec.

    Attributes:
        source: the file name (or ``<string>`` for specs given as data).
        line: 1-based line number where known, else ``None``.
        column: 1-based column where known, else ``None``.
        path: the element path, e.g. ``$.nets.main.tasks.ship.join``.
        message: what is wrong.
        hint: how to fix it (may be empty).
    """

    source: str
    path: str
    message: str
    hint: str = ""
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.path}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class SpecError(YawlflowError):
    """A spec is malformed or invalid.

    Attributes:
        problems: every problem found, not only the first, each with its place and fix.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InvalidEventError(YawlflowError):
    """An API call does not fit the case's current state (e.g. completing a withdrawn item)."""


class ConnectorError(YawlflowError):
    """A connector failed or is misconfigured.

    Args:
        message: where, what, and what to do.
        retryable: the connector's verdict: would the same call succeed if made again later?
            A 503, a reset connection or a timeout: yes; a 404, a bad config or a refused
            argument: no. A ``False`` verdict is final: no retry policy retries it.
        connector: the connector's name, where known.

    Attributes:
        retryable: as above.
        connector: as above.
    """

    def __init__(self, message: str = "", *, retryable: bool = False, connector: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.connector = connector

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only attributes survive pickling (the process strategy sends errors between processes)
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class StoreError(YawlflowError):
    """The case store failed, or its content is inconsistent."""


class ConfigError(YawlflowError):
    """The engine's configuration (or a constructor argument) is invalid.

    Attributes:
        problems: for a configuration with problems, each one located (file, line, path); else
            empty.
    """

    def __init__(self, *args: object, problems: Sequence[Problem] = ()) -> None:
        super().__init__(*args)
        self.problems: list[Problem] = list(problems)


class YawlflowInternalError(YawlflowError):
    """A broken invariant inside yawlflow: this is a bug; please report it."""
