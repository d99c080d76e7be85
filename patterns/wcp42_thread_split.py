"""WCP-42 Thread Split: one thread becomes k concurrent threads on the same branch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Implicit termination: each of the three threads ends on its own.
SPEC = """\
yawlflow: 1
id: wcp42_thread_split
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, split: {threads: 3}, flows: [b]}
      b: {run: work, flows: [c]}
      c: {run: work, flows: [end]}
"""


def _k_threads(trace: Trace, result: Result) -> None:
    (done,) = positions(trace, "item.completed", "a")
    starts = positions(trace, "item.started", "b")
    step = steps(trace)
    if len(starts) != 3:
        raise AssertionError(f"a splits into 3 threads, so b must start 3 times, started {len(starts)}")
    late = [label(trace[i]) for i in starts if step[i] != step[done]]
    if late:
        raise AssertionError(f"the threads must all start when a completes, concurrently: late {late}")


def _each_goes_on(trace: Trace, result: Result) -> None:
    for task in ("b", "c"):
        n = count(trace, "item.completed", task)
        if n != 3:
            raise AssertionError(f"each of the 3 threads runs {task}: it completed {n} times")


def _no_instances(trace: Trace, result: Result) -> None:
    mi = [label(r) for r in trace if r["instance"] is not None]
    if mi:
        raise AssertionError(f"a thread split uses no multiple-instance construct: {mi}")


PATTERN = Pattern(
    number=42,
    name="Thread Split",
    definition=(
        "At a given point in a process, a nominated number of execution threads can be initiated in "
        "a single branch of the same process instance: when the task completes, k threads start on "
        "its outgoing branch in that step, each running the branch's tasks on its own, without a "
        "multiple-instance construct."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("k = 3 threads start on the branch when a completes", _k_threads),
        ("each thread runs the rest of the branch", _each_goes_on),
        ("no multiple-instance construct is involved", _no_instances),
    ),
    construct="split: {threads: N}: N tokens on each outgoing flow",
)
