"""WCP-36 Dynamic Partial Join for Multiple Instances: instances are added while the task runs; a
completion condition, checked at each completion, triggers the successor."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Implicit termination: instances still running when the condition held go on, with no effect.
SPEC = """\
yawlflow: 1
id: wcp36_dynamic_partial_join_for_multiple_instances
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, flows: [vote]}
      vote:
        external: true
        instances:
          creation: dynamic
          min: 1
          max: 6
          join: threshold
          threshold: "size(results.filter(r, r.yes)) >= 2"
          as: votes
        flows: [decide]
      decide: {run: work, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    added = 0
    while True:
        await case.idle()
        live = sorted((w for w in case.work_items() if w.task == "vote"), key=lambda w: w.id)
        if not live:
            return
        running = not any(
            r["event"] == "item.completed" and r["task"] == "vote" and r["instance"] is None for r in case.trace
        )
        if running and added < 5 and rng.random() < 0.4:
            await case.add_instance("vote")
            added += 1
            continue
        item = rng.choice(live)
        await case.complete(item.id, {"yes": rng.random() < 0.6})


def _instance_done(trace: Trace) -> list[int]:
    return [i for i in positions(trace, "item.completed", "vote") if trace[i]["instance"] is not None]


def _trigger_point(trace: Trace) -> int:
    """The completion at which the condition first held, else the last one (all ended)."""
    yes = 0
    done = _instance_done(trace)
    created = [i for i in positions(trace, "item.enabled", "vote") if trace[i]["instance"] is not None]
    for i in done:
        yes += bool(trace[i]["data"]["yes"])
        if yes >= 2:
            return i
        if len([j for j in done if j <= i]) == len([j for j in created if j < i]):
            return i  # every instance created so far has ended: the task completes too
    raise AssertionError("no completion triggered the successor")


def _at_condition(trace: Trace, result: Result) -> None:
    at = _trigger_point(trace)
    step = steps(trace)
    (enabled,) = positions(trace, "item.enabled", "decide")
    if step[enabled] != step[at]:
        raise AssertionError(
            f"decide was enabled at {label(trace[enabled])}, not at the first completion where the condition "
            f"held ({label(trace[at])})"
        )
    if count(trace, "item.completed", "decide") != 1:
        raise AssertionError("decide must run once: later completions have no effect")


def _later_no_effect(trace: Trace, result: Result) -> None:
    at = _trigger_point(trace)
    upto = sorted((i for i in _instance_done(trace) if i <= at), key=lambda i: trace[i]["instance"])
    want = [trace[i]["data"] for i in upto]
    if result.data.get("votes") != want:
        raise AssertionError(
            f"votes must hold the completions up to the trigger: {want}, got {result.data.get('votes')}"
        )


def _no_new_after(trace: Trace, result: Result) -> None:
    (whole,) = positions(trace, "item.completed", "vote", instance=None)
    late = [i for i in positions(trace, "item.enabled", "vote") if i > whole]
    if late:
        raise AssertionError(f"an instance was added after the task completed: {label(trace[late[0]])}")


PATTERN = Pattern(
    number=36,
    name="Dynamic Partial Join for Multiple Instances",
    definition=(
        "Within a given process instance, multiple instances of a task can be created, the number "
        "not known in advance, and new instances may be added while the task runs; a completion "
        "condition is evaluated at each instance's completion, and the successor is triggered in the "
        "step where it first holds (or when every instance has ended). No instance can be added "
        "afterwards, and later completions have no effect."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the successor fires once, at the first completion where the condition holds", _at_condition),
        ("later completions have no effect", _later_no_effect),
        ("no instance is added after the task completed", _no_new_after),
    ),
    construct="instances: {creation: dynamic, join: threshold, threshold: <CEL: completed, instances, results>}",
)
