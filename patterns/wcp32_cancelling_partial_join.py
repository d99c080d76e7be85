"""WCP-32 Cancelling Partial Join: N of M; when it fires, the remaining branches are cancelled."""

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
id: wcp32_cancelling_partial_join
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [two]}
      c: {run: work, flows: [two]}
      d: {run: work, flows: [two]}
      two: {join: {partial: 2, reset: cancel}, flows: [e]}
      e: {run: work, flows: [end]}
"""

INPUTS = ("b", "c", "d")


def _rest_cancelled(trace: Trace, result: Result) -> None:
    arrivals = sorted(i for t in INPUTS for i in positions(trace, "item.completed", t))
    if len(arrivals) != 2:
        raise AssertionError(f"{len(arrivals)} branches completed: exactly N = 2 may, the rest are cancelled")
    at = arrivals[1]
    arrived = {trace[i]["task"] for i in arrivals}
    step = steps(trace)
    (fired,) = positions(trace, "item.completed", "two")
    if step[fired] != step[at]:
        raise AssertionError(f"the join fired at {label(trace[fired])}, not at the second arrival")
    for task in INPUTS:
        if task in arrived:
            continue
        gone = positions(trace, "item.cancelled", task)
        if not (gone and step[gone[0]] == step[at]):
            raise AssertionError(f"branch {task} must be cancelled when the join fires")


def _once(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "two")
    if n != 1:
        raise AssertionError(f"the join fired {n} times, not once")


PATTERN = Pattern(
    number=32,
    name="Cancelling Partial Join",
    definition=(
        "The convergence of M branches into a single subsequent branch following one or more "
        "corresponding divergences earlier in the process model: the thread of control passes on "
        "when N of the incoming branches have been enabled, and in that same step the remaining "
        "M-N branches are cancelled (running work halted, enabled work withdrawn); then the join "
        "resets."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("it fires exactly when the cancelling 2-of-3 join model says", firings_follow("two", INPUTS, 2, "cancel")),
        ("when it fires, the remaining branches are cancelled in that step", _rest_cancelled),
        ("it fires once", _once),
    ),
    construct="join: {partial: N, reset: cancel}: the remaining branches are cancelled",
)
