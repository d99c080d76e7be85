"""The 43 workflow control-flow patterns and how a yawlflow spec writes each, as a table.

Derived from the catalogue (:mod:`yawlflow.patterns._catalogue`), the single source of truth, so
``yawlflow patterns``, the README and ``docs/patterns.md`` cannot disagree with the specs that run.
"""

from __future__ import annotations

from typing import Final

from ._catalogue import PATTERNS

__all__ = ("PATTERN_TABLE", "PatternRow")

PatternRow = tuple[int, str, str]
"""(number, name as in the 2006 paper, how yawlflow expresses it)."""

PATTERN_TABLE: Final[tuple[PatternRow, ...]] = tuple((p.number, p.name, p.construct) for p in PATTERNS.values())
"""One row per pattern, in number order."""
