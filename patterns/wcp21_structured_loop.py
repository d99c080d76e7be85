"""WCP-21 Structured Loop: a task repeats while (pre-test) or until (post-test) a condition holds."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ._catalogue import Pattern
from ._kit import count, ends, events, label, positions, step

if TYPE_CHECKING:
    from yawlflow import Case, ItemContext, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp21_structured_loop
nets:
  main:
    input: start
    output: end
    tasks:
      plan: {external: true, flows: [fill]}
      fill: {run: step, loop: {while: "n < rounds"}, flows: [check]}
      check: {run: tick, loop: {until: "m >= rounds"}, flows: [end]}
"""


async def tick(data: dict[str, Any], ctx: ItemContext) -> dict[str, Any]:
    """Increments the counter ``m``."""
    return {"m": int(data["m"]) + 1}


async def _drive(case: Case, rng: random.Random) -> None:
    (item,) = case.work_items("offered")
    await case.complete(item.id, {"rounds": rng.randint(0, 3)})


def _rounds(trace: Trace) -> int:
    (done,) = events(trace, "item.completed", "plan")
    return int(done["data"]["rounds"])


def _pre_test(trace: Trace, result: Result) -> None:
    rounds = _rounds(trace)
    n = count(trace, "item.started", "fill")
    if n != rounds:
        raise AssertionError(
            f"while n < {rounds}: the body must run {rounds} times (0 when false at the start), ran {n}"
        )


def _post_test(trace: Trace, result: Result) -> None:
    rounds = _rounds(trace)
    n = count(trace, "item.started", "check")
    if n != max(1, rounds):
        raise AssertionError(f"until m >= {rounds}: the body runs at least once, so {max(1, rounds)} times, ran {n}")


def _one_exit(trace: Trace, result: Result) -> None:
    fill_done = positions(trace, "item.completed", "fill")
    check_on = positions(trace, "item.enabled", "check")
    if not (check_on and max(fill_done) < check_on[0]):
        raise AssertionError(
            f"check started ({label(trace[check_on[0]])}) before fill's loop ended" if check_on else "check never ran"
        )


PATTERN = Pattern(
    number=21,
    name="Structured Loop",
    definition=(
        "The ability to execute a task or sub-process repeatedly, with one entry and one exit point. "
        "A pre-test (while) loop evaluates its condition before each iteration and may run zero "
        "times; a post-test (until) loop evaluates it after each iteration and runs at least once. "
        "The successor is enabled once, after the last iteration."
    ),
    spec=SPEC,
    handlers={"step": step, "tick": tick},
    data={"n": 0, "m": 0},
    drive=_drive,
    properties=(
        ends("completed"),
        ("the pre-test loop runs its body exactly `rounds` times, possibly none", _pre_test),
        ("the post-test loop runs its body at least once, until its condition holds", _post_test),
        ("one exit: the successor starts after the loop's last iteration", _one_exit),
    ),
    construct="loop: {while: <CEL>} (pre-test) or loop: {until: <CEL>} (post-test)",
)
