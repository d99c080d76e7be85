"""WCP-27 Complete Multiple Instance Activity: forced completion of a multiple-instance task."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._catalogue import Pattern
from ._kit import count, ends, label, play, positions, steps, withdrawn_at, work

if TYPE_CHECKING:
    from yawlflow import Case, Result, WorkItem

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp27_complete_multiple_instance_activity
nets:
  main:
    input: start
    output: end
    tasks:
      submit: {run: work, split: and, flows: [review, enough]}
      review: {external: true, instances: {count: 3, as: reviews}, flows: [publish]}
      publish: {run: work, flows: [close]}
      enough: {external: true, completes: [review], flows: [close]}
      close: {join: and, run: work, flows: [end]}
"""


def _output(item: WorkItem, rng: random.Random) -> Mapping[str, Any]:
    return {"score": rng.randint(1, 5)} if item.task == "review" else {}


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng, output=_output)


def _cut(trace: Trace) -> tuple[int, bool]:
    (at,) = positions(trace, "item.completed", "enough")
    whole = positions(trace, "item.completed", "review", instance=None)
    return at, whole[0] > at


def _forced(trace: Trace, result: Result) -> None:
    at, forced = _cut(trace)
    if not forced:
        return
    step = steps(trace)
    (whole,) = positions(trace, "item.completed", "review", instance=None)
    if step[whole] != step[at]:
        raise AssertionError(f"review completed at {label(trace[whole])}, not when enough completed")
    withdrawn_at(trace, at, ("review",))
    late = [i for i in positions(trace, task="review") if i > at and step[i] != step[at]]
    if late:
        raise AssertionError(f"review goes on after its forced completion: {label(trace[late[0]])}")


def _successor_at_once(trace: Trace, result: Result) -> None:
    at, forced = _cut(trace)
    n = count(trace, "item.enabled", "publish")
    if n != 1:
        raise AssertionError(f"publish must be triggered exactly once, was {n} times")
    if forced:
        step = steps(trace)
        (enabled,) = positions(trace, "item.enabled", "publish")
        if step[enabled] != step[at]:
            raise AssertionError(f"publish was triggered at {label(trace[enabled])}, not at once")


def _gathered(trace: Trace, result: Result) -> None:
    (whole,) = positions(trace, "item.completed", "review", instance=None)
    done = [i for i in positions(trace, "item.completed", "review") if trace[i]["instance"] is not None and i < whole]
    want = [trace[i]["data"] for i in sorted(done, key=lambda i: trace[i]["instance"])]
    if result.data.get("reviews") != want:
        raise AssertionError(
            f"the instances completed before the task must be gathered: {want}, got {result.data.get('reviews')}"
        )


PATTERN = Pattern(
    number=27,
    name="Complete Multiple Instance Activity",
    definition=(
        "Within a given process instance, multiple instances of a task can be created; at any time "
        "while they run, the task can be forced to complete: no new instances are created, the "
        "running ones are withdrawn, the outputs of those already completed are kept, and the "
        "successor is triggered at once, in the same step."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("forced completion withdraws the running instances and completes the task", _forced),
        ("the successor is triggered once, at once", _successor_at_once),
        ("the completed instances' outputs are gathered", _gathered),
    ),
    construct="completes: [mi_task], or case.force_complete(task): successor at once",
)
