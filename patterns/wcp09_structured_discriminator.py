"""WCP-9 Structured Discriminator: fires on the first arrival, absorbs the others, then resets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, firings_follow, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Implicit termination, so the branches that arrive after the discriminator fired still run.
SPEC = """\
yawlflow: 1
id: wcp09_structured_discriminator
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [first]}
      c: {run: work, flows: [first]}
      d: {run: work, flows: [first]}
      first: {join: {partial: 1}, flows: [e]}
      e: {run: work, flows: [end]}
"""

BRANCHES = ("b", "c", "d")


def _first_arrival(trace: Trace, result: Result) -> None:
    fired = positions(trace, "item.completed", "first")
    if len(fired) != 1:
        raise AssertionError(f"the discriminator fired {len(fired)} times, not once")
    arrival = min(positions(trace, "item.completed", t)[0] for t in BRANCHES)
    step = steps(trace)
    if step[fired[0]] != step[arrival]:
        raise AssertionError(f"it fired at {label(trace[fired[0]])}, not at the first arrival {label(trace[arrival])}")


def _absorbed(trace: Trace, result: Result) -> None:
    for task in BRANCHES:
        if count(trace, "item.completed", task) != 1:
            raise AssertionError(f"branch {task} did not run to completion once")
    left = result.data.get("_tokens")
    if left:
        raise AssertionError(f"arrivals 2..3 must be absorbed and the join reset, but tokens are left: {left}")


PATTERN = Pattern(
    number=9,
    name="Structured Discriminator",
    definition=(
        "The convergence of two or more branches, which diverged earlier at a parallel split, into a "
        "single subsequent branch: the thread of control passes on when the first incoming branch "
        "completes. The discriminator fires exactly once, in the step of the first arrival; arrivals "
        "2..m are absorbed without firing; after the m-th arrival it resets, leaving no token behind."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("it fires once, at the first arrival", _first_arrival),
        (
            "it fires exactly when the 1-of-3 join model says, arrival by arrival",
            firings_follow("first", BRANCHES, 1, "wait"),
        ),
        ("arrivals 2..m are absorbed and the join resets", _absorbed),
    ),
    construct="join: {partial: 1} (reset: wait) after an m-way and split",
)
