"""WCP-7 Structured Synchronizing Merge: an OR-join closing a multi-choice waits for exactly the
branches the split activated."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._catalogue import Pattern
from ._kit import count, ends, events, label, play, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Case, Result, WorkItem

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp07_structured_synchronizing_merge
nets:
  main:
    input: start
    output: end
    tasks:
      order:
        external: true
        split: or
        flows:
          - {to: pick_books, when: books}
          - {to: pick_music, when: music}
          - {to: pick_gift, default: true}
      pick_books: {external: true, flows: [ship]}
      pick_music: {external: true, flows: [ship]}
      pick_gift: {external: true, flows: [ship]}
      ship: {join: or, run: work, flows: [end]}
"""

BRANCHES = ("pick_books", "pick_music", "pick_gift")


def _output(item: WorkItem, rng: random.Random) -> Mapping[str, Any]:
    if item.task == "order":
        return {"books": rng.random() < 0.6, "music": rng.random() < 0.6}
    return {}


async def _drive(case: Case, rng: random.Random) -> None:
    await play(case, rng, output=_output)


def _activated(trace: Trace) -> list[str]:
    (done,) = events(trace, "item.completed", "order")
    want = [t for t, key in (("pick_books", "books"), ("pick_music", "music")) if done["data"][key]]
    return want or ["pick_gift"]


def _once(trace: Trace, result: Result) -> None:
    n = count(trace, "item.enabled", "ship")
    if n != 1:
        raise AssertionError(f"the merge ship fired {n} times, not once")


def _after_activated(trace: Trace, result: Result) -> None:
    (fired,) = positions(trace, "item.enabled", "ship")
    ends_at = []
    for task in _activated(trace):
        done = positions(trace, "item.completed", task)
        if not (done and done[0] < fired):
            raise AssertionError(f"ship fired ({label(trace[fired])}) before activated branch {task} completed")
        ends_at.append(done[0])
    step = steps(trace)
    if step[fired] != step[max(ends_at)]:
        raise AssertionError(
            f"ship fired at {label(trace[fired])}, not in the step of the last activated branch "
            f"({label(trace[max(ends_at)])}): it waited for a branch that was not activated"
        )


def _not_activated_never_run(trace: Trace, result: Result) -> None:
    for task in BRANCHES:
        if task not in _activated(trace) and positions(trace, task=task):
            raise AssertionError(f"{task} was not activated by the split, yet it appears")


PATTERN = Pattern(
    number=7,
    name="Structured Synchronizing Merge",
    definition=(
        "The convergence of two or more branches, which diverged earlier at a uniquely identifiable "
        "multi-choice, into a single subsequent branch: the thread of control passes on when each "
        "active incoming branch has been enabled. The merge fires exactly once, in the step where the "
        "last branch the split activated completes; it never fires before that and never waits for "
        "a branch that was not activated."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the merge fires exactly once", _once),
        ("it fires after every activated branch, at the last one's completion", _after_activated),
        ("branches the split did not activate never run", _not_activated_never_run),
    ),
    construct="join: or closing the branches of a split: or",
)
