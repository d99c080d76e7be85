"""WCP-37 Local Synchronizing Merge: in an acyclic net, an OR-join fires once every branch that
can still deliver has delivered."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._catalogue import Pattern
from ._kit import count, ends, events, label, play, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Case, Result, WorkItem

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Not block-structured: b feeds merge directly and again through e.
SPEC = """\
yawlflow: 1
id: wcp37_local_synchronizing_merge
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        external: true
        split: or
        flows:
          - {to: b, when: left}
          - {to: c, when: right}
          - {to: d, default: true}
      b: {external: true, split: and, flows: [e, merge]}
      c: {external: true, flows: [merge]}
      d: {external: true, flows: [merge]}
      e: {external: true, flows: [merge]}
      merge: {join: or, run: work, flows: [end]}
"""


def _output(item: WorkItem, rng: random.Random) -> Mapping[str, Any]:
    return {"left": rng.random() < 0.6, "right": rng.random() < 0.6} if item.task == "a" else {}


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng, output=_output)


def _activated(trace: Trace) -> list[str]:
    (done,) = events(trace, "item.completed", "a")
    data = done["data"]
    want = (["b", "e"] if data["left"] else []) + (["c"] if data["right"] else [])
    return want or ["d"]


def _once(trace: Trace, result: Result) -> None:
    n = count(trace, "item.enabled", "merge")
    if n != 1:
        raise AssertionError(f"the merge fired {n} times, not once")


def _after_all(trace: Trace, result: Result) -> None:
    (fired,) = positions(trace, "item.enabled", "merge")
    last = []
    for task in _activated(trace):
        done = positions(trace, "item.completed", task)
        if not (done and done[0] < fired):
            raise AssertionError(f"merge fired ({label(trace[fired])}) before {task} delivered")
        last.append(done[0])
    step = steps(trace)
    if step[fired] != step[max(last)]:
        raise AssertionError(
            f"merge fired at {label(trace[fired])}, not when the last branch delivered ({label(trace[max(last)])})"
        )


PATTERN = Pattern(
    number=37,
    name="Local Synchronizing Merge",
    definition=(
        "The convergence of two or more branches which diverged earlier in the process into a single "
        "subsequent branch, in an acyclic net: the thread of control passes on once every incoming "
        "branch has either delivered or can be shown, from information local to the merge, to be "
        "unable to deliver. It fires exactly once, at the last delivery, never before and never "
        "waiting for a branch that cannot deliver."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the merge fires exactly once", _once),
        ("it fires after every branch that can deliver, at the last delivery", _after_all),
    ),
    construct="join: or in an acyclic net (decided from the net's structure)",
)
