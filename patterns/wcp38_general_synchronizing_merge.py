"""WCP-38 General Synchronizing Merge: an OR-join in a net with a loop fires when no unmarked
input can still become marked."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._catalogue import Pattern
from ._kit import count, ends, label, play, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Case, Result, WorkItem

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# b and retry form a loop on one branch; c is the other branch; merge must wait while the loop
# may still deliver, and must not wait once it cannot.
SPEC = """\
yawlflow: 1
id: wcp38_general_synchronizing_merge
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
          - {to: c, when: "!left || right"}
      b: {external: true, flows: [retry]}
      retry:
        external: true
        split: xor
        flows:
          - {to: b, when: again}
          - {to: merge, default: true}
      c: {external: true, flows: [merge]}
      merge: {join: or, run: work, flows: [end]}
"""

BRANCH = ("b", "retry", "c")


async def _drive(case: Case, rng: random.Random) -> None:
    loops = 0

    def output(item: WorkItem, rng: random.Random) -> Mapping[str, Any]:
        nonlocal loops
        if item.task == "a":
            return {"left": rng.random() < 0.7, "right": rng.random() < 0.6}
        if item.task == "retry":
            loops += 1
            return {"again": loops < 3 and rng.random() < 0.6}
        return {}

    await play(case, rng, output=output)


def _once(trace: Trace, result: Result) -> None:
    n = count(trace, "item.enabled", "merge")
    if n != 1:
        raise AssertionError(f"the merge fired {n} times, not once")


def _not_early(trace: Trace, result: Result) -> None:
    (fired,) = positions(trace, "item.enabled", "merge")
    late = [i for t in BRANCH for i in positions(trace, task=t) if i > fired]
    if late:
        raise AssertionError(
            f"merge fired at {label(trace[fired])} while an input could still be marked: "
            f"later {label(trace[min(late)])}"
        )


def _no_deadlock(trace: Trace, result: Result) -> None:
    (fired,) = positions(trace, "item.enabled", "merge")
    last = max(i for t in BRANCH for i in positions(trace, "item.completed", t))
    step = steps(trace)
    if step[fired] != step[last]:
        raise AssertionError(
            f"merge fired at {label(trace[fired])}, not as soon as no input could be marked any more "
            f"({label(trace[last])})"
        )


PATTERN = Pattern(
    number=38,
    name="General Synchronizing Merge",
    definition=(
        "The convergence of two or more branches which diverged earlier in the process into a single "
        "subsequent branch, in any net, loops included: the merge fires when at least one input is "
        "marked and no unmarked input can still become marked from the current state without the "
        "merge firing first. It neither fires early (no branch work follows its firing) nor waits "
        "longer than that (it fires in the step the last possible delivery is made)."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the merge fires exactly once", _once),
        ("it never fires while an input can still become marked", _not_early),
        ("it fires as soon as no input can become marked: no deadlock, no delay", _no_deadlock),
    ),
    construct="join: or in any net, loops included (non-local OR-join analysis)",
)
