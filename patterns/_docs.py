"""``docs/patterns.md``, generated from the catalogue: the support matrix and every pattern's spec.

The peers' ratings live here, each with its source; everything about yawlflow comes from the
catalogue itself. ``docs/_gen_patterns.py`` writes the file; a test fails when it is stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._catalogue import PATTERNS, Pattern

__all__ = ("BPMN", "SPIFF", "YAWL", "render_markdown")

DIRECT: Final = "+"
PARTIAL: Final = "+/\N{EN DASH}"
NONE: Final = "\N{EN DASH}"
UNKNOWN: Final = "?"

# YAWL: Russell & ter Hofstede, Modern Business Process Automation (2010), Table 2.5.
# 31 direct + 3 partial; it lacks 11, 23, 24, 28, 30-32, 41, 42 and is partial on 21, 27, 36.
_YAWL_LACKS: Final = frozenset({11, 23, 24, 28, 30, 31, 32, 41, 42})
_YAWL_PARTIAL: Final = frozenset({21, 27, 36})
YAWL: Final[Mapping[int, str]] = {
    n: NONE if n in _YAWL_LACKS else PARTIAL if n in _YAWL_PARTIAL else DIRECT for n in range(1, 44)
}
"""YAWL's rating per pattern (Table 2.5)."""

# BPMN: the workflowpatterns.com BPMN evaluation (Wohed et al.) for 1-17, and PATTERNS.md for the
# patterns BPMN 2.0 lacks outright (15, 17, 18, 27, 33, 36). The rest are not transcribed here.
_BPMN_KNOWN: Final[Mapping[int, str]] = {
    **{n: DIRECT for n in (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16)},
    9: PARTIAL,
    **{n: NONE for n in (15, 17, 18, 27, 33, 36)},
}
BPMN: Final[Mapping[int, str]] = {n: _BPMN_KNOWN.get(n, UNKNOWN) for n in range(1, 44)}
"""BPMN 2.0's rating per pattern, ``?`` where not transcribed from the evaluation."""

# SpiffWorkflow: its own docs' list (doc/core/patterns.rst) claims every pattern but 21 ("NOT
# IMPLEMENTED"); PATTERNS.md lists what its tests actually exercise.
_SPIFF_CAVEATS: Final[Mapping[int, str]] = {
    15: "claimed; its test is not run",
    17: "claimed; tested without an interleaving constraint",
    18: "claimed; implemented as a latch",
    22: "claimed; runs only through the serializer",
    28: "claimed; its test blocks nothing",
    31: "claimed; its test blocks nothing",
    40: "claimed; tested without an interleaving constraint",
}
SPIFF: Final[Mapping[int, str]] = {
    n: f"{NONE} (not implemented)" if n == 21 else _SPIFF_CAVEATS.get(n, "+ (claimed)") for n in range(1, 44)
}
"""SpiffWorkflow's claimed support per pattern, with the caveats its tests show."""

_HEADER = """\
<!-- Generated from the catalogue (yawlflow.patterns) by docs/_gen_patterns.py: do not edit.
     Regenerate with: python docs/_gen_patterns.py
     tests/patterns/test_catalogue.py fails when this file is stale. -->

# The 43 workflow control-flow patterns

yawlflow runs all 43 control-flow patterns of Russell, ter Hofstede, van der Aalst & Mulyar,
*Workflow Control-Flow Patterns: A Revised View* (BPM Center Report BPM-06-22, 2006) **directly**:
each is written with the spec constructs of [the spec reference](spec-reference.md), not simulated.
Every pattern below is a runnable entry of the catalogue `yawlflow.patterns`: a definition, a
minimal spec, and the trace properties that define the pattern, checked for many seeds on asyncio
and trio by `tests/patterns/test_catalogue.py`. Run one yourself:

```
yawlflow patterns run 17 --seed 3
```

## Support matrix

Ratings: `+` direct support, `+/\N{EN DASH}` partial, `\N{EN DASH}` none, `?` not transcribed here (see the source).

"""

_SOURCES = """\

Sources of the peers' ratings:

* **YAWL**: N. Russell and A.H.M. ter Hofstede, in *Modern Business Process Automation: YAWL and
  its Support Environment* (Springer, 2010), Table 2.5: 31 patterns direct and 3 partial; YAWL
  lacks 11, 23, 24, 28, 30, 31, 32, 41 and 42 and is partial on 21, 27 and 36.
* **BPMN 2.0**: the BPMN evaluation on workflowpatterns.com
  (<http://workflowpatterns.com/evaluations/standard/bpmn.php>, P. Wohed et al.) for 1\N{EN DASH}17, which
  rates the constructs of BPMN 1.0 that BPMN 2.0 keeps; and, for BPMN 2.0, the patterns it lacks
  outright (15, 17, 18, 27, 33, 36) as listed in the project's pattern brief. `?`: not yet
  transcribed from the evaluation.
* **SpiffWorkflow**: its own list of supported patterns (`doc/core/patterns.rst`, "Supported
  Workflow Patterns"), which claims every pattern but 21; the caveats are what its own test suite
  shows (15 not run; 17 and 40 without an interleaving constraint; 18 as a latch; 22 only through
  the serializer; nothing blocked for 28 and 31).
"""


def _md(text: str) -> str:
    """Text for a Markdown cell or paragraph: angle brackets and pipes escaped."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "&#124;")


def _anchor(p: Pattern) -> str:
    return f"wcp-{p.number}-{p.name.lower().replace(' ', '-')}"


def _row(p: Pattern) -> str:
    cells = (
        str(p.number),
        f"[{p.name}](#{_anchor(p)})",
        f"+ direct: {_md(p.construct)}",
        YAWL[p.number],
        BPMN[p.number],
        SPIFF[p.number],
    )
    return "| " + " | ".join(cells) + " |"


def _section(p: Pattern) -> str:
    props = "\n".join(f"* {name}" for name, _ in p.properties)
    return (
        f"### {p.title}\n\n"
        f"{p.definition}\n\n"
        f"**yawlflow** (direct): {_md(p.construct)}. Run it: `yawlflow patterns run {p.number} --seed 0`.\n\n"
        f"Properties checked on every run:\n\n{props}\n\n"
        f"```yaml\n{p.spec.rstrip()}\n```\n"
    )


def render_markdown() -> str:
    """The text of ``docs/patterns.md``: the support matrix and, per pattern, its spec.

    Returns:
        The Markdown document, ending with a newline.
    """
    patterns = list(PATTERNS.values())
    lines = [
        "| WCP | Pattern | yawlflow | YAWL | BPMN 2.0 | SpiffWorkflow |",
        "|---:|---|---|:---:|:---:|---|",
        *(_row(p) for p in patterns),
    ]
    yawl = sum(YAWL[p.number] == DIRECT for p in patterns), sum(YAWL[p.number] == PARTIAL for p in patterns)
    summary = f"\nyawlflow: {len(patterns)} of 43 direct. YAWL: {yawl[0]} direct, {yawl[1]} partial (Table 2.5).\n"
    sections = "\n".join(_section(p) for p in patterns)
    return _HEADER + "\n".join(lines) + "\n" + summary + _SOURCES + "\n## The patterns\n\n" + sections
