"""Crash test: a child process runs cases on a SQLite store and is killed with SIGKILL at seeded
points, again and again; after each kill the next child resumes. In the end no acknowledged case
is lost, every chain verifies, every case ends with the data of a crash-free run, and no effect
was applied twice — the handlers record their effects idempotently, keyed by the idempotency key,
as the documentation tells handler authors to.

The kill points are counts, not times (no sleeps): the child kills itself right after its Nth
append (the writer thread may be committing), or in its Nth handler call before or after the
handler's effect. ``YAWLFLOW_CRASH_KILLS`` sets how many kills (default 20; CI may ask for
hundreds).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

import yawlflow as yf
from yawlflow._provenance import verify

KILLS = int(os.environ.get("YAWLFLOW_CRASH_KILLS", "20"))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120 + 3 * KILLS)]  # CI asks for hundreds of kills
PER_RUN = 3  # each run starts this many cases more: every child has work to be killed in

CHILD = textwrap.dedent('''
    import os, signal, sys

    import anyio

    import yawlflow as yf
    import yawlflow._sqlite as sqlite

    db, effects_path, acked_path, n, kill = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    kind, _, at = kill.partition(":")
    at = int(at or 0)
    counts = {"append": 0, "call": 0}

    def die(what):
        counts[what] += 1
        if counts[what] == at:
            os.kill(os.getpid(), signal.SIGKILL)

    original_append = sqlite.SqliteStore.append

    def append(self, case, event):
        seq = original_append(self, case, event)
        if kind == "append":
            die("append")
        return seq

    sqlite.SqliteStore.append = append

    SPEC = yf.loads("""
    yawlflow: 1
    id: crash
    nets:
      main:
        input: start
        output: end
        tasks:
          a: {run: effect, split: and, flows: [b, c]}
          b: {run: effect, flows: [d]}
          c: {run: effect, flows: [d]}
          d: {join: and, run: effect, flows: [end]}
    """)

    def durable_append(path, line):
        with open(path, "a") as f:
            f.write(line + "\\n")
            f.flush()
            os.fsync(f.fileno())

    async def effect(data, ctx):
        await anyio.lowlevel.checkpoint()
        if kind == "before":
            die("call")
        with open(effects_path, "a+") as f:  # the effect, applied once per key
            f.seek(0)
            if ctx.idempotency_key not in f.read().split():
                f.write(ctx.idempotency_key + "\\n")
                f.flush()
                os.fsync(f.fileno())
        if kind == "after":
            die("call")
        return {ctx.task: True}

    async def main():
        async with yf.Engine(store=f"sqlite:///{db}", handlers={"effect": effect}) as engine:
            cases = await engine.resume()
            acked = open(acked_path).read().split() if os.path.exists(acked_path) else []
            while len(acked) < n:
                case = await engine.start(SPEC, {"i": len(acked)})  # returns once it is on disk
                durable_append(acked_path, case.id)
                acked.append(case.id)
                cases.append(case)
            for case in cases:
                await case.result()
        print("done", flush=True)

    anyio.run(main)
''')


def test_sigkill_at_seeded_points_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    db, effects, acked = tmp_path / "cases.db", tmp_path / "effects", tmp_path / "acked"
    rng = random.Random(20261127)
    killed = 0
    for run in range(KILLS):
        kind = rng.choice(["append", "append", "before", "after"])
        kill = f"{kind}:{rng.randint(1, 30 if kind == 'append' else 12)}"
        target = PER_RUN * (run + 1)
        child = subprocess.run([sys.executable, str(script), str(db), str(effects), str(acked), str(target), kill],
                               capture_output=True, text=True, timeout=120, check=False)
        if child.returncode == -signal.SIGKILL:
            killed += 1
        else:
            assert child.returncode == 0, child.stderr
            assert child.stdout == "done\n"
    cases = PER_RUN * (KILLS + 1)
    final = subprocess.run([sys.executable, str(script), str(db), str(effects), str(acked), str(cases), "none"],
                           capture_output=True, text=True, timeout=120, check=False)
    assert final.returncode == 0, final.stderr
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} runs were killed: the kill points are too late"

    assert verify(db) == []
    lines = effects.read_text().split()
    assert len(lines) == len(set(lines)), "an effect was applied twice"
    acked_ids = acked.read_text().split()
    assert len(acked_ids) == cases

    async def check() -> None:
        async with yf.Engine(store=f"sqlite:///{db}") as engine:
            records = await engine.cases()
            status = {r.case: r.status for r in records}
            assert {status.get(case) for case in acked_ids} == {"completed"}  # no acknowledged case lost
            expected_keys: set[str] = set()
            for record in records:
                case = engine.case(record.case)
                if record.status != "completed":  # killed inside start(), before its first event was stored
                    assert record.case not in acked_ids and record.status == "failed"
                    assert case.trace == [] and engine.store.events(record.case) == []
                    continue
                data = dict(case.data)
                assert data.pop("i") in range(cases)
                assert data == {"a": True, "b": True, "c": True, "d": True}  # as a crash-free run
                done = [r for r in case.trace if r["event"] == "item.completed"]
                assert [r["task"] for r in done].count("d") == 1
                expected_keys |= {f"{record.case}/{r['item']}" for r in done}
            assert expected_keys == set(lines)  # every completed item's effect, and no other

    anyio.run(check)
