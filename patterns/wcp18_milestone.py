"""WCP-18 Milestone: a task may start only while the case is in a given state."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# `ready` is marked from the completion of `dispatch` until `deliver` starts (and takes its token).
# `reroute` may run only while `ready` is marked; `keep` is its alternative in a deferred choice, so
# the case ends either way.
SPEC = """\
yawlflow: 1
id: wcp18_milestone
nets:
  main:
    input: start
    output: end
    conditions:
      ready: {flows: [deliver]}
      option: {flows: [reroute, keep]}
      decided: {flows: [close]}
    tasks:
      order: {run: work, split: and, flows: [dispatch, option]}
      dispatch: {external: true, flows: [ready]}
      deliver: {external: true, flows: [close]}
      reroute: {external: true, milestone: [ready], flows: [decided]}
      keep: {external: true, flows: [decided]}
      close: {join: and, run: work, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    async def act(task: str, *, finish: bool = True) -> None:
        await case.idle()
        (item,) = [w for w in case.work_items() if w.task == task and w.state in ("offered", "started")]
        if item.state == "offered" and not finish:
            await case.start_item(item.id)
        else:
            await case.complete(item.id)

    plan = rng.choice(["in time", "overlapping", "too late", "not needed"])
    if plan == "not needed":  # keep is chosen before the milestone is ever reached
        await act("keep")
        await act("dispatch")
        await act("deliver")
    elif plan == "in time":  # reroute runs while `ready` is marked
        await act("dispatch")
        await act("reroute")
        await act("deliver")
    elif plan == "overlapping":  # reroute starts in time; deliver leaves the state while it runs
        await act("dispatch")
        await act("reroute", finish=False)
        await act("deliver")
        await act("reroute")
    else:  # deliver starts first: the state is left, reroute's offer is withdrawn for good
        await act("dispatch")
        await act("deliver", finish=False)
        await act("keep")
        await act("deliver")


def _window(trace: Trace) -> tuple[int, int]:
    """Positions between which `ready` is marked: dispatch's completion, deliver's start."""
    opened = positions(trace, "item.completed", "dispatch")
    closed = positions(trace, "item.started", "deliver")
    return (opened[0] if opened else len(trace), closed[0] if closed else len(trace))


def _only_while(trace: Trace, result: Result) -> None:
    lo, hi = _window(trace)
    for event in ("item.offered", "item.started"):
        for i in positions(trace, event, "reroute"):
            if not (lo < i < hi):
                raise AssertionError(
                    f"{label(trace[i])} while the milestone `ready` was not marked (it is marked from "
                    f"{label(trace[lo]) if lo < len(trace) else 'never'} to "
                    f"{label(trace[hi]) if hi < len(trace) else 'the end'})"
                )


def _withdrawn_when_left(trace: Trace, result: Result) -> None:
    _lo, hi = _window(trace)
    offered = positions(trace, "item.offered", "reroute")
    taken = positions(trace, "item.started", "reroute") + positions(trace, "item.started", "keep")
    if not offered or hi == len(trace) or (taken and min(taken) < hi):
        return  # reroute was never offered, the state was never left, or the choice was made before
    cancelled = [i for i in positions(trace, "item.cancelled", "reroute") if i > hi]
    step = steps(trace)
    if not (cancelled and step[cancelled[0]] == step[hi]):
        raise AssertionError(
            f"`ready` emptied at {label(trace[hi])} while reroute was offered: its offer must be withdrawn in that step"
        )


def _not_a_latch(trace: Trace, result: Result) -> None:
    _, hi = _window(trace)
    late = [i for e in ("item.offered", "item.started") for i in positions(trace, e, "reroute") if i > hi]
    if late:
        raise AssertionError(f"the state was left at {label(trace[hi])}, yet later {label(trace[min(late)])}: a latch")


PATTERN = Pattern(
    number=18,
    name="Milestone",
    definition=(
        "A task is only enabled when the process instance is in a specific state, typically on a "
        "parallel branch: it may start only while a given condition is marked. It is offered when "
        "the state is reached, its offer is withdrawn in the step the state is left, and once left "
        "it cannot start again unless the state is reached again; a milestone is not a one-shot "
        "latch."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("reroute is offered and started only while the milestone holds", _only_while),
        ("its offer is withdrawn in the step the milestone is left", _withdrawn_when_left),
        ("once the milestone is left, reroute never starts: not a latch", _not_a_latch),
    ),
    construct="milestone: [conditions]: enabled only while those conditions are marked",
)
