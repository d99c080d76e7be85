"""Crash at every write: whatever prefix of its writes a store kept, the resumed case ends as a
crash-free run does, and no effect is applied twice.

The engine's writes reach the store in order (the SQLite writer commits FIFO), so after a crash the
file holds a *prefix* of them (ADR 0005). A recording store notes every write of a crash-free run,
and which handler calls happened when; then, for every prefix, a fresh SQLite file gets exactly
that prefix, and a new engine resumes it. Handlers record their effects idempotently, keyed by
``ctx.idempotency_key``. Two worlds per prefix: the effects of the calls made up to the crash took
place; or every call of the whole run took place (the store lost a tail that the handlers had
already acted on). In both, the case must end with the crash-free data, every effect applied once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow._events import Event
from yawlflow._provenance import verify
from yawlflow._sqlite import SqliteStore
from yawlflow._store import CaseRecord, MemoryStore
from yawlflow.testing import FakeClock

NESTED = """
yawlflow: 1
id: crash
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: effect, split: and, flows: [b, c]}
      b: {run: effect, flows: [d]}
      c: {net: sub, flows: [d]}
      d: {join: and, external: true, flows: [e]}
      e: {run: effect, flows: [end]}
  sub:
    input: s
    output: t
    tasks:
      x: {run: effect, flows: [w]}
      w: {timer: {after: 5s}, flows: [y]}
      y: {run: effect, flows: [t]}
"""

# b withdraws the composite c while its sub-case waits: the sub-case is cancelled in the same step
WITHDRAWN = """
yawlflow: 1
id: withdrawn
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: effect, split: and, flows: [b, c]}
      b: {run: effect, cancels: [c], flows: [d]}
      c: {net: sub, flows: [d]}
      d: {run: effect, flows: [end]}
  sub:
    input: s
    output: t
    tasks:
      x: {run: effect, flows: [y]}
      y: {external: true, flows: [t]}
"""


class Recording(MemoryStore):
    """A memory store that notes every write, in the order the engine made them."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, Any, Any]] = []

    def create(self, record: CaseRecord, spec: Any) -> None:
        super().create(record, spec)
        self.ops.append(("create", CaseRecord(**{f: getattr(record, f) for f in record.__struct_fields__}), spec))

    def append(self, case: str, event: Event) -> int:
        seq = super().append(case, event)
        self.ops.append(("append", case, event))
        return seq

    def set_status(self, case: str, status: str) -> None:
        super().set_status(case, status)
        self.ops.append(("status", case, status))


class Effects:
    """An idempotent effect per key, as a well-behaved handler keeps it (e.g. in its own database)."""

    def __init__(self, store: Recording | None = None, done: dict[str, int] | None = None) -> None:
        self.store = store
        self.applied: dict[str, int] = dict(done or {})  # key -> when (writes made before the call)
        self.calls: list[str] = []

    def __call__(self, data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        key = ctx.idempotency_key
        self.calls.append(key)
        if key not in self.applied:
            self.applied[key] = len(self.store.ops) if self.store is not None else -1
        return {f"did_{ctx.task}": True}


async def drive(case: yf.Case) -> yf.Result:
    for _ in range(20):
        await case._settled()  # idle, and armed timers have fired (the clock jumps to them)
        offered = case.work_items("offered")
        if case.status != "running" or not offered:
            break
        await case.complete(offered[0].id, {"approved": True})
    return await case.result()


def crash_free(source: str) -> tuple[Recording, Effects, yf.Result, int]:
    store = Recording()
    effects = Effects(store)
    acked = -1

    async def main() -> yf.Result:
        nonlocal acked
        engine = yf.Engine(seed=2, clock=FakeClock(autojump=True))
        engine._store = store  # the recording store in place of the engine's own memory store
        engine.handlers.register("effect", effects, quick=True)
        async with engine:
            case = await engine.start(yf.loads(source), {"n": 1})
            acked = len(store.ops)  # what start() acknowledged
            return await drive(case)

    result = anyio.run(main)
    return store, effects, result, acked


RUNS = {"nested": crash_free(NESTED), "withdrawn": crash_free(WITHDRAWN)}
POINTS = [(name, k) for name, run in RUNS.items() for k in range(len(run[0].ops) + 1)]


def test_the_crash_free_runs() -> None:
    store, effects, expected, _ = RUNS["nested"]
    assert expected.status == "completed"
    assert set(expected.data) == {"n", "approved", "did_a", "did_b", "did_x", "did_y", "did_e"}
    assert sorted(effects.calls) == sorted(effects.applied)  # each ran once
    assert [op[2] for op in store.ops if op[0] == "status"] == ["completed", "completed"]
    store, effects, expected, _ = RUNS["withdrawn"]
    assert expected.status == "completed"
    assert set(expected.data) == {"n", "did_a", "did_b", "did_d"}
    assert [op[2] for op in store.ops if op[0] == "status"] == ["cancelled", "completed"]


def write_prefix(ops: list[tuple[str, Any, Any]], path: Path, k: int) -> None:
    with SqliteStore(path, writer="inline", synchronous="OFF") as store:
        for op, a, b in ops[:k]:
            if op == "create":
                store.create(a, b)
            elif op == "append":
                store.append(a, b)
            else:
                store.set_status(a, b)


@pytest.mark.parametrize("world", ["effects-up-to-the-crash", "every-effect-done"])
@pytest.mark.parametrize(("spec", "k"), POINTS, ids=[f"{name}-{k}" for name, k in POINTS])
def test_a_crash_after_any_prefix_of_writes(tmp_path: Path, spec: str, k: int, world: str) -> None:
    recording, crash_free_effects, expected, acked = RUNS[spec]
    path = tmp_path / "crash.db"
    write_prefix(recording.ops, path, k)
    if world == "every-effect-done":
        done = dict(crash_free_effects.applied)
    else:
        done = {key: when for key, when in crash_free_effects.applied.items() if when <= k}
    effects = Effects(done=done)

    async def main() -> yf.Result | None:
        async with yf.Engine(store=f"sqlite:///{path}?synchronous=OFF", seed=2,
                             clock=FakeClock(autojump=True)) as engine:
            engine.handlers.register("effect", effects, quick=True)
            resumed = await engine.resume()
            for case in resumed:
                await drive(case)
            records = await engine.cases()
            assert all(r.status != "running" for r in records), records  # nothing left behind
            try:
                case = engine.case(expected.case_id)
            except yf.InvalidEventError:
                return None  # never registered: start() had not returned
            return await case.result()

    result = anyio.run(main)
    assert verify(path) == []
    if k >= acked:  # start() had returned: the case must not be lost
        assert result is not None
        assert result.status == "completed"
        assert result.data == expected.data
        # every effect of the crash-free run took place; an item that raced its withdrawal may have
        # run too (the seeded order of ready items is drawn afresh after a restart)
        assert set(crash_free_effects.applied) <= set(effects.applied)
    elif result is not None and result.status == "completed":
        assert result.data == expected.data
    for key in effects.calls:  # a re-run is an in-doubt item's, never a second effect
        assert effects.calls.count(key) == 1
