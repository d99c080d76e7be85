"""WCP-35 Cancelling Partial Join for Multiple Instances: at m of n completions the successor
fires and the remaining instances are cancelled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work
from .wcp34_static_partial_join_for_multiple_instances import quote

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp35_cancelling_partial_join_for_multiple_instances
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, flows: [quote]}
      quote:
        run: quote
        instances: {count: 4, threshold: 2, join: threshold, cancel_rest: true, as: quotes}
        flows: [choose]
      choose: {run: work, flows: [end]}
"""


def _done(trace: Trace) -> list[int]:
    return [i for i in positions(trace, "item.completed", "quote") if trace[i]["instance"] is not None]


def _fires_at_m(trace: Trace, result: Result) -> None:
    done = _done(trace)
    if len(done) != 2:
        raise AssertionError(f"{len(done)} instances completed: exactly m = 2 may, the rest are cancelled")
    (enabled,) = positions(trace, "item.enabled", "choose")
    step = steps(trace)
    if step[enabled] != step[done[1]]:
        raise AssertionError(f"choose was enabled at {label(trace[enabled])}, not at the 2nd completion")
    if count(trace, "item.completed", "choose") != 1:
        raise AssertionError("the successor must fire once")


def _rest_cancelled(trace: Trace, result: Result) -> None:
    done = _done(trace)
    step = steps(trace)
    finished = {trace[i]["instance"] for i in done}
    cancelled = positions(trace, "item.cancelled", "quote")
    got = {trace[i]["instance"] for i in cancelled}
    if got != {0, 1, 2, 3} - finished:
        raise AssertionError(f"instances {sorted({0, 1, 2, 3} - finished)} must be cancelled, got {sorted(got)}")
    for i in cancelled:
        if step[i] != step[done[1]]:
            raise AssertionError(f"{label(trace[i])} is not in the step of the m-th completion")


PATTERN = Pattern(
    number=35,
    name="Cancelling Partial Join for Multiple Instances",
    definition=(
        "Within a given process instance, n instances of a task are created, n known when the task "
        "starts; once m of them have completed, the successor is triggered and, in that same step, "
        "the remaining instances are cancelled: they never complete, and no completion has any "
        "further effect."
    ),
    spec=SPEC,
    handlers={"quote": quote, "work": work},
    properties=(
        ends("completed"),
        ("the successor fires once, at the m-th completion", _fires_at_m),
        ("the remaining instances are cancelled in that step", _rest_cancelled),
    ),
    construct="instances: {count: N, threshold: M, join: threshold, cancel_rest: true}",
)
