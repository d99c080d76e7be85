"""WCP-22 Recursion: a task's decomposition invokes its own enclosing net."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._catalogue import Pattern
from ._kit import ends, label

if TYPE_CHECKING:
    from yawlflow import ItemContext, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

# `descend` runs a sub-case of `countdown`, the net it belongs to, until depth reaches 0.
SPEC = """\
yawlflow: 1
id: wcp22_recursion
nets:
  countdown:
    input: start
    output: end
    tasks:
      visit:
        run: visit
        split: xor
        flows:
          - {to: descend, when: "depth > 0"}
          - {to: end, default: true}
      descend: {net: countdown, flows: [end]}
"""

DEPTH = 3


async def visit(data: dict[str, Any], ctx: ItemContext) -> dict[str, Any]:
    """Records this invocation's depth on the path and goes one level down."""
    return {"depth": int(data["depth"]) - 1, "path": [*data["path"], int(data["depth"])]}


def _parent(case: str) -> str:
    return case.rsplit("/", 1)[0]


def _subcases(trace: Trace, result: Result) -> None:
    subs = [r for r in trace if r["event"] == "case.started" and r["case"] != result.case_id]
    if len(subs) != DEPTH - 1:
        raise AssertionError(
            f"depth {DEPTH} takes {DEPTH} invocations: the case and {DEPTH - 1} recursive sub-cases, found "
            f"{len(subs)} sub-cases"
        )
    for r in subs:
        done = [x for x in trace if x["case"] == r["case"] and x["event"] == "case.completed"]
        if len(done) != 1:
            raise AssertionError(f"sub-case {r['case']} did not complete once")


def _own_state(trace: Trace, result: Result) -> None:
    starts = {str(r["case"]): r["data"] for r in trace if r["event"] == "case.started"}
    for case, data in starts.items():
        if case == result.case_id:
            continue
        parent = starts[_parent(case)]
        if int(data["depth"]) != int(parent["depth"]) - 1:
            raise AssertionError(
                f"sub-case {case} started with depth {data['depth']}, its caller with {parent['depth']}: "
                "each invocation must have its own state"
            )
    want = list(range(DEPTH, 0, -1))
    if result.data["path"] != want:
        raise AssertionError(f"the invocations must visit depths {want} in turn, got {result.data['path']}")


def _nested(trace: Trace, result: Result) -> None:
    where = {i: r for i, r in enumerate(trace)}
    for i, r in where.items():
        if r["event"] != "case.started" or r["case"] == result.case_id:
            continue
        case = str(r["case"])
        parent, item = _parent(case), int(case.rsplit("/", 1)[1])
        caller = [j for j, x in where.items() if x["case"] == parent and x["item"] == item]
        began = [j for j in caller if where[j]["event"] == "item.started"]
        resumed = [j for j in caller if where[j]["event"] == "item.completed"]
        (ended,) = [j for j, x in where.items() if x["case"] == case and x["event"] == "case.completed"]
        if not (began and began[0] < i):
            raise AssertionError(f"sub-case {case} started before its caller's item did")
        if not (resumed and ended < resumed[0]):
            raise AssertionError(
                f"the caller resumed ({label(trace[resumed[0]]) if resumed else 'never'}) before its callee "
                f"{case} completed ({label(trace[ended])})"
            )


PATTERN = Pattern(
    number=22,
    name="Recursion",
    definition=(
        "The ability of a task to invoke itself during its execution or an ancestor in terms of the "
        "overall decomposition structure with which it is associated. Each invocation runs as its "
        "own sub-case with its own state (here one level deeper each time); the caller resumes only "
        "after its callee has completed, so invocations nest."
    ),
    spec=SPEC,
    handlers={"visit": visit},
    data={"depth": DEPTH, "path": []},
    properties=(
        ends("completed"),
        ("each invocation is its own sub-case, and completes", _subcases),
        ("each invocation has its own state", _own_state),
        ("invocations nest: the caller resumes after its callee completes", _nested),
    ),
    construct="net: <the enclosing net> on a composite task: each call is its own sub-case",
)
