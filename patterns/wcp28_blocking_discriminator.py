"""WCP-28 Blocking Discriminator: fires on the first arrival; later arrivals on inputs that
already arrived are held until every input has arrived once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, firings_follow, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Two concurrent activations of the block (two threads on each branch) meet one discriminator.
SPEC = """\
yawlflow: 1
id: wcp28_blocking_discriminator
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, split: {threads: 2}, flows: [b, c]}
      b: {run: work, flows: [first]}
      c: {run: work, flows: [first]}
      first: {join: {partial: 1, reset: wait}, flows: [e]}
      e: {run: work, flows: [end]}
"""

INPUTS = ("b", "c")


def _once_per_round(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "first")
    if n != 2:
        raise AssertionError(
            f"two activations reach the discriminator, so it must fire twice (once per round), not {n}"
        )
    if result.data.get("_tokens"):
        raise AssertionError(f"held arrivals must all be taken, but tokens are left: {result.data}")


PATTERN = Pattern(
    number=28,
    name="Blocking Discriminator",
    definition=(
        "The convergence of two or more branches into a single subsequent branch following one or "
        "more corresponding divergences earlier in the process model: the thread of control passes "
        "on when the first active incoming branch has been enabled, and the discriminator then "
        "blocks: a later arrival on a branch that has already arrived is held until every incoming "
        "branch has arrived once, which resets it; held arrivals are never lost and never fire it "
        "early."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        (
            "it fires exactly when the blocking 1-of-2 join model says, arrival by arrival",
            firings_follow("first", INPUTS, 1, "wait"),
        ),
        ("it fires once per round, and every held arrival is taken", _once_per_round),
    ),
    construct="join: {partial: 1, reset: wait}: later arrivals held until every input arrived",
)
