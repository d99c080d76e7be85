"""WCP-40 Interleaved Routing: each task of a set runs once, in any order, never two at a time."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, intervals, label, no_overlap, play, positions, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp40_interleaved_routing
nets:
  main:
    input: start
    output: end
    mutex: {desk: [check_id, check_credit, check_address]}
    tasks:
      apply: {run: work, split: and, flows: [check_id, check_credit, check_address]}
      check_id: {external: true, flows: [decide]}
      check_credit: {external: true, flows: [decide]}
      check_address: {external: true, flows: [decide]}
      decide: {join: and, run: work, flows: [end]}
"""

TASKS = ("check_id", "check_credit", "check_address")


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng)


def _each_once(trace: Trace, result: Result) -> None:
    for task in TASKS:
        n = count(trace, "item.completed", task)
        if n != 1:
            raise AssertionError(f"{task} completed {n} times, not once")


def _one_at_a_time(trace: Trace, result: Result) -> None:
    no_overlap(trace, intervals(trace, TASKS), "no two tasks of the set may run at the same time")


def _successor_after_all(trace: Trace, result: Result) -> None:
    (enabled,) = positions(trace, "item.enabled", "decide")
    for task in TASKS:
        (done,) = positions(trace, "item.completed", task)
        if done >= enabled:
            raise AssertionError(f"decide started ({label(trace[enabled])}) before {task} completed")


PATTERN = Pattern(
    number=40,
    name="Interleaved Routing",
    definition=(
        "Each member of a set of tasks must be executed once; they can be executed in any order, but "
        "no two tasks can be executed at the same time: between one task's start and its completion "
        "no other task of the set starts. Once all have completed, the successor is enabled."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("each task runs exactly once", _each_once),
        ("no two tasks of the set run at the same time", _one_at_a_time),
        ("the successor runs after all of them", _successor_after_all),
    ),
    construct="mutex: {name: [a, b, c]} on and-split branches: each once, never two at a time",
)
