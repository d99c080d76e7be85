"""WCP-19 Cancel Task: an enabled task is withdrawn, or a started one halted; the case goes on."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, play, positions, withdrawn_at, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp19_cancel_task
nets:
  main:
    input: start
    output: end
    tasks:
      order: {run: work, split: and, flows: [check, withdraw]}
      check: {external: true, flows: [close]}
      withdraw: {external: true, cancels: [check], flows: [close]}
      close: {join: or, run: work, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng)


def _cancelled(trace: Trace, result: Result) -> None:
    (done,) = positions(trace, "item.completed", "withdraw")
    withdrawn_at(trace, done, ("check",))
    late = [i for i in positions(trace, task="check") if i > done and trace[i]["event"] != "item.cancelled"]
    if late:
        raise AssertionError(f"check goes on after its cancellation: {label(trace[late[0]])}")


def _only_if_live(trace: Trace, result: Result) -> None:
    if count(trace, "item.completed", "check") and positions(trace, "item.cancelled", "check"):
        raise AssertionError("check completed, yet was cancelled too")


def _goes_on(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "close")
    if n != 1:
        raise AssertionError(f"the rest of the case must go on: close ran {n} times, not once")


PATTERN = Pattern(
    number=19,
    name="Cancel Task",
    definition=(
        "An enabled task is withdrawn prior to it commencing execution; if the task has started, it "
        "is disabled and, where possible, the currently running instance is halted and removed. The "
        "cancellation happens in the step of its trigger, the cancelled task never completes "
        "afterwards, and the rest of the case goes on."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("a live check is withdrawn or halted in the step withdraw completes", _cancelled),
        ("check is cancelled only if it was still live", _only_if_live),
        ("the rest of the case goes on", _goes_on),
    ),
    construct="cancels: [task] on another task, or case.cancel_item(id) from the API",
)
