"""WCP-11 Implicit Termination: the case ends when nothing is left to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# b reaches the output condition; d has no outgoing flow at all: there is no single end node.
SPEC = """\
yawlflow: 1
id: wcp11_implicit_termination
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, split: and, flows: [b, c]}
      b: {run: work, flows: [end]}
      c: {run: work, flows: [d]}
      d: {run: work}
"""

TASKS = ("a", "b", "c", "d")


def _all_ran(trace: Trace, result: Result) -> None:
    for task in TASKS:
        if count(trace, "item.completed", task) != 1:
            raise AssertionError(f"{task} did not run to completion exactly once")


def _nothing_withdrawn(trace: Trace, result: Result) -> None:
    cancelled = positions(trace, "item.cancelled")
    if cancelled:
        raise AssertionError(f"implicit termination withdraws nothing, but {label(trace[cancelled[0]])}")


def _when_nothing_left(trace: Trace, result: Result) -> None:
    (done,) = positions(trace, "case.completed")
    last = max(positions(trace, "item.completed"))
    step = steps(trace)
    if not (last < done and step[last] == step[done]):
        raise AssertionError(
            f"the case completed at {label(trace[done])}, not in the step where the last work ended "
            f"({label(trace[last])})"
        )


PATTERN = Pattern(
    number=11,
    name="Implicit Termination",
    definition=(
        "A given process (or sub-process) instance should terminate when there are no remaining work "
        "items that are able to be done either now or at any time in the future and the case is not "
        "in deadlock. It completes, not fails, in the step where its last work ends; a thread "
        "reaching the output condition does not end the case while others still run; nothing is "
        "withdrawn and no single end node is needed."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("every task runs to completion", _all_ran),
        ("nothing is withdrawn: the first thread to end does not end the case", _nothing_withdrawn),
        ("the case completes in the step where its last work ends", _when_nothing_left),
    ),
    construct="termination: implicit on the net: done when nothing is enabled or busy",
)
