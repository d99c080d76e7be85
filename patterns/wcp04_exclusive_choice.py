"""WCP-4 Exclusive Choice: exactly one branch is taken, chosen from the data at the split."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, events, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp04_exclusive_choice
nets:
  main:
    input: start
    output: end
    tasks:
      receive:
        external: true
        split: xor
        flows:
          - {to: large, when: "amount >= 1000", order: 1}
          - {to: medium, when: "amount >= 100", order: 2}
          - {to: small, default: true}
      large: {run: work, flows: [end]}
      medium: {run: work, flows: [end]}
      small: {run: work, flows: [end]}
"""

BRANCHES = ("large", "medium", "small")


def _expected(amount: int) -> str:
    # order: 1 before order: 2, so 5000 takes large although medium's predicate holds too
    return "large" if amount >= 1000 else "medium" if amount >= 100 else "small"


async def _drive(case: Case, rng: random.Random) -> None:
    (item,) = case.work_items("offered")
    await case.complete(item.id, {"amount": rng.choice([5, 50, 500, 5000])})


def _one_branch(trace: Trace, result: Result) -> None:
    taken = [t for t in BRANCHES if count(trace, "item.enabled", t)]
    if len(taken) != 1:
        raise AssertionError(f"branches {taken} were taken, not exactly one")
    if count(trace, "item.completed", taken[0]) != 1:
        raise AssertionError(f"{taken[0]} did not complete once")


def _by_data(trace: Trace, result: Result) -> None:
    (done,) = events(trace, "item.completed", "receive")
    amount = int(done["data"]["amount"])
    want = _expected(amount)
    taken = [t for t in BRANCHES if count(trace, "item.enabled", t)]
    if taken != [want]:
        raise AssertionError(f"amount {amount} must take {want} (first true flow by order), but took {taken}")


PATTERN = Pattern(
    number=4,
    name="Exclusive Choice",
    definition=(
        "The divergence of a branch into two or more branches such that, when the incoming branch is "
        "enabled, the thread of control is passed to exactly one of the outgoing branches, chosen by "
        "evaluating data at the split. When several conditions hold, a fixed precedence (order) picks "
        "one; when none holds, the default branch is taken; the other branches are never enabled."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("exactly one branch is taken and runs once", _one_branch),
        ("the branch taken is the first whose condition holds, by order (else the default)", _by_data),
    ),
    construct="split: xor with flows[].when (CEL), order and one default flow",
)
