"""Record the golden histories: one per workflow pattern, seed 1 (``python tests/golden/make.py``).

Each file is a :class:`yawlflow._replay.ReplayLog`: the pattern's spec, and per case (the root
and its sub-cases) the events the engine fed the runner and the trace records it produced.
``tests/test_golden.py`` replays them all. Re-record only when a change of behaviour is meant,
and say in the commit which patterns' traces changed and why.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import anyio

from yawlflow import Engine
from yawlflow._replay import dump_log, record
from yawlflow.patterns import _catalogue
from yawlflow.testing import FakeClock

SEED = 1
HERE = Path(__file__).parent


def history(number: int) -> bytes:
    """Run pattern ``number`` as ``yawlflow patterns run`` does and record its history."""
    pattern = _catalogue.get(number)
    spec = pattern.load()

    async def main() -> bytes:
        async with Engine(seed=SEED, clock=FakeClock(autojump=True), handlers=pattern.handlers) as engine:
            case = await engine.start(spec, dict(pattern.data))
            if pattern.drive is not None:
                await pattern.drive(case, random.Random(SEED))
            result = await case._settled()
            return dump_log(record(spec, engine.store, case.id, result.trace))

    return anyio.run(main)


def main() -> int:
    numbers = [int(a) for a in sys.argv[1:]] or list(range(1, 44))
    for n in numbers:
        path = HERE / f"wcp{n:02d}.json"
        path.write_bytes(history(n))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
