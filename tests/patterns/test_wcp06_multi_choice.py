"""WCP-6 Multi-Choice: every branch whose condition holds is enabled (the default if none);
branches whose condition is false never start."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.loads(
    """
yawlflow: 1
id: wcp06
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        run: pick
        split: or
        flows:
          - {to: b, when: "want_b"}
          - {to: c, when: "want_c"}
          - {to: d, when: "want_d"}
          - {to: fallback, default: true}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      d: {external: true, flows: [j]}
      fallback: {external: true, flows: [j]}
      j: {join: or, flows: [end]}
""",
    source="wcp06.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp06_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        split: or
        flows:
          - {to: b, when: "want_b"}
          - {to: c, when: "want_c"}
          - {to: d, when: "want_d"}
      b: {run: work, flows: [j]}
      c: {run: work, flows: [j]}
      d: {run: work, flows: [j]}
      j: {join: or, flows: [end]}
""",
    source="wcp06_auto.yaml",
)

COMBOS = list(itertools.product([False, True], repeat=3))


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _pick(data: dict[str, Any]) -> dict[str, Any]:
    # The split reads the flags this task writes: evaluated after its output merged.
    b, c, d = data["flags"]
    return {"want_b": b, "want_c": c, "want_d": d}


@pytest.mark.anyio
@pytest.mark.parametrize("flags", COMBOS, ids=lambda f: "".join("1" if x else "0" for x in f))
async def test_every_true_branch_and_only_those(flags: tuple[bool, bool, bool]) -> None:
    chosen = {t for t, on in zip("bcd", flags, strict=True) if on} or {"fallback"}
    async with yf.Engine(clock=FakeClock(), handlers={"pick": _pick}) as engine:
        case = await engine.start(SPEC, {"flags": list(flags)})
        await case.idle()
        live = case.work_items()
        assert {w.task for w in live} == chosen
        assert all(w.state == "offered" for w in live)
        for other in {"b", "c", "d", "fallback"} - chosen:
            assert not _events(case.trace, task=other), other
        for w in live:
            await case.complete(w.id)
        result = await case.result()

    assert result.status == "completed"
    trace = result.trace
    assert {e["task"] for e in _events(trace, "item.started")} - {"a"} == chosen
    assert len(_events(trace, "item.completed", "j")) == 1
    assert not _events(trace, "item.cancelled")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("flags", [(True, False, True), (False, True, False), (True, True, True)])
def test_seeded_only_true_branches_run(seed: int, flags: tuple[bool, bool, bool]) -> None:
    log: list[str] = []

    def work(data: dict[str, Any], ctx: yf.ItemContext) -> None:
        log.append(ctx.task)

    data = {"want_b": flags[0], "want_c": flags[1], "want_d": flags[2]}
    result = yf.run(SPEC_AUTO, data, seed=seed, handlers={"work": work})
    assert result.status == "completed", result.error
    expected = [t for t, on in zip("bcd", flags, strict=True) if on]
    assert sorted(log) == expected
    assert sorted(e["task"] for e in _events(result.trace, "item.started")) == expected
