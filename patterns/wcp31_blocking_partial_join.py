"""WCP-31 Blocking Partial Join: N of M, with later arrivals held until the reset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, firings_follow, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Two concurrent activations (two threads on each branch) meet one 2-of-3 join.
SPEC = """\
yawlflow: 1
id: wcp31_blocking_partial_join
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, split: {threads: 2}, flows: [b, c, d]}
      b: {run: work, flows: [two]}
      c: {run: work, flows: [two]}
      d: {run: work, flows: [two]}
      two: {join: {partial: 2, reset: wait}, flows: [e]}
      e: {run: work, flows: [end]}
"""

INPUTS = ("b", "c", "d")


def _once_per_round(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "two")
    if n != 2:
        raise AssertionError(f"two activations reach the join, so it must fire twice (once per round), not {n}")
    if result.data.get("_tokens"):
        raise AssertionError(f"held arrivals must all be taken, but tokens are left: {result.data}")


PATTERN = Pattern(
    number=31,
    name="Blocking Partial Join",
    definition=(
        "The convergence of M branches into a single subsequent branch following one or more "
        "corresponding divergences earlier in the process model: the thread of control passes on "
        "when N of the incoming branches have been enabled; the join then blocks: a later arrival on "
        "a branch that has already arrived is held until every incoming branch has arrived once, "
        "which resets it. Held arrivals are neither lost nor counted early."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        (
            "it fires exactly when the blocking 2-of-3 join model says, arrival by arrival",
            firings_follow("two", INPUTS, 2, "wait"),
        ),
        ("it fires once per round, and every held arrival is taken", _once_per_round),
    ),
    construct="join: {partial: N, reset: wait}: arrivals after firing held until the reset",
)
