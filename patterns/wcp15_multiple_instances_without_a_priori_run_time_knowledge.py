"""WCP-15 Multiple Instances without a priori Run-Time Knowledge: instances are added while the
task runs; the successor waits for every instance created."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import ends, label, positions, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp15_multiple_instances_without_a_priori_run_time_knowledge
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, flows: [review]}
      review:
        external: true
        instances: {creation: dynamic, min: 1, max: 8, as: reviews}
        flows: [decide]
      decide: {run: work, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    more = rng.randint(1, 4)  # how many instances the outside world will add; unknown to the model
    started: set[int] = set()
    while True:
        await case.idle()
        live = sorted((w for w in case.work_items() if w.task == "review"), key=lambda w: w.id)
        if not live:
            return
        if more and (len(live) == 1 or rng.random() < 0.5):
            await case.add_instance("review", {"reviewer": f"r{more}"})
            more -= 1
            continue
        item = rng.choice(live)
        if item.state == "offered" and item.id not in started and rng.random() < 0.5:
            await case.start_item(item.id)
            started.add(item.id)
        else:
            await case.complete(item.id, {"score": rng.randint(1, 5)})


def _instances(trace: Trace) -> list[int]:
    return [i for i in positions(trace, "item.enabled", "review") if trace[i]["instance"] is not None]


def _added_while_running(trace: Trace, result: Result) -> None:
    created = _instances(trace)
    # min: 1, and neither count nor items: the task starts with one instance; any other was added
    if len(created) < 2:
        raise AssertionError(f"only {len(created)} instance(s) were created: none was added")
    (opened,) = positions(trace, "item.started", "review", instance=None)
    (closed,) = positions(trace, "item.completed", "review", instance=None)
    first_done = min(i for i in positions(trace, "item.completed", "review") if trace[i]["instance"] is not None)
    for i in created:
        if not (opened < i < closed):
            raise AssertionError(f"{label(trace[i])} was created outside the task's run")
    if first_done >= closed:
        raise AssertionError("the task completed before any instance")


def _waits_for_all(trace: Trace, result: Result) -> None:
    created = {trace[i]["instance"] for i in _instances(trace)}
    done = [i for i in positions(trace, "item.completed", "review") if trace[i]["instance"] is not None]
    finished = {trace[i]["instance"] for i in done}
    if finished != created:
        raise AssertionError(f"instances {sorted(created - finished)} never completed")
    (enabled,) = positions(trace, "item.enabled", "decide")
    if max(done) >= enabled:
        raise AssertionError(f"decide was enabled at {label(trace[enabled])}, before every instance completed")
    reviews = result.data.get("reviews")
    if not (isinstance(reviews, list) and len(reviews) == len(created)):
        raise AssertionError(f"every instance's output must be gathered ({len(created)}), got {reviews}")


PATTERN = Pattern(
    number=15,
    name="Multiple Instances without a priori Run-Time Knowledge",
    definition=(
        "Within a given process instance, multiple instances of a task can be created; the required "
        "number is not known before the instances are created, and new instances may be added at "
        "any time while the task is active. The successor is enabled only after every instance "
        "created, including those added later, has completed."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("instances are added while the task runs", _added_while_running),
        ("the successor waits for every instance created", _waits_for_all),
    ),
    construct="instances: {creation: dynamic, max: M} and case.add_instance(task, data)",
)
