"""WCP-10 Arbitrary Cycles: loops with several entry or exit points and unstructured back edges
run.

The net: `a` enters the cycle b → c → d → b at b or at c (two entry points); the cycle is left
from c (to x) or from d (to y) (two exits); d → b is the back edge. Every task in the cycle
increments `n` and records its visit; the exits are decided from that data.
"""

from __future__ import annotations

from typing import Any

import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC_TEXT = """
yawlflow: 1
id: wcp10
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        split: xor
        flows:
          - {to: b, when: "entry == 'b'"}
          - {to: c, default: true}
      b: {RUN, flows: [c]}
      c:
        RUN
        split: xor
        flows:
          - {to: x, when: "n >= limit && exit == 'c'"}
          - {to: d, default: true}
      d:
        RUN
        split: xor
        flows:
          - {to: y, when: "n >= limit"}
          - {to: b, default: true}
      x: {flows: [end]}
      y: {flows: [end]}
"""

SPEC_AUTO = yf.loads(
    SPEC_TEXT.replace("{RUN,", "{run: visit,").replace("RUN", "run: visit"), source="wcp10_auto.yaml"
)
SPEC_EXTERNAL = yf.loads(
    SPEC_TEXT.replace("{RUN,", "{external: true,").replace("RUN", "external: true"),
    source="wcp10_external.yaml",
)

CASES = [
    ("b", "c", 1),   # enter at b, leave at d (exit 'c' needs n >= 1 at c: c is visit 2) -> x
    ("b", "d", 1),
    ("c", "c", 1),
    ("c", "d", 1),
    ("b", "c", 5),
    ("b", "d", 5),
    ("c", "c", 7),
    ("c", "d", 8),
]


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _expected_path(entry: str, exit: str, limit: int) -> list[str]:
    """The oracle: the visits the net must make, computed by hand."""
    path: list[str] = []
    node = entry
    while True:
        path.append(node)
        n = len(path)
        if node == "b":
            node = "c"
        elif node == "c":
            if n >= limit and exit == "c":
                return [*path, "x"]
            node = "d"
        else:
            if n >= limit:
                return [*path, "y"]
            node = "b"


def _visit(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
    return {"n": data["n"] + 1, "visits": [*data["visits"], ctx.task]}


def _data(entry: str, exit: str, limit: int) -> dict[str, Any]:
    return {"entry": entry, "exit": exit, "limit": limit, "n": 0, "visits": []}


@pytest.mark.anyio
@pytest.mark.parametrize(("entry", "exit", "limit"), CASES)
async def test_cycle_with_two_entries_and_two_exits_runs(entry: str, exit: str, limit: int) -> None:
    expected = _expected_path(entry, exit, limit)
    async with yf.Engine(clock=FakeClock(), handlers={"visit": _visit}) as engine:
        case = await engine.start(SPEC_AUTO, _data(entry, exit, limit))
        result = await case.result()
    assert result.status == "completed", result.error
    assert result.data["visits"] == expected[:-1]
    assert result.data["n"] == len(expected) - 1
    completed = [e["task"] for e in _events(result.trace, "item.completed")]
    assert completed == ["a", *expected]
    assert {"x", "y"} & set(completed) == {expected[-1]}  # exactly one exit is taken


@pytest.mark.anyio
async def test_each_visit_is_a_new_offered_item() -> None:
    entry, exit, limit = "c", "d", 5
    expected = _expected_path(entry, exit, limit)
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, _data(entry, exit, limit))
        seen: list[tuple[str, int]] = []
        n = 0
        while case.status == "running":
            (item,) = case.work_items()
            assert item.state == "offered"
            seen.append((item.task, item.id))
            n += 1
            await case.complete(item.id, {"n": n})
        result = await case.result()
    assert result.status == "completed"
    assert [task for task, _ in seen] == expected[:-1]
    assert len({item for _, item in seen}) == len(seen)  # one fresh item per visit
    assert _events(result.trace, "item.completed")[-1]["task"] == expected[-1]


@pytest.mark.parametrize("seed", [0, 3])
def test_seeded_cycles_are_reproducible(seed: int) -> None:
    data = _data("b", "d", 6)
    runs = [
        yf.run(SPEC_AUTO, data, seed=seed, handlers={"visit": _visit}),
        yf.run(SPEC_AUTO, data, seed=seed, handlers={"visit": _visit}, backend="trio"),
    ]
    assert runs[0].status == "completed"
    assert runs[0].trace == runs[1].trace
    assert runs[0].data["visits"] == _expected_path("b", "d", 6)[:-1]


# A cycle whose body forks and joins: b → (c ∥ d) → e, and e goes back to b or leaves.
SPEC_PARALLEL_BODY = yf.loads(
    """
yawlflow: 1
id: wcp10_parallel_body
nets:
  main:
    input: start
    output: end
    tasks:
      a: {flows: [b]}
      b: {run: visit, split: and, flows: [c, d]}
      c: {run: visit, flows: [e]}
      d: {run: visit, flows: [e]}
      e:
        join: and
        split: xor
        flows:
          - {to: b, when: "rounds < limit"}
          - {to: end, default: true}
""",
    source="wcp10_parallel_body.yaml",
)


@pytest.mark.parametrize("seed", range(5))
def test_a_cycle_with_a_parallel_body_synchronises_each_round(seed: int) -> None:
    visits: list[str] = []

    def visit(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any] | None:
        visits.append(ctx.task)
        # Only b writes: c and d of one round start from the same data, so they must not race.
        return {"rounds": data["rounds"] + 1} if ctx.task == "b" else None

    result = yf.run(SPEC_PARALLEL_BODY, {"limit": 3, "rounds": 0}, seed=seed, handlers={"visit": visit})
    assert result.status == "completed", (seed, result.error)
    rounds = [visits[i : i + 3] for i in range(0, len(visits), 3)]
    assert len(rounds) == 3, (seed, visits)
    for r in rounds:
        assert r[0] == "b" and sorted(r[1:]) == ["c", "d"], (seed, visits)
    assert len(_events(result.trace, "item.completed", "e")) == 3
