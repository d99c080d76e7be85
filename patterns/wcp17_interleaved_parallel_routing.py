"""WCP-17 Interleaved Parallel Routing: each task of a partially ordered set runs once, never two
at a time."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, intervals, label, no_overlap, play, positions, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# The partial order: pack before ship; invoice anywhere. The mutex interleaves all three.
SPEC = """\
yawlflow: 1
id: wcp17_interleaved_parallel_routing
nets:
  main:
    input: start
    output: end
    mutex: {desk: [pack, ship, invoice]}
    tasks:
      order: {run: work, split: and, flows: [pack, invoice]}
      pack: {external: true, flows: [ship]}
      ship: {external: true, flows: [close]}
      invoice: {external: true, flows: [close]}
      close: {join: and, run: work, flows: [end]}
"""

TASKS = ("pack", "ship", "invoice")


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng)


def _each_once(trace: Trace, result: Result) -> None:
    for task in TASKS:
        n = count(trace, "item.completed", task)
        if n != 1:
            raise AssertionError(f"{task} completed {n} times, not exactly once")


def _partial_order(trace: Trace, result: Result) -> None:
    (packed,) = positions(trace, "item.completed", "pack")
    for i in positions(trace, "item.started", "ship"):
        if packed >= i:
            raise AssertionError(f"{label(trace[i])} before pack completed: the partial order is broken")


def _interleaved(trace: Trace, result: Result) -> None:
    no_overlap(trace, intervals(trace, TASKS), "no two tasks of the set may run at the same time")


PATTERN = Pattern(
    number=17,
    name="Interleaved Parallel Routing",
    definition=(
        "A set of tasks has a partial ordering defining the requirements with respect to the order "
        "in which they must be executed; each task must be executed exactly once, and no two tasks "
        "may be executed at the same time. Any order consistent with the partial order is allowed; "
        "between one task's start and its completion no other task of the set starts."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("each task runs exactly once", _each_once),
        ("the partial order holds: ship only after pack", _partial_order),
        ("no two tasks of the set run at the same time", _interleaved),
    ),
    construct="mutex: {name: [regions]} over the tasks, with flows for the partial order",
)
