"""WCP-3 Synchronization: an AND-join fires once, after every incoming branch has completed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp03_synchronization
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [sync]}
      c: {run: work, flows: [sync]}
      d: {run: work, flows: [sync]}
      sync: {join: and, run: work, flows: [end]}
"""

BRANCHES = ("b", "c", "d")


def _once(trace: Trace, result: Result) -> None:
    n = count(trace, "item.enabled", "sync")
    if n != 1:
        raise AssertionError(f"the join sync fired {n} times, not once")


def _after_all(trace: Trace, result: Result) -> None:
    (fired,) = positions(trace, "item.enabled", "sync")
    step = steps(trace)
    last = max(positions(trace, "item.completed", t)[0] for t in BRANCHES)
    for task in BRANCHES:
        done = positions(trace, "item.completed", task)
        if not (done and done[0] < fired):
            raise AssertionError(f"sync fired ({label(trace[fired])}) before branch {task} completed")
    if step[fired] != step[last]:
        raise AssertionError(
            f"sync fired at {label(trace[fired])}, not in the step of the last arrival ({label(trace[last])})"
        )


PATTERN = Pattern(
    number=3,
    name="Synchronization",
    definition=(
        "The convergence of two or more branches into a single subsequent branch such that the thread "
        "of control passes to the subsequent branch when all input branches have been enabled. The "
        "join fires exactly once, in the step where the last of its incoming branches completes; it "
        "never fires with a branch missing."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("the join fires exactly once", _once),
        ("the join fires only after every branch completed, at the last arrival", _after_all),
    ),
    construct="join: and: fires once every incoming flow holds a token",
)
