"""WCP-43 Explicit Termination: reaching the end node ends the case; the rest is withdrawn."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import ends, label, play, positions, steps, withdrawn_at, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Two branches each reach `end`: whichever does first ends the case.
SPEC = """\
yawlflow: 1
id: wcp43_explicit_termination
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: and, flows: [b, c]}
      b: {external: true, flows: [end]}
      c: {external: true, flows: [d]}
      d: {external: true, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng)


def _first_to_end(trace: Trace) -> int:
    ends_at = sorted(i for t in ("b", "d") for i in positions(trace, "item.completed", t))
    if not ends_at:
        raise AssertionError("no branch reached the end node")
    return ends_at[0]


def _ends_at_once(trace: Trace, result: Result) -> None:
    at = _first_to_end(trace)
    (done,) = positions(trace, "case.completed")
    step = steps(trace)
    if step[done] != step[at]:
        raise AssertionError(f"the end was reached at {label(trace[at])}, but the case ended at {label(trace[done])}")


def _rest_withdrawn(trace: Trace, result: Result) -> None:
    withdrawn_at(trace, _first_to_end(trace))


def _only_withdrawals(trace: Trace, result: Result) -> None:
    at = _first_to_end(trace)
    (done,) = positions(trace, "case.completed")
    for i in range(at + 1, done):
        if trace[i]["event"] != "item.cancelled":
            raise AssertionError(
                f"{label(trace[i])} between reaching the end ({label(trace[at])}) and the case's completion: "
                "the remaining work is withdrawn, not run or completed"
            )


def _nothing_after(trace: Trace, result: Result) -> None:
    (done,) = positions(trace, "case.completed")
    if done != len(trace) - 1:
        raise AssertionError(f"{label(trace[done + 1])} comes after the case completed")


PATTERN = Pattern(
    number=43,
    name="Explicit Termination",
    definition=(
        "A given process (or sub-process) instance should terminate when it reaches a nominated "
        "state, typically the designated end node: in the step the end is reached, every remaining "
        "enabled or running work item is withdrawn, the case counts as completed (not failed or "
        "cancelled), and nothing runs afterwards."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the case ends in the step the end node is reached", _ends_at_once),
        ("the remaining work is withdrawn in that step", _rest_withdrawn),
        ("once the end is reached, the remaining work is only withdrawn, never run", _only_withdrawals),
        ("nothing happens after the case completes", _nothing_after),
    ),
    construct="termination: explicit (the default): the output condition ends the case",
)
