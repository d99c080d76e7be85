"""WCP-25 Cancel Region: a set of tasks and conditions is withdrawn; nothing else is touched."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, play, positions, withdrawn_at, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# The region: pack, the condition packed, ship. bill is outside it.
SPEC = """\
yawlflow: 1
id: wcp25_cancel_region
nets:
  main:
    input: start
    output: end
    conditions:
      packed: {flows: [ship]}
    tasks:
      order: {run: work, split: and, flows: [pack, bill, recall]}
      pack: {external: true, flows: [packed]}
      ship: {external: true, flows: [close]}
      bill: {external: true, flows: [close]}
      recall: {external: true, cancels: [pack, packed, ship], flows: [close]}
      close: {join: or, run: work, flows: [end]}
"""

REGION = ("pack", "ship")


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng)


def _region_withdrawn(trace: Trace, result: Result) -> None:
    (at,) = positions(trace, "item.completed", "recall")
    withdrawn_at(trace, at, REGION)
    late = [i for t in REGION for i in positions(trace, task=t) if i > at and trace[i]["event"] != "item.cancelled"]
    if late:
        raise AssertionError(
            f"the region goes on after its cancellation (packed was not emptied?): {label(trace[min(late)])}"
        )


def _outside_untouched(trace: Trace, result: Result) -> None:
    if positions(trace, "item.cancelled", "bill"):
        raise AssertionError("bill is outside the region, yet it was cancelled")
    if count(trace, "item.completed", "bill") != 1:
        raise AssertionError("bill is outside the region and must complete")


def _goes_on(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "close")
    if n != 1:
        raise AssertionError(f"the case must go on after the cancellation: close ran {n} times")


PATTERN = Pattern(
    number=25,
    name="Cancel Region",
    definition=(
        "The ability to disable a set of tasks and conditions in a process instance, connected or "
        "not: when the trigger completes, every enabled or running item of the region's tasks is "
        "withdrawn and the region's conditions are emptied, in that step; nothing outside the region "
        "is affected, and the case goes on."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the region's live items are withdrawn and its conditions emptied", _region_withdrawn),
        ("nothing outside the region is affected", _outside_untouched),
        ("the case goes on", _goes_on),
    ),
    construct="cancels: [tasks and conditions, connected or not]",
)
