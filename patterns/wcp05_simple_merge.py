"""WCP-5 Simple Merge: each arrival passes control on, without synchronisation."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp05_simple_merge
nets:
  main:
    input: start
    output: end
    tasks:
      receive:
        external: true
        split: xor
        flows:
          - {to: by_post, when: "channel == 'post'"}
          - {to: by_mail, default: true}
      by_post: {run: work, flows: [archive]}
      by_mail: {run: work, flows: [archive]}
      archive: {join: xor, run: work, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    (item,) = case.work_items("offered")
    await case.complete(item.id, {"channel": rng.choice(["post", "mail"])})


def _once(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "archive")
    if n != 1:
        raise AssertionError(f"the merge's successor archive ran {n} times, not once")


def _no_wait(trace: Trace, result: Result) -> None:
    step = steps(trace)
    arrivals = [i for t in ("by_post", "by_mail") for i in positions(trace, "item.completed", t)]
    if len(arrivals) != 1:
        raise AssertionError(f"{len(arrivals)} branches arrived at the merge, not one")
    (fired,) = positions(trace, "item.enabled", "archive")
    if not (fired > arrivals[0] and step[fired] == step[arrivals[0]]):
        raise AssertionError(
            f"archive was enabled at {label(trace[fired])}, not in the step of the arrival "
            f"{label(trace[arrivals[0]])}: a simple merge does not wait"
        )


PATTERN = Pattern(
    number=5,
    name="Simple Merge",
    definition=(
        "The convergence of two or more branches into a single subsequent branch such that each "
        "enablement of an incoming branch results in the thread of control being passed to the "
        "subsequent branch, without synchronisation. After an exclusive choice exactly one branch "
        "arrives, and the successor runs exactly once, in the step of that arrival."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the successor runs exactly once", _once),
        ("the arrival passes control on at once, without waiting for the other branch", _no_wait),
    ),
    construct="join: xor (the default) after an exclusive choice",
)
