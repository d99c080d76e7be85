"""WCP-2 Parallel Split: one thread diverges into several that run concurrently."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp02_parallel_split
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [join]}
      c: {run: work, flows: [join]}
      d: {run: work, flows: [join]}
      join: {join: and, flows: [end]}
"""

BRANCHES = ("b", "c", "d")


def _all_enabled_at_once(trace: Trace, result: Result) -> None:
    (a_done,) = positions(trace, "item.completed", "a")
    step = steps(trace)
    for task in BRANCHES:
        enabled = positions(trace, "item.enabled", task)
        if not enabled:
            raise AssertionError(f"{task} was never enabled: the split skipped a branch")
        if not (enabled[0] > a_done and step[enabled[0]] == step[a_done]):
            raise AssertionError(
                f"{task} was enabled at {label(trace[enabled[0]])}, not in the step where a completed "
                f"({label(trace[a_done])})"
            )


def _each_once(trace: Trace, result: Result) -> None:
    for task in BRANCHES:
        n = count(trace, "item.completed", task)
        if n != 1:
            raise AssertionError(f"branch {task} completed {n} times, not once")


def _concurrent(trace: Trace, result: Result) -> None:
    starts = [positions(trace, "item.started", t)[0] for t in BRANCHES]
    first_end = min(positions(trace, "item.completed", t)[0] for t in BRANCHES)
    if max(starts) >= first_end:
        raise AssertionError(
            f"a branch started ({label(trace[max(starts)])}) only after another had completed "
            f"({label(trace[first_end])}): the branches did not run concurrently"
        )


PATTERN = Pattern(
    number=2,
    name="Parallel Split",
    definition=(
        "The divergence of a branch into two or more parallel branches, each of which executes "
        "concurrently. When task A completes, every outgoing branch is enabled in the same case at "
        "the same moment; each branch runs exactly once, in any interleaving; no branch is skipped or "
        "chosen from data."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("every branch is enabled in the step where a completes", _all_enabled_at_once),
        ("each branch runs exactly once; none is skipped", _each_once),
        ("the branches run concurrently: all start before any completes", _concurrent),
    ),
    construct="a task's split: and (the default): every outgoing flow gets a token",
)
