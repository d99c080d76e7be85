"""WCP-6 Multi-Choice: every branch whose condition holds is taken (the default if none)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, events, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp06_multi_choice
nets:
  main:
    input: start
    output: end
    tasks:
      report:
        external: true
        split: or
        flows:
          - {to: fire_brigade, when: fire}
          - {to: ambulance, when: injured}
          - {to: police, default: true}
      fire_brigade: {run: work, flows: [close]}
      ambulance: {run: work, flows: [close]}
      police: {run: work, flows: [close]}
      close: {join: or, run: work, flows: [end]}
"""

BRANCHES = ("fire_brigade", "ambulance", "police")


async def _drive(case: Case, rng: random.Random) -> None:
    (item,) = case.work_items("offered")
    await case.complete(item.id, {"fire": rng.random() < 0.5, "injured": rng.random() < 0.5})


def _expected(trace: Trace) -> list[str]:
    (done,) = events(trace, "item.completed", "report")
    data = done["data"]
    want = [t for t, key in (("fire_brigade", "fire"), ("ambulance", "injured")) if data[key]]
    return want or ["police"]


def _true_branches(trace: Trace, result: Result) -> None:
    want = _expected(trace)
    taken = [t for t in BRANCHES if count(trace, "item.enabled", t)]
    if taken != want:
        raise AssertionError(f"the conditions select {want} (the default only when none holds), but {taken} ran")


def _false_never_start(trace: Trace, result: Result) -> None:
    want = _expected(trace)
    for task in BRANCHES:
        if task not in want:
            if positions(trace, task=task):
                raise AssertionError(f"{task}'s condition is false, yet it appears in the trace")
        else:
            if count(trace, "item.completed", task) != 1:
                raise AssertionError(f"{task} did not run exactly once")


def _at_once(trace: Trace, result: Result) -> None:
    step = steps(trace)
    (split,) = positions(trace, "item.completed", "report")
    for task in _expected(trace):
        (enabled,) = positions(trace, "item.enabled", task)
        if step[enabled] != step[split]:
            raise AssertionError(f"{task} was enabled at {label(trace[enabled])}, not in the step of the split")


PATTERN = Pattern(
    number=6,
    name="Multi-Choice",
    definition=(
        "The divergence of a branch into two or more branches such that, when the incoming branch is "
        "enabled, the thread of control is passed to one or more of the outgoing branches, chosen "
        "from data at the split. Every branch whose condition holds is enabled, all in the same step "
        "(the default branch only if none holds); a branch whose condition is false never starts."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("exactly the branches whose condition holds are taken (the default if none)", _true_branches),
        ("branches whose condition is false never start; the others run once", _false_never_start),
        ("the chosen branches are enabled together, in the step of the split", _at_once),
    ),
    construct="split: or: every flow whose when is true (the default flow if none)",
)
