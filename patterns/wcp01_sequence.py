"""WCP-1 Sequence: a task is enabled only after the task before it completes."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp01_sequence
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, flows: [b]}
      b: {run: work, flows: [c]}
      c: {run: work, flows: [end]}
"""

ORDER = ("a", "b", "c")


def _each_once(trace: Trace, result: Result) -> None:
    for task in ORDER:
        n = count(trace, "item.completed", task)
        if n != 1:
            raise AssertionError(f"{task} completed {n} times, not once")


def _in_order(trace: Trace, result: Result) -> None:
    for before, after in itertools.pairwise(ORDER):
        done = positions(trace, "item.completed", before)
        for event in ("item.enabled", "item.started"):
            for i in positions(trace, event, after):
                if not (done and done[0] < i):
                    raise AssertionError(
                        f"{label(trace[i])} comes before {before} completed"
                        + (f" ({label(trace[done[0]])})" if done else " (it never did)")
                    )


PATTERN = Pattern(
    number=1,
    name="Sequence",
    definition=(
        "A task in a process is enabled after the completion of a preceding task in the same process "
        "instance. Task B is enabled only after task A completes, and B is never enabled or started "
        "before A has completed; each runs once, in that order."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("each task runs exactly once", _each_once),
        ("b is enabled and started only after a completes, c only after b", _in_order),
    ),
    construct="a flow from one task to the next: flows: [b]",
)
