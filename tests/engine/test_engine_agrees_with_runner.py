"""Property: random nets that use every construct (multiple instances, partial joins, threads,
milestones, mutexes, cancellation, OR-joins), run by the engine with a seed and random external
calls, give the same trace on asyncio and trio; and the engine agrees with the pure runner:
folding the engine's stored event log through a fresh NetRunner gives the same trace and state."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

import yawlflow as yf
from yawlflow._runner import NetRunner
from yawlflow._spec import from_data
from yawlflow.testing import FakeClock


def _base_nets() -> Any:
    path = Path(__file__).parent.parent / "runner" / "test_properties.py"
    spec = importlib.util.spec_from_file_location("_runner_properties_for_constructs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.nets


base_nets = _base_nets()


def _incoming(net: dict[str, Any]) -> dict[str, int]:
    counts = {name: 0 for name in net["tasks"]}
    for source in list(net["tasks"].values()) + list(net.get("conditions", {}).values()):
        for flow in source["flows"]:
            target = flow if isinstance(flow, str) else flow["to"]
            if target in counts:
                counts[target] += 1
    if "i" not in net.get("conditions", {}):
        counts[next(iter(net["tasks"]))] += 1
    return counts


@st.composite
def rich_nets(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(base_nets())
    net = data["nets"]["main"]
    tasks: dict[str, Any] = net["tasks"]
    incoming = _incoming(net)
    names = list(tasks)
    for name in names:
        task = tasks[name]
        if "cancels" in task:
            continue
        choice = draw(st.integers(0, 9))
        if choice == 0 and "run" in task:  # WCP-13/34/35/12: instances of an auto task
            join = draw(st.sampled_from(["all", "threshold", "none"]))
            inst: dict[str, Any] = {"count": draw(st.integers(1, 3)), "join": join}
            if join == "threshold":
                inst["threshold"] = 1
                inst["cancel_rest"] = draw(st.booleans())
            if draw(st.booleans()):
                inst["as"] = f"out_{name}"
            task["instances"] = inst
        elif choice == 1 and incoming[name] >= 2:  # WCP-9, 28-32: partial join
            task["join"] = {"partial": draw(st.integers(1, incoming[name])),
                            "reset": draw(st.sampled_from(["wait", "cancel"]))}
        elif choice == 2 and task.get("split") == "and":  # WCP-42: thread split
            task["split"] = {"threads": 2}
        elif choice == 3 and net.get("conditions"):  # WCP-18: milestone
            task["milestone"] = [draw(st.sampled_from(sorted(net["conditions"])))]
    if len(names) >= 2 and draw(st.booleans()):  # WCP-39/40: a mutex over some tasks
        members = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))
        net["mutex"] = {"m": members}
    return data


BUDGET = 40


def run(spec: yf.Spec, seed: int, backend: str) -> tuple[str, list[dict[str, Any]], bool]:
    calls = 0

    async def h(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls > BUDGET:
            raise RuntimeError("handler budget spent")
        for _ in range(ctx.item_id % 3):
            await anyio.lowlevel.checkpoint()
        return {"x": (data.get("x", 0) + ctx.item_id) % 7}

    async def main() -> tuple[str, list[dict[str, Any]], bool]:
        rng = random.Random(seed)
        async with yf.Engine(seed=seed, clock=FakeClock(autojump=True), handlers={"h": h}) as engine:
            case = await engine.start(spec, {"x": seed % 7})
            for _ in range(25):
                await case.idle()
                offered = case.work_items("offered")
                if case.status != "running" or not offered:
                    break
                item = offered[rng.randrange(len(offered))]
                if rng.random() < 0.15:
                    await case.cancel_item(item.id)
                else:
                    await case.complete(item.id, {"x": rng.randrange(7)})
            await case.idle()
            # the pure runner, fed the engine's log, must reach the same trace and state
            events = engine.store.events(case.id)
            runner = NetRunner(case._runner.net)
            state = runner.initial_state(events[0])  # type: ignore[arg-type]
            replayed: list[dict[str, Any]] = []
            for event in events:
                replayed.extend(runner.handle(state, event).trace)
            own = [e for e in case.trace if e["case"] == case.id]
            agrees = replayed == own and state == case._state
            return case.status, case.trace, agrees

    return anyio.run(main, backend=backend)


@settings(max_examples=60)
@given(spec_data=rich_nets(), seed=st.integers(0, 2**16))
def test_every_construct_is_deterministic_and_the_engine_agrees_with_the_runner(
    spec_data: dict[str, Any], seed: int
) -> None:
    try:
        spec = from_data(spec_data)
    except yf.SpecError:
        return  # a decoration the validator refuses (e.g. a milestone on an unreachable place)
    first = run(spec, seed, "asyncio")
    assert first[2], f"seed {seed}: folding the engine's log through the runner gave another trace or state"
    assert run(spec, seed, "trio") == first, f"seed {seed}: trio differs from asyncio"
