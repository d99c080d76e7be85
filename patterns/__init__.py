"""The catalogue of the 43 workflow control-flow patterns (WCP-1 … WCP-43), as runnable specs."""

from ._table import PATTERN_TABLE as PATTERN_TABLE

__all__: tuple[str, ...] = ("PATTERN_TABLE",)
