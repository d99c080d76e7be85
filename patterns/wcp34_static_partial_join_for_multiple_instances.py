"""WCP-34 Static Partial Join for Multiple Instances: the successor fires when m of n instances
have completed; the rest run on with no effect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import ItemContext, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Implicit termination: the instances still running after the threshold complete on their own.
SPEC = """\
yawlflow: 1
id: wcp34_static_partial_join_for_multiple_instances
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, flows: [quote]}
      quote: {run: quote, instances: {count: 4, threshold: 2, join: threshold, as: quotes}, flows: [choose]}
      choose: {run: work, flows: [end]}
"""


async def quote(data: dict[str, Any], ctx: ItemContext) -> dict[str, Any]:
    """A supplier's quote: instance ``item`` quotes 100 + item."""
    return {"price": 100 + int(data["item"])}


def _done(trace: Trace) -> list[int]:
    return [i for i in positions(trace, "item.completed", "quote") if trace[i]["instance"] is not None]


def _fires_at_m(trace: Trace, result: Result) -> None:
    done = _done(trace)
    (enabled,) = positions(trace, "item.enabled", "choose")
    step = steps(trace)
    if step[enabled] != step[done[1]]:
        raise AssertionError(
            f"choose was enabled at {label(trace[enabled])}, not when the 2nd instance completed "
            f"({label(trace[done[1]])})"
        )
    n = count(trace, "item.completed", "choose")
    if n != 1:
        raise AssertionError(f"the successor must fire once, fired {n} times")


def _rest_complete(trace: Trace, result: Result) -> None:
    done = {trace[i]["instance"] for i in _done(trace)}
    if done != {0, 1, 2, 3}:
        raise AssertionError(f"every instance must run to completion, completed: {sorted(done)}")
    if positions(trace, "item.cancelled"):
        raise AssertionError("an instance was cancelled: the rest must go on")


def _no_effect(trace: Trace, result: Result) -> None:
    first_two = sorted(_done(trace)[:2], key=lambda i: trace[i]["instance"])
    want = [trace[i]["data"] for i in first_two]
    if result.data.get("quotes") != want:
        raise AssertionError(
            f"completions after the threshold have no effect: quotes must be {want}, got {result.data.get('quotes')}"
        )


PATTERN = Pattern(
    number=34,
    name="Static Partial Join for Multiple Instances",
    definition=(
        "Within a given process instance, n instances of a task are created, n known when the task "
        "starts; once m of them have completed, the successor is triggered, in the step of the m-th "
        "completion. The remaining instances go on and complete, but their completions have no "
        "effect (the successor is not triggered again, their outputs are not gathered); the join "
        "resets only when all n have completed."
    ),
    spec=SPEC,
    handlers={"quote": quote, "work": work},
    properties=(
        ends("completed"),
        ("the successor fires once, at the m-th completion", _fires_at_m),
        ("the other instances run on to completion", _rest_complete),
        ("completions after the threshold have no effect", _no_effect),
    ),
    construct="instances: {count: N, threshold: M, join: threshold}",
)
