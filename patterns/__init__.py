"""The catalogue of the 43 workflow control-flow patterns (WCP-1 … WCP-43), as runnable specs.

Each pattern (Russell, ter Hofstede, van der Aalst & Mulyar, *Workflow Control-Flow Patterns: A
Revised View*, 2006) comes with a precise definition, a minimal spec that writes it directly, and
the trace properties that define it::

    from yawlflow.patterns import check, get, run_pattern

    result = run_pattern(17, seed=3)            # deterministic: same seed, same trace, any backend
    assert all(v.ok for v in check(17, result))
    print(get(17).spec)
"""

from .._publish import publish as _publish
from ._catalogue import BACKENDS as BACKENDS
from ._catalogue import PATTERNS as PATTERNS
from ._catalogue import Check as Check
from ._catalogue import Drive as Drive
from ._catalogue import Handler as Handler
from ._catalogue import Pattern as Pattern
from ._catalogue import Property as Property
from ._catalogue import Trace as Trace
from ._catalogue import Verdict as Verdict
from ._catalogue import check as check
from ._catalogue import get as get
from ._catalogue import run_pattern as run_pattern
from ._docs import render_markdown as render_markdown
from ._table import PATTERN_TABLE as PATTERN_TABLE
from ._table import PatternRow as PatternRow

__all__: tuple[str, ...] = (
    "BACKENDS",
    "PATTERNS",
    "PATTERN_TABLE",
    "Check",
    "Drive",
    "Handler",
    "Pattern",
    "PatternRow",
    "Property",
    "Trace",
    "Verdict",
    "check",
    "get",
    "render_markdown",
    "run_pattern",
)

_publish(__name__, __all__, globals())
