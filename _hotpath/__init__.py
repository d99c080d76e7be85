"""The hot-path kernels: compiled (Cython) when built, else their pure-Python twins.

``IMPLEMENTATION`` says which was loaded: ``"cython"`` or ``"python"`` (the marking kernel's;
the OR-join and MI kernels load alike, each falling back to its pure twin on its own if its
extension is missing). Set ``YAWLFLOW_PURE_PYTHON=1`` to force the pure twins. Type checkers
always see the pure twins.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__all__ = (
    "ADD_AT_MAX",
    "ADD_OK",
    "ADD_STATIC",
    "CEL_UNKNOWN",
    "COVERABLE",
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
    "LIMIT_REACHED",
    "MI_ALL_ENDED",
    "MI_ASK",
    "MI_IDLE",
    "MI_JOIN_ALL",
    "MI_JOIN_NONE",
    "MI_JOIN_THRESHOLD",
    "MI_RUNNING",
    "MI_THRESHOLD",
    "MI_THRESHOLD_CANCEL",
    "NOT_COVERABLE",
    "SCREEN_EXACT",
    "SCREEN_FIRE",
    "SCREEN_WAIT",
    "Coverability",
    "KernelNet",
    "MIPolicy",
    "Marking",
    "OrJoinScreen",
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
from ._mi_py import (
    ADD_AT_MAX,
    ADD_OK,
    ADD_STATIC,
    CEL_UNKNOWN,
    MI_ALL_ENDED,
    MI_ASK,
    MI_IDLE,
    MI_JOIN_ALL,
    MI_JOIN_NONE,
    MI_JOIN_THRESHOLD,
    MI_RUNNING,
    MI_THRESHOLD,
    MI_THRESHOLD_CANCEL,
)
from ._orjoin_py import COVERABLE, LIMIT_REACHED, NOT_COVERABLE, SCREEN_EXACT, SCREEN_FIRE, SCREEN_WAIT

if TYPE_CHECKING:
    from ._marking_py import Marking, RoutingProgram, Worklist, completed_records
    from ._mi_py import MIPolicy
    from ._orjoin_py import Coverability, OrJoinScreen

    IMPLEMENTATION: str
else:
    if os.environ.get("YAWLFLOW_PURE_PYTHON") == "1":
        from ._marking_py import Marking, RoutingProgram, Worklist, completed_records
        from ._mi_py import MIPolicy
        from ._orjoin_py import Coverability, OrJoinScreen

        IMPLEMENTATION = "python"
    else:
        try:
            from ._marking_cy import Marking, RoutingProgram, Worklist, completed_records

            IMPLEMENTATION = "cython"
        except ImportError:
            from ._marking_py import Marking, RoutingProgram, Worklist, completed_records

            IMPLEMENTATION = "python"
        try:
            from ._orjoin_cy import Coverability, OrJoinScreen
        except ImportError:
            from ._orjoin_py import Coverability, OrJoinScreen
        try:
            from ._mi_cy import MIPolicy
        except ImportError:
            from ._mi_py import MIPolicy
