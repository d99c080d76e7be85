"""WCP-16 Deferred Choice: all alternatives are offered; the first one started wins, and the
others are withdrawn in the same atomic step."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import ends, label, positions, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Two offered alternatives and a timeout: whichever starts first (the timer, when nobody acts)
# takes the one token of `start`.
SPEC = """\
yawlflow: 1
id: wcp16_deferred_choice
nets:
  main:
    input: start
    output: end
    conditions:
      start: {flows: [approve, reject, expire]}
    tasks:
      approve: {external: true, flows: [ship]}
      reject: {external: true, flows: [notify]}
      expire: {timer: {after: 1h}, flows: [notify]}
      ship: {run: work, flows: [end]}
      notify: {run: work, flows: [end]}
"""

ALTERNATIVES = ("approve", "reject", "expire")


async def _drive(case: Case, rng: random.Random) -> None:
    winner = rng.choice(ALTERNATIVES)
    if winner == "expire":
        return  # nobody acts: the virtual clock jumps an hour and the timer wins
    (item,) = [w for w in case.work_items("offered") if w.task == winner]
    await case.start_item(item.id)
    await case.complete(item.id)


def _offered_together(trace: Trace, result: Result) -> None:
    first_start = min(positions(trace, "item.started"), default=len(trace))
    for task in ALTERNATIVES:
        event = "item.enabled" if task == "expire" else "item.offered"
        found = positions(trace, event, task)
        if not (found and found[0] < first_start):
            raise AssertionError(f"{task} was not available before the choice was made")


def _one_starts(trace: Trace, result: Result) -> None:
    started = [trace[i]["task"] for i in positions(trace, "item.started") if trace[i]["task"] in ALTERNATIVES]
    if len(started) != 1:
        raise AssertionError(f"alternatives {started} started: exactly one may")


def _losers_withdrawn_atomically(trace: Trace, result: Result) -> None:
    (win,) = [i for i in positions(trace, "item.started") if trace[i]["task"] in ALTERNATIVES]
    winner = trace[win]["task"]
    losers = sorted(t for t in ALTERNATIVES if t != winner)
    after = [trace[i] for i in range(win + 1, min(win + 1 + len(losers), len(trace)))]
    got = sorted(str(r["task"]) for r in after if r["event"] == "item.cancelled")
    if got != losers:
        raise AssertionError(
            f"{winner} won at {label(trace[win])}; {losers} must be withdrawn right after it, in the same step, "
            f"but the next records are {[label(r) for r in after]}"
        )
    for task in losers:
        late = [i for i in positions(trace, task=task) if i > win and trace[i]["event"] != "item.cancelled"]
        if late:
            raise AssertionError(f"loser {task} appears after the choice: {label(trace[late[0]])}")


PATTERN = Pattern(
    number=16,
    name="Deferred Choice",
    definition=(
        "A point in a process where one of several branches is chosen based on interaction with the "
        "operating environment, not on data at a split. All alternatives are offered at once; the "
        "first one to be started wins and every other is withdrawn in the same atomic step, so two "
        "alternatives never both start; a timeout can be one of the alternatives."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("all alternatives are offered at once, before the choice", _offered_together),
        ("exactly one alternative starts", _one_starts),
        ("the others are withdrawn in the same step as the winner's start", _losers_withdrawn_atomically),
    ),
    construct="a condition whose postset holds several offered or triggered tasks: the first started wins",
)
