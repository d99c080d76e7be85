"""WCP-20 Cancel Case: the whole case is removed, sub-cases and instances included."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import ends, label, play, positions, steps, withdrawn_at, work

if TYPE_CHECKING:
    from yawlflow import Case, Result, WorkItem

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp20_cancel_case
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      order: {run: work, split: and, flows: [pack, audit, tag, abort]}
      pack: {external: true, flows: [close]}
      audit: {net: audit_net, flows: [close]}
      tag: {external: true, instances: {count: 2}, flows: [close]}
      abort: {external: true, cancels: [main], flows: [end]}
      close: {join: and, flows: [end]}
  audit_net:
    input: begin
    output: done
    tasks:
      inspect: {external: true, flows: [done]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    def not_abort(w: WorkItem) -> bool:
        return w.task != "abort"

    await play(case, rng, only=not_abort, max_moves=rng.randint(0, 4))
    await case.idle()
    (abort,) = [w for w in case.work_items("offered") if w.task == "abort"]
    await case.complete(abort.id)


def _cause(trace: Trace) -> int:
    (done,) = positions(trace, "item.completed", "abort")
    return done


def _all_withdrawn(trace: Trace, result: Result) -> None:
    at = _cause(trace)
    withdrawn_at(trace, at)
    subcases = sorted({str(r["case"]) for r in trace if r["case"] != result.case_id})
    for sub in subcases:
        if not any(r["case"] == sub and r["event"] == "case.cancelled" for r in trace[at:]):
            raise AssertionError(f"sub-case {sub} was not cancelled with its parent")


def _nothing_after(trace: Trace, result: Result) -> None:
    at = _cause(trace)
    step = steps(trace)
    for i in range(at + 1, len(trace)):
        r = trace[i]
        if not (r["event"] in ("item.cancelled", "case.cancelled") and step[i] == step[at]):
            raise AssertionError(f"{label(r)} happens after the case was cancelled at {label(trace[at])}")


PATTERN = Pattern(
    number=20,
    name="Cancel Case",
    definition=(
        "A complete process instance is removed: every enabled or running work item, in sub-cases "
        "and multiple-instance tasks included, is withdrawn in the step of the cancellation, the "
        "sub-cases are cancelled too, the case ends as cancelled, and nothing runs afterwards."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("cancelled"),
        ("every live item, in sub-cases and instances too, is withdrawn", _all_withdrawn),
        ("nothing runs after the cancellation", _nothing_after),
    ),
    construct="cancels: [<its own net>] on a task, or case.cancel() from the API",
)
