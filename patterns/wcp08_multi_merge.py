"""WCP-8 Multi-Merge: every arrival triggers the successor separately."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, firings_follow, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Implicit termination: the first thread to reach `end` must not withdraw the others.
SPEC = """\
yawlflow: 1
id: wcp08_multi_merge
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [log]}
      c: {run: work, flows: [log]}
      d: {run: work, flows: [log]}
      log: {join: xor, run: work, flows: [end]}
"""


def _k_runs(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "log")
    if n != 3:
        raise AssertionError(f"3 threads arrived at the merge, so log must run 3 times, not {n}")


PATTERN = Pattern(
    number=8,
    name="Multi-Merge",
    definition=(
        "The convergence of two or more branches into a single subsequent branch such that each "
        "enablement of an incoming branch results in the thread of control being passed to the "
        "subsequent branch. Every arrival triggers the successor separately, in the step of that "
        "arrival: k threads arriving give k runs of the successor; arrivals are neither merged nor "
        "lost."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("k = 3 arriving threads give 3 runs of the successor", _k_runs),
        (
            "each arrival triggers the successor once, in its own step",
            firings_follow("log", ("b", "c", "d"), 1, "threads", fire_event="item.enabled"),
        ),
    ),
    construct="join: xor fed by concurrent branches: it fires once per arriving token",
)
