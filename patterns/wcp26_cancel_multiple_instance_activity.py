"""WCP-26 Cancel Multiple Instance Activity: every unfinished instance is withdrawn and the
successor is not triggered."""

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
id: wcp26_cancel_multiple_instance_activity
nets:
  main:
    input: start
    output: end
    tasks:
      submit: {run: work, split: and, flows: [review, withdraw]}
      review: {external: true, instances: {count: 3}, flows: [publish]}
      publish: {run: work, flows: [close]}
      withdraw: {external: true, cancels: [review], flows: [close]}
      close: {join: or, run: work, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng)


def _cut(trace: Trace) -> tuple[int, bool]:
    """withdraw's completion, and whether review was still running then."""
    (at,) = positions(trace, "item.completed", "withdraw")
    whole = positions(trace, "item.completed", "review", instance=None)
    return at, not (whole and whole[0] < at)


def _instances_withdrawn(trace: Trace, result: Result) -> None:
    at, running = _cut(trace)
    if not running:
        return
    withdrawn_at(trace, at, ("review",))
    late = [i for i in positions(trace, task="review") if i > at and trace[i]["event"] != "item.cancelled"]
    if late:
        raise AssertionError(f"review goes on after its cancellation: {label(trace[late[0]])}")


def _no_successor(trace: Trace, result: Result) -> None:
    _, running = _cut(trace)
    n = count(trace, "item.enabled", "publish")
    if running:
        if n != 0:
            raise AssertionError("review was cancelled, yet its successor publish was triggered")
        if positions(trace, "item.completed", "review", instance=None):
            raise AssertionError("the cancelled review completed")
    else:
        if n != 1:
            raise AssertionError(f"review completed before the cancellation, so publish must run once, ran {n} times")


PATTERN = Pattern(
    number=26,
    name="Cancel Multiple Instance Activity",
    definition=(
        "Within a given process instance, multiple instances of a task can be created; at any time "
        "while they run, the task can be cancelled: every instance not yet completed is withdrawn "
        "in that step, no new instance is created, the task does not complete and its successor is "
        "not triggered; instances that completed earlier are unaffected."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("every unfinished instance is withdrawn and none is created after", _instances_withdrawn),
        ("the successor is not triggered (unless the task had completed first)", _no_successor),
    ),
    construct="cancels: [mi_task]: every live instance withdrawn, no successor",
)
