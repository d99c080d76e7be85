"""WCP-12 Multiple Instances without Synchronization: n instances; control moves on at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Implicit termination: the instances still run after `notify` has reached the output condition.
SPEC = """\
yawlflow: 1
id: wcp12_multiple_instances_without_synchronization
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, flows: [send]}
      send: {run: work, instances: {count: 3, join: none}, flows: [notify]}
      notify: {run: work, flows: [end]}
"""


def _created(trace: Trace, result: Result) -> None:
    made = sorted(
        trace[i]["instance"] for i in positions(trace, "item.started", "send") if trace[i]["instance"] is not None
    )
    if made != [0, 1, 2]:
        raise AssertionError(f"send must create instances [0, 1, 2], created {made}")


def _at_once(trace: Trace, result: Result) -> None:
    step = steps(trace)
    (opened,) = positions(trace, "item.started", "send", instance=None)
    (closed,) = positions(trace, "item.completed", "send", instance=None)
    (enabled,) = positions(trace, "item.enabled", "notify")
    if not (step[closed] == step[opened] and step[enabled] == step[opened]):
        raise AssertionError(
            f"control must pass on in the step send's instances are created ({label(trace[opened])}), "
            f"but send completed at {label(trace[closed])} and notify was enabled at {label(trace[enabled])}"
        )
    first_done = positions(trace, "item.completed", "send")
    instance_done = [i for i in first_done if trace[i]["instance"] is not None]
    if not (instance_done and closed < instance_done[0]):
        raise AssertionError("send completed only after an instance did: that is a join")


def _independent(trace: Trace, result: Result) -> None:
    for k in range(3):
        n = count(trace, "item.completed", "send", instance=k)
        if n != 1:
            raise AssertionError(f"instance {k} of send completed {n} times: each runs to completion on its own")
    if positions(trace, "item.cancelled"):
        raise AssertionError("an instance was withdrawn: they run to completion independently")


PATTERN = Pattern(
    number=12,
    name="Multiple Instances without Synchronization",
    definition=(
        "Within a given process instance, multiple instances of a task can be created; these "
        "instances are independent of each other and run concurrently, and there is no requirement "
        "to synchronise them upon completion. The n instances are created when the task fires, "
        "control passes to the successor in that same step, and every instance runs to completion "
        "on its own; none is withdrawn or waited for."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("n = 3 instances are created", _created),
        ("control passes to the successor at once, before any instance completes", _at_once),
        ("every instance runs to completion independently", _independent),
    ),
    construct="instances: {count: N, join: none}: control moves on at once",
)
