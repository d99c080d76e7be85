"""WCP-39 Critical Section: at most one thread of the case is inside any of the regions at a time."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, no_overlap, play, positions, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Two regions of two tasks each, on parallel branches; prep_* run outside them.
SPEC = """\
yawlflow: 1
id: wcp39_critical_section
nets:
  main:
    input: start
    output: end
    mutex: {ledger: [[debit, post_debit], [credit, post_credit]]}
    tasks:
      a: {run: work, split: and, flows: [prep_debit, prep_credit]}
      prep_debit: {external: true, flows: [debit]}
      debit: {external: true, flows: [post_debit]}
      post_debit: {external: true, flows: [close]}
      prep_credit: {external: true, flows: [credit]}
      credit: {external: true, flows: [post_credit]}
      post_credit: {external: true, flows: [close]}
      close: {join: and, run: work, flows: [end]}
"""

REGIONS = {"debit": ("debit", "post_debit"), "credit": ("credit", "post_credit")}


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng)


def _spans(trace: Trace) -> list[tuple[str, int, int]]:
    out = []
    for name, (first, last) in REGIONS.items():
        enter = positions(trace, "item.started", first)
        leave = positions(trace, "item.completed", last)
        if not (enter and leave):
            raise AssertionError(f"region {name} was never run through")
        out.append((f"region {name}", enter[0], leave[-1]))
    return out


def _exclusive(trace: Trace, result: Result) -> None:
    no_overlap(trace, _spans(trace), "one thread of the case inside a critical section at a time")


def _all_ran(trace: Trace, result: Result) -> None:
    for tasks in REGIONS.values():
        for task in tasks:
            if count(trace, "item.completed", task) != 1:
                raise AssertionError(f"{task} did not run once")


PATTERN = Pattern(
    number=39,
    name="Critical Section",
    definition=(
        "Two or more connected subgraphs of a process model are identified as critical sections; at "
        "any time, at most one thread of the case can be active in any of them: once a thread enters "
        "a section (starts one of its tasks) no other section's task starts until it has left (its "
        "tasks are neither enabled nor running). Work outside the sections is unaffected, and the "
        "exclusion is per case, not per engine."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the critical sections are never active at the same time", _exclusive),
        ("every task of each section runs once", _all_ran),
    ),
    construct="mutex: {name: [[a, b], [c, d]]}: one region per name active at a time in a case",
)
