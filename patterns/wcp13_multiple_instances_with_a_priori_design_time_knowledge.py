"""WCP-13 Multiple Instances with a priori Design-Time Knowledge: n fixed in the model; the
successor waits for all n."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp13_multiple_instances_with_a_priori_design_time_knowledge
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, flows: [inspect]}
      inspect: {run: work, instances: {count: 3}, flows: [report]}
      report: {run: work, flows: [end]}
"""


def _n_instances(trace: Trace, result: Result) -> None:
    made = sorted(
        r["instance"]
        for r in trace
        if r["event"] == "item.started" and r["task"] == "inspect" and r["instance"] is not None
    )
    if made != [0, 1, 2]:
        raise AssertionError(f"the model fixes 3 instances, but instances {made} were created")
    for k in range(3):
        if count(trace, "item.completed", "inspect", instance=k) != 1:
            raise AssertionError(f"instance {k} did not complete once")


def _after_all(trace: Trace, result: Result) -> None:
    (enabled,) = positions(trace, "item.enabled", "report")
    done = [i for i in positions(trace, "item.completed", "inspect") if trace[i]["instance"] is not None]
    if max(done) >= enabled:
        raise AssertionError(f"report was enabled at {label(trace[enabled])}, before every instance completed")
    step = steps(trace)
    if step[enabled] != step[max(done)]:
        raise AssertionError(f"report was enabled at {label(trace[enabled])}, not when the last instance completed")


PATTERN = Pattern(
    number=13,
    name="Multiple Instances with a priori Design-Time Knowledge",
    definition=(
        "Within a given process instance, multiple instances of a task can be created; the required "
        "number is known at design time, the instances are independent and run concurrently, and "
        "they must all complete before the subsequent task is triggered. Exactly n instances are "
        "created; the successor is enabled once, in the step where the last of them completes."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("exactly the n = 3 instances fixed in the model are created and complete", _n_instances),
        ("the successor is enabled only when all n instances have completed", _after_all),
    ),
    construct="instances: {count: 3} (join: all, the default)",
)
