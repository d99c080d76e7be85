"""Restart and compare (as Zeebe tests its engine): for generated nets and random paths, after every
step the engine is stopped, a new one is built from the SQLite store (latest snapshot + the events
after it), and the rebuilt case must equal the live one — state, trace and work items — before the
path goes on in the rebuilt engine.

Snapshots are taken every 3 events here, so most rebuilds start from one; the nets use every
construct the runner has (multiple instances, partial joins, threads, milestones, mutexes,
cancellation, OR-joins), from ``test_engine_agrees_with_runner.rich_nets``.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

import yawlflow as yf
from yawlflow._durable import fold_case
from yawlflow._provenance import verify
from yawlflow._spec import from_data
from yawlflow.testing import FakeClock


def _rich_nets() -> Any:
    path = Path(__file__).parent / "test_engine_agrees_with_runner.py"
    spec = importlib.util.spec_from_file_location("_engine_agrees_for_restarts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.rich_nets


rich_nets = _rich_nets()


BUDGET = 40  # handler calls per path: a loop of auto tasks may not end by itself


def restart_and_compare(spec: yf.Spec, seed: int, folder: Path) -> int:
    """Drive a case along a seeded random path, rebuilding the engine after every step; return the steps."""
    url = f"sqlite:///{folder / 'cases.db'}?snapshot_every=3&synchronous=OFF"
    rng = random.Random(seed)
    calls = 0

    async def h(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls > BUDGET:
            raise RuntimeError("handler budget spent")
        for _ in range(ctx.item_id % 3):
            await anyio.lowlevel.checkpoint()
        return {"x": (data.get("x", 0) + ctx.item_id) % 7}

    def engine() -> yf.Engine:
        return yf.Engine(store=url, seed=seed, clock=FakeClock(autojump=True), handlers={"h": h})

    async def main() -> int:
        async with engine() as first:
            case = await first.start(spec, {"x": seed % 7})
            await case.idle()
            case_id = case.id
            live = (case._state.copy(), case.trace, case.work_items())
        steps = 0
        for steps in range(1, 16):
            async with engine() as rebuilt:
                resumed = await rebuilt.resume()
                case = rebuilt.case(case_id)
                assert resumed == ([case] if live[0].status == "running" else [])
                assert case._state == live[0], f"step {steps}: the rebuilt state differs"
                assert case.trace == live[1], f"step {steps}: the rebuilt trace differs"
                assert case.work_items() == live[2]
                store = rebuilt.store
                runner, blank = rebuilt._runner_for(case._spec, case.net)
                assert fold_case(store, case_id, runner, blank, use_snapshot=False).state == live[0]
                if case.status != "running":
                    break
                offered = case.work_items("offered")
                if not offered:
                    break
                item = offered[rng.randrange(len(offered))]
                if rng.random() < 0.15:
                    await case.cancel_item(item.id)
                else:
                    await case.complete(item.id, {"x": rng.randrange(7)})
                await case.idle()
                live = (case._state.copy(), case.trace, case.work_items())
        return steps

    return anyio.run(main)


@settings(max_examples=30)
@given(spec_data=rich_nets(), seed=st.integers(0, 2**16))
def test_after_every_step_the_engine_rebuilt_from_the_store_equals_the_live_one(
    spec_data: dict[str, Any], seed: int
) -> None:
    try:
        spec = from_data(spec_data)
    except yf.SpecError:
        return  # a decoration the validator refuses (e.g. a milestone on an unreachable place)
    with tempfile.TemporaryDirectory() as folder:
        restart_and_compare(spec, seed, Path(folder))
        assert verify(Path(folder) / "cases.db") == []


def test_a_long_path_through_snapshots() -> None:
    spec = yf.loads("""
yawlflow: 1
id: long
nets:
  main:
    input: start
    output: end
    tasks:
      work: {external: true, split: xor, flows: [{to: work, when: "x < 6"}, {to: end, default: true}]}
""")
    with tempfile.TemporaryDirectory() as folder:
        steps = restart_and_compare(spec, 1, Path(folder))
        assert steps >= 2
