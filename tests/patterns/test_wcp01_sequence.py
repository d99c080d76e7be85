"""WCP-1 Sequence: B is enabled only after A completes; B never starts before A completes."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC_EXTERNAL = yf.loads(
    """
yawlflow: 1
id: wcp01_external
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, flows: [b]}
      b: {external: true, flows: [c]}
      c: {external: true, flows: [end]}
""",
    source="wcp01_external.yaml",
)

SPEC_AUTO = yf.loads(
    """
yawlflow: 1
id: wcp01_auto
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: step_a, flows: [b]}
      b: {run: step_b, flows: [c]}
      c: {run: step_c, flows: [end]}
""",
    source="wcp01_auto.yaml",
)


Trace = list[dict[str, Any]]


def _events(trace: Trace, event: str | None = None, task: str | None = None) -> Trace:
    """The trace records of ``event`` (any if None) about ``task`` (any if None), in order."""
    return [e for e in trace if event in (None, e["event"]) and task in (None, e["task"])]


def _seq(trace: list[dict[str, Any]], event: str, task: str) -> int:
    (hit,) = _events(trace, event, task)
    return int(hit["seq"])


def _recording_handlers(log: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    def make(name: str) -> Any:
        def handler(data: dict[str, Any]) -> dict[str, Any]:
            log.append((name, dict(data)))
            return {name: len(log)}

        return handler

    return {f"step_{n}": make(n) for n in "abc"}


@pytest.mark.anyio
async def test_b_is_offered_only_after_a_completes() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {})
        await case.idle()
        assert [(w.task, w.state) for w in case.work_items()] == [("a", "offered")]

        (a,) = case.work_items("offered")
        await case.start_item(a.id)
        await case.idle()
        # A started but not completed: still nothing of B (or C) anywhere.
        assert [(w.task, w.state) for w in case.work_items()] == [("a", "started")]
        assert not _events(case.trace, task="b") and not _events(case.trace, task="c")

        await case.complete(a.id, {"x": 1})
        await case.idle()
        assert [(w.task, w.state) for w in case.work_items()] == [("b", "offered")]
        assert not _events(case.trace, task="c")

        (b,) = case.work_items("offered")
        await case.complete(b.id)
        (c,) = case.work_items("offered")
        assert c.task == "c"
        await case.complete(c.id)
        result = await case.result()

    assert result.status == "completed"
    trace = result.trace
    assert _seq(trace, "item.completed", "a") < _seq(trace, "item.enabled", "b")
    assert _seq(trace, "item.completed", "b") < _seq(trace, "item.enabled", "c")
    assert [e["task"] for e in _events(trace, "item.completed")] == ["a", "b", "c"]
    assert trace[-1]["event"] == "case.completed"
    assert result.data == {"x": 1}
    assert [e["seq"] for e in trace] == list(range(len(trace)))
    assert all(e["case"] == case.id and e["net"] == "main" and e["instance"] is None for e in trace)


@pytest.mark.anyio
async def test_b_cannot_be_started_or_completed_before_it_is_enabled() -> None:
    async with yf.Engine(clock=FakeClock()) as engine:
        case = await engine.start(SPEC_EXTERNAL, {})
        (a,) = case.work_items("offered")
        # Item ids that B or C would get do not exist yet: the API refuses them, changing nothing.
        for bogus in (a.id + 1, a.id + 2):
            with pytest.raises(yf.InvalidEventError):
                await case.start_item(bogus)
            with pytest.raises(yf.InvalidEventError):
                await case.complete(bogus)
        assert [(w.task, w.state) for w in case.work_items()] == [("a", "offered")]
        await case.cancel()


@pytest.mark.anyio
async def test_auto_b_never_starts_while_a_runs() -> None:
    a_entered = anyio.Event()
    release_a = anyio.Event()
    seen: list[tuple[str, dict[str, Any]]] = []

    async def step_a(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(("a", dict(data)))
        a_entered.set()
        await release_a.wait()
        return {"from_a": 41}

    async def step_b(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(("b", dict(data)))
        return {"from_b": data["from_a"] + 1}

    async def step_c(data: dict[str, Any]) -> None:
        seen.append(("c", dict(data)))

    handlers = {"step_a": step_a, "step_b": step_b, "step_c": step_c}
    async with yf.Engine(clock=FakeClock(), handlers=handlers) as engine:
        with anyio.fail_after(10):
            case = await engine.start(SPEC_AUTO, {"n": 0})
            await a_entered.wait()
            await anyio.wait_all_tasks_blocked()
            assert [(w.task, w.state) for w in case.work_items()] == [("a", "started")]
            assert not _events(case.trace, task="b")
            assert [name for name, _ in seen] == ["a"]
            release_a.set()
            result = await case.result()

    assert result.status == "completed"
    assert [name for name, _ in seen] == ["a", "b", "c"]
    assert seen[1][1] == {"n": 0, "from_a": 41}  # B sees A's output: A really completed first
    assert seen[2][1] == {"n": 0, "from_a": 41, "from_b": 42}
    trace = result.trace
    assert _seq(trace, "item.completed", "a") < _seq(trace, "item.enabled", "b")
    assert _seq(trace, "item.enabled", "b") < _seq(trace, "item.started", "b")
    assert _seq(trace, "item.completed", "b") < _seq(trace, "item.enabled", "c")


@pytest.mark.parametrize("seed", range(5))
def test_seeded_runs_keep_the_order_and_are_reproducible(seed: int) -> None:
    log: list[tuple[str, dict[str, Any]]] = []
    first = yf.run(SPEC_AUTO, {"n": 0}, seed=seed, handlers=_recording_handlers(log))
    assert first.status == "completed", (seed, first.error)
    assert [name for name, _ in log] == ["a", "b", "c"], seed
    assert [e["task"] for e in _events(first.trace, "item.started")] == ["a", "b", "c"], seed
    again = yf.run(SPEC_AUTO, {"n": 0}, seed=seed, handlers=_recording_handlers([]))
    on_trio = yf.run(SPEC_AUTO, {"n": 0}, seed=seed, handlers=_recording_handlers([]), backend="trio")
    assert first.trace == again.trace == on_trio.trace, seed
    assert first.case_id == again.case_id == on_trio.case_id, seed
