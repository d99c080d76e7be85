"""WCP-33 Generalised AND-Join: fires when every input holds a token, consuming one per input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, firings_follow, work

if TYPE_CHECKING:
    from yawlflow import Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# Two threads on each branch: tokens pile up on one input while the other is still empty.
SPEC = """\
yawlflow: 1
id: wcp33_generalised_and_join
nets:
  main:
    input: start
    output: end
    termination: implicit
    tasks:
      a: {run: work, split: {threads: 2}, flows: [b, c]}
      b: {run: work, flows: [sync]}
      c: {run: work, flows: [sync]}
      sync: {join: and, run: work, flows: [end]}
"""

INPUTS = ("b", "c")


def _consumes_one_each(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "sync")
    if n != 2:
        raise AssertionError(f"two tokens reach each input, so the join must fire twice, not {n}")
    if result.data.get("_tokens"):
        raise AssertionError(f"no token may be left over: {result.data.get('_tokens')}")


PATTERN = Pattern(
    number=33,
    name="Generalised AND-Join",
    definition=(
        "The convergence of two or more branches into a single subsequent branch such that the "
        "thread of control passes on when every incoming branch has been enabled: the join fires "
        "when each input holds at least one token, consuming exactly one per input; extra tokens "
        "stay for later firings; several tokens on one input never stand in for a missing one."
    ),
    spec=SPEC,
    handlers={"work": work},
    properties=(
        ends("completed"),
        (
            "it fires exactly when every input holds a token, arrival by arrival",
            firings_follow("sync", INPUTS, 2, "and", fire_event="item.enabled"),
        ),
        ("each firing consumes one token per input; the extra ones fire it later", _consumes_one_each),
    ),
    construct="join: and: one token consumed per input; extra tokens stay for later firings",
)
