"""WCP-10 Arbitrary Cycles: an unstructured loop with two entries and two exits."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import ends, events, label, step, tasks_of, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# b and c form a cycle that is entered at b or at c and left from either: no block structure.
SPEC = """\
yawlflow: 1
id: wcp10_arbitrary_cycles
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        external: true
        split: xor
        flows:
          - {to: b, when: "entry == 'b'"}
          - {to: c, default: true}
      b:
        run: step
        split: xor
        flows:
          - {to: done, when: "n >= limit"}
          - {to: c, default: true}
      c:
        run: step
        split: xor
        flows:
          - {to: done, when: "n >= limit"}
          - {to: b, default: true}
      done: {run: work, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    (item,) = case.work_items("offered")
    await case.complete(item.id, {"entry": rng.choice(["b", "c"]), "limit": rng.randint(1, 5)})


def _cycle(trace: Trace, result: Result) -> None:
    (choice,) = events(trace, "item.completed", "a")
    entry, limit = choice["data"]["entry"], int(choice["data"]["limit"])
    path = [t for t in tasks_of(trace, "item.completed") if t in ("b", "c")]
    want = [("b", "c")[(i + (entry == "c")) % 2] for i in range(limit)]
    if path != want:
        raise AssertionError(f"entered at {entry} with limit {limit}, the cycle must run {want}, but ran {path}")


def _exit(trace: Trace, result: Result) -> None:
    path = tasks_of(trace, "item.completed")
    if not (path[-1] == "done" and path.count("done") == 1):
        raise AssertionError(f"the cycle must be left once, into done: {path}")
    if result.data["n"] != result.data["limit"]:
        raise AssertionError(
            f"left with n={result.data['n']}, not at the limit {result.data['limit']} (last record {label(trace[-1])})"
        )


PATTERN = Pattern(
    number=10,
    name="Arbitrary Cycles",
    definition=(
        "The ability to represent cycles in a process model that have more than one entry or exit "
        "point, with no block structure imposed. The cycle runs from whichever entry the case takes, "
        "repeats along its unstructured back edges as often as the data says, and is left from "
        "whichever exit is reached; each iteration is a new run of the task, in sequence."
    ),
    spec=SPEC,
    handlers={"step": step, "work": work},
    data={"n": 0},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the cycle is entered where chosen and alternates b, c for limit runs", _cycle),
        ("the cycle is left once, from the task that reached the limit", _exit),
    ),
    construct="plain back flows to earlier tasks or conditions, any number of entries and exits",
)
