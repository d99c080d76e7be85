"""WCP-41 Thread Merge: k concurrent threads of the case on one branch merge into one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, firings_follow, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Three threads reach `collect` (a multi-merge), all on the one branch into `merge`.
SPEC = """\
yawlflow: 1
id: wcp41_thread_merge
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: and, flows: [b, c, d]}
      b: {run: work, flows: [collect]}
      c: {run: work, flows: [collect]}
      d: {run: work, flows: [collect]}
      collect: {flows: [merge]}
      merge: {join: {threads: 3}, run: work, flows: [end]}
"""


def _one_thread(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "merge")
    if n != 1:
        raise AssertionError(f"three threads must merge into one: merge ran {n} times")
    k = count(trace, "item.completed", "collect")
    if k != 3:
        raise AssertionError(f"three threads must reach the branch, {k} did")


PATTERN = Pattern(
    number=41,
    name="Thread Merge",
    definition=(
        "At a given point in a process, a nominated number of execution threads in a single branch "
        "of the same process instance merge into a single thread of execution: the merge fires "
        "once, in the step where the k-th thread arrives; it never fires with fewer, and the k "
        "threads become one."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        ("k = 3 threads on the branch become one", _one_thread),
        (
            "it fires at the k-th arrival, never earlier",
            firings_follow("merge", ("collect",), 3, "threads", fire_event="item.enabled"),
        ),
    ),
    construct="join: {threads: N}: N tokens on the incoming flows become one",
)
