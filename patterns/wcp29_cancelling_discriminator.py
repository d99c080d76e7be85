"""WCP-29 Cancelling Discriminator: the first arrival fires the join and cancels the other
incoming branches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, firings_follow, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp29_cancelling_discriminator
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [first]}
      c: {run: work, flows: [first]}
      d: {run: work, flows: [first]}
      first: {join: {partial: 1, reset: cancel}, flows: [e]}
      e: {run: work, flows: [end]}
"""

INPUTS = ("b", "c", "d")


def _winner(trace: Trace) -> tuple[int, str]:
    arrivals = sorted(i for t in INPUTS for i in positions(trace, "item.completed", t))
    if not arrivals:
        raise AssertionError("no branch arrived")
    return arrivals[0], str(trace[arrivals[0]]["task"])


def _others_cancelled(trace: Trace, result: Result) -> None:
    at, winner = _winner(trace)
    step = steps(trace)
    for task in INPUTS:
        if task == winner:
            continue
        gone = positions(trace, "item.cancelled", task)
        if not (gone and step[gone[0]] == step[at]):
            raise AssertionError(
                f"{winner} arrived first ({label(trace[at])}): branch {task} must be cancelled in that step"
            )
        if count(trace, "item.completed", task):
            raise AssertionError(f"cancelled branch {task} still completed")


def _once(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "first")
    if n != 1:
        raise AssertionError(f"the discriminator fired {n} times, not once")


PATTERN = Pattern(
    number=29,
    name="Cancelling Discriminator",
    definition=(
        "The convergence of two or more branches into a single subsequent branch following one or "
        "more corresponding divergences earlier in the process model: the thread of control passes "
        "on when the first active incoming branch has been enabled, and in that same step the "
        "remaining incoming branches are cancelled (running work halted, enabled work withdrawn); "
        "then the discriminator resets."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("it fires exactly when the cancelling 1-of-3 join model says", firings_follow("first", INPUTS, 1, "cancel")),
        ("on the first arrival the other branches are cancelled, in that step", _others_cancelled),
        ("it fires once", _once),
    ),
    construct="join: {partial: 1, reset: cancel}: the other incoming branches are cancelled",
)
