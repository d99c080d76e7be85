"""Element paths, source positions and the problem collector shared by the spec loader.

Theory of operation: every check in ``_validate`` and ``_graph`` names the place of what it
found as a *path*, a tuple of mapping keys and list indexes from the top of the document
(``("nets", "main", "tasks", "ship", "join")``). A :class:`Reporter` turns a path into the
``$.nets.main.tasks.ship.join`` text of :class:`~yawlflow._errors.Problem` and asks a
:class:`Locator` for its line and column. Locators come from the parsers (YAML node marks, a
JSON position scan); data handed in as Python objects has none. A path that was not recorded
(a value reached through a YAML alias, a key that is missing) is located at its nearest
recorded ancestor, which is where the author has to look anyway.

Nothing here raises: checks keep going after a problem, so that one ``SpecError`` can list
every problem in the spec at once.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from .._errors import Problem

__all__ = (
    "Locator",
    "Marks",
    "Path",
    "Position",
    "Reporter",
    "describe",
    "did_you_mean",
    "render_path",
)

Path = tuple[str | int, ...]
"""The place of a value: mapping keys and list indexes from the top of the document."""

Position = tuple[int, int]
"""A 1-based ``(line, column)``."""

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def render_path(path: Path) -> str:
    """Render ``path`` as ``$.nets.main.tasks.receive.flows[1]``.

    Keys that are not plain names are quoted: ``$.nets.main.tasks["ship it"]``.
    """
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            parts.append(f".{part}")
        else:
            parts.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(parts)


class Locator(Protocol):
    """Where in the source a path's value (or its key) was written."""

    def locate(self, path: Path, *, key: bool = False) -> Position | None:
        """The position of ``path`` (of its key when ``key``), or of its nearest located ancestor."""
        ...


class Marks:
    """A :class:`Locator` over recorded positions of values and of mapping keys."""

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.values: dict[Path, Position] = {}
        self.keys: dict[Path, Position] = {}

    def locate(self, path: Path, *, key: bool = False) -> Position | None:
        """The position of ``path`` (of its key when ``key``), or of its nearest located ancestor."""
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return None


class LazyMarks:
    """A :class:`Locator` that builds its :class:`Marks` on first use (they cost a second scan)."""

    __slots__ = ("_build", "_marks")

    def __init__(self, build: Callable[[], Marks]) -> None:
        self._build = build
        self._marks: Marks | None = None

    def locate(self, path: Path, *, key: bool = False) -> Position | None:
        """The position of ``path`` (of its key when ``key``), or of its nearest located ancestor."""
        if self._marks is None:
            self._marks = self._build()
        return self._marks.locate(path, key=key)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name``, if one is close enough to be a likely typo.

    A candidate qualifies when it is similar as a whole (``difflib`` ratio >= 0.6: ``shp`` for
    ``ship``), or when its beginning is very similar (>= 0.8: ``chek`` for ``check_credit``).
    """
    folded = name.casefold()
    best, best_score = None, 0.0
    for candidate in sorted(set(candidates)):
        other = candidate.casefold()
        whole = difflib.SequenceMatcher(None, folded, other).ratio()
        score = whole if whole >= 0.6 else 0.0
        if len(other) > len(folded) + 1:
            head = difflib.SequenceMatcher(None, folded, other[: len(folded) + 1]).ratio()
            if head >= 0.8:
                score = max(score, 0.95 * head)
        if score > best_score:
            best, best_score = candidate, score
    return best


def describe(value: Any) -> str:
    """Name the type (and a short rendering) of a value found where another was expected."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"bool {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"{type(value).__name__} {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"str {shown!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


class Reporter:
    """Collects :class:`Problem` objects for one spec source."""

    __slots__ = ("locator", "problems", "source")

    def __init__(self, source: str, locator: Locator | None = None) -> None:
        self.source = source
        self.locator = locator
        self.problems: list[Problem] = []

    def error(self, path: Path, message: str, hint: str = "", *, key: bool = False) -> None:
        """Record a problem at ``path`` (located at its key when ``key``)."""
        position = self.locator.locate(path, key=key) if self.locator is not None else None
        line, column = position if position is not None else (None, None)
        self.problems.append(
            Problem(
                source=self.source,
                path=render_path(path),
                message=message,
                hint=hint,
                line=line,
                column=column,
            )
        )

    def missing_name(
        self, path: Path, what: str, name: str, candidates: Sequence[str], hint: str
    ) -> str | None:
        """Record "no <what> '<name>'", suggesting the closest candidate; return that candidate."""
        guess = did_you_mean(name, candidates)
        self.error(path, f"no {what} {name!r}", f"did you mean {guess!r}?" if guess else hint)
        return guess

    def sorted_problems(self) -> list[Problem]:
        """The problems without duplicates, in source order (unlocated ones last, as found)."""
        unique = list(dict.fromkeys(self.problems))
        return sorted(
            unique,
            key=lambda p: (p.line is None, p.line or 0, p.column or 0),
        )
