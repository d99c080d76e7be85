"""The hot-path kernels: compiled (Cython) when built, else their pure-Python twins.

``IMPLEMENTATION`` says which was loaded: ``"cython"`` or ``"python"``. Set
``YAWLFLOW_PURE_PYTHON=1`` to force the pure twins. Type checkers always see the pure twin.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__all__ = (
    "FIRE_BUDGET",
    "FIRE_EMPTY",
    "FIRE_END",
    "FIRE_HANDOFF",
    "IMPLEMENTATION",
    "JOIN_AND",
    "JOIN_OR",
    "JOIN_PARTIAL",
    "JOIN_THREADS",
    "JOIN_XOR",
    "KernelNet",
    "Marking",
    "RoutingProgram",
    "Worklist",
    "completed_records",
)

from ._marking_py import (
    FIRE_BUDGET,
    FIRE_EMPTY,
    FIRE_END,
    FIRE_HANDOFF,
    JOIN_AND,
    JOIN_OR,
    JOIN_PARTIAL,
    JOIN_THREADS,
    JOIN_XOR,
    KernelNet,
)

if TYPE_CHECKING:
    from ._marking_py import Marking, RoutingProgram, Worklist, completed_records

    IMPLEMENTATION: str
else:
    if os.environ.get("YAWLFLOW_PURE_PYTHON") == "1":
        from ._marking_py import Marking, RoutingProgram, Worklist, completed_records

        IMPLEMENTATION = "python"
    else:
        try:
            from ._marking_cy import Marking, RoutingProgram, Worklist, completed_records

            IMPLEMENTATION = "cython"
        except ImportError:
            from ._marking_py import Marking, RoutingProgram, Worklist, completed_records

            IMPLEMENTATION = "python"
