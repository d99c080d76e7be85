"""WCP-30 Structured Partial Join: fires when N of M branches have arrived, ignores the rest,
and resets after all M."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, firings_follow, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Implicit termination: the third branch still runs after the join fired.
SPEC = """\
yawlflow: 1
id: wcp30_structured_partial_join
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [two]}
      c: {run: work, flows: [two]}
      d: {run: work, flows: [two]}
      two: {join: {partial: 2}, flows: [e]}
      e: {run: work, flows: [end]}
"""

INPUTS = ("b", "c", "d")


def _at_second(trace: Trace, result: Result) -> None:
    fired = positions(trace, "item.completed", "two")
    if len(fired) != 1:
        raise AssertionError(f"the 2-of-3 join fired {len(fired)} times, not once")
    second = sorted(i for t in INPUTS for i in positions(trace, "item.completed", t))[1]
    step = steps(trace)
    if step[fired[0]] != step[second]:
        raise AssertionError(f"it fired at {label(trace[fired[0]])}, not at the second arrival {label(trace[second])}")


def _rest_ignored(trace: Trace, result: Result) -> None:
    for task in INPUTS:
        if count(trace, "item.completed", task) != 1:
            raise AssertionError(f"branch {task} must run to completion")
    if result.data.get("_tokens"):
        raise AssertionError(f"the join must reset after all 3 arrived: {result.data.get('_tokens')}")


PATTERN = Pattern(
    number=30,
    name="Structured Partial Join",
    definition=(
        "The convergence of M branches, which diverged earlier at a parallel split, into a single "
        "subsequent branch: the thread of control passes on when N of the incoming branches have "
        "been enabled (here 2 of 3), in the step of the N-th arrival. The remaining M-N arrivals are "
        "absorbed without firing, and the join resets once all M have arrived."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("it fires once, at the N-th arrival", _at_second),
        ("it fires exactly when the 2-of-3 join model says", firings_follow("two", INPUTS, 2, "wait")),
        ("the other M-N arrivals are absorbed and the join resets", _rest_ignored),
    ),
    construct="join: {partial: N} (N of M) in a structured block",
)
