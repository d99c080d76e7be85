"""``Case.why()`` and ``yawlflow cases why``: what a running case waits for — offered items, a
signal, a timer, an OR-join still waiting for a branch, an AND-join missing inputs, a mutex held
by another region, a handler held by a suspension — and ``cases show`` marks dead-lettered items."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from kit import cli

import yawlflow as yf
from yawlflow.cli import EXIT_BAD_INPUT, EXIT_COMPLETED

pytestmark = pytest.mark.anyio

WAITS = """
yawlflow: 1
id: waits
nets:
  main:
    input: start
    output: end
    conditions:
      wait: {flows: [approve, expire]}
    tasks:
      a: {split: and, flows: [wait, b, sig]}
      approve: {external: true, flows: [m]}
      expire: {timer: {after: 10s}, flows: [m]}
      b: {external: true, flows: [m]}
      sig: {trigger: {signal: go}, flows: [m]}
      m: {join: and, flows: [end]}
"""

ORJOIN = """
yawlflow: 1
id: orjoin
nets:
  main:
    input: start
    output: end
    tasks:
      a: {split: or, flows: [{to: x, when: "true"}, {to: y, when: "true"}]}
      x: {external: true, flows: [m]}
      y: {external: true, flows: [y2]}
      y2: {external: true, flows: [m]}
      m: {join: or, flows: [end]}
"""

MUTEX = """
yawlflow: 1
id: mutex
nets:
  main:
    input: start
    output: end
    mutex:
      desk: [[p], [q]]
    tasks:
      a: {split: and, flows: [p, q]}
      p: {external: true, flows: [m]}
      q: {external: true, flows: [m]}
      m: {join: and, flows: [end]}
"""

DEAD = """
yawlflow: 1
id: dead
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: boom, critical: false, retry: {attempts: 2, backoff: 1ms}, flows: [b]}
      b: {external: true, flows: [end]}
"""


def kinds(case: yf.Case) -> list[tuple[str, str | None]]:
    return [(w.kind, w.task) for w in case.why()]


async def test_why_names_offered_items_signals_timers_and_joins() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(WAITS))
        assert kinds(case) == [("offered", "approve"), ("timer", "expire"), ("offered", "b"), ("trigger", "sig")]
        assert "case.signal('go')" in case.why()[3].message
        b = next(i for i in case.work_items("offered") if i.task == "b")
        await case.complete(b.id)
        assert ("join", "m") in kinds(case)
        [join] = [w for w in case.why() if w.kind == "join"]
        assert "AND-join" in join.message and "the flow from sig" in join.message
        assert "the flow from b" not in join.message  # that input is there
        await case.cancel()
        assert case.why() == []


async def test_why_names_an_or_join_waiting_for_a_branch_that_may_still_arrive() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(ORJOIN))
        x = next(i for i in case.work_items("offered") if i.task == "x")
        await case.complete(x.id)
        [orjoin] = [w for w in case.why() if w.kind == "or-join"]
        assert orjoin.task == "m" and "may still reach" in orjoin.message
        for task in ("y", "y2"):
            item = next(i for i in case.work_items("offered") if i.task == task)
            await case.complete(item.id)
        assert (await case.result()).status == "completed"


async def test_why_names_a_mutex_held_by_another_region() -> None:
    async with yf.Engine() as engine:
        case = await engine.start(yf.loads(MUTEX))
        p = next(i for i in case.work_items("offered") if i.task == "p")
        await case.start_item(p.id)  # p's region now holds the mutex: q's offer is withdrawn
        [held] = [w for w in case.why() if w.kind == "mutex"]
        assert held.task == "q" and "held by p" in held.message


async def test_why_names_a_suspension_and_the_handlers_it_holds() -> None:
    gate = anyio.Event()

    async def slow(data: dict[str, Any]) -> None:
        await gate.wait()

    spec = yf.loads(DEAD.replace("run: boom, critical: false, retry: {attempts: 2, backoff: 1ms}", "run: slow")
                    .replace("b: {external: true", "b: {run: slow"))
    async with yf.Engine(handlers={"slow": slow}) as engine:
        case = await engine.start(spec)
        await anyio.wait_all_tasks_blocked()
        assert kinds(case) == [("handler", "a")]
        await case.suspend()
        gate.set()
        await case.idle()
        waits = case.why()
        assert [w.kind for w in waits] == ["suspended", "handler"]
        assert "starts when the case (or item) is resumed" in waits[1].message
        await case.resume()
        assert (await case.result()).status == "completed"


async def test_cases_why_reads_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'cases.db'}"
    async with yf.Engine(store=store) as engine:
        case = await engine.start(yf.loads(WAITS))
        live = [w.message for w in case.why()]
    code, out, _ = cli(capsys, "cases", "why", case.id, "--store", store)
    assert code == EXIT_COMPLETED
    assert out.splitlines()[0] == f"case {case.id} (running) waits for:"
    for message in live:
        assert message in out
    code, out, _ = cli(capsys, "cases", "why", case.id, "--store", store, "--json")
    assert [w["kind"] for w in orjson.loads(out)] == ["offered", "timer", "offered", "trigger"]
    code, _, err = cli(capsys, "cases", "why", "case-nope", "--store", store)
    assert code == EXIT_BAD_INPUT and "no case 'case-nope'" in err


async def test_cases_show_marks_a_dead_lettered_item(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'cases.db'}"

    def boom(data: dict[str, Any]) -> None:
        raise RuntimeError("down")

    async with yf.Engine(store=store, handlers={"boom": boom}) as engine:
        case = await engine.start(yf.loads(DEAD))
        await case.idle()
        assert [i.task for i in case.work_items("offered")] == ["b"]  # the case went on
        assert [i.task for i in case.work_items("failed")] == ["a"]
    code, out, _ = cli(capsys, "cases", "show", case.id, "--store", store)
    assert code == EXIT_COMPLETED
    assert "a: enabled -> started -> retried -> failed -> dead-lettered" in out
    code, out, _ = cli(capsys, "cases", "why", case.id, "--store", store)
    assert "item" in out and "(b) is offered" in out
