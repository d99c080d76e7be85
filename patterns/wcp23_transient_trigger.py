"""WCP-23 Transient Trigger: a signal counts only if the task waits for it when it arrives."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ._catalogue import Pattern
from ._kit import count, ends, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Case, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp23_transient_trigger
nets:
  main:
    input: start
    output: end
    tasks:
      prepare: {external: true, flows: [launch]}
      launch: {trigger: {signal: go}, run: work, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    for _ in range(rng.randint(0, 2)):
        await case.signal("go")  # nobody waits yet: lost
    (item,) = case.work_items("offered")
    await case.complete(item.id)
    await case.idle()
    await case.signal("go")  # launch waits now: it takes this one


def _early_lost(trace: Trace, result: Result) -> None:
    (enabled,) = positions(trace, "item.enabled", "launch")
    (started,) = positions(trace, "item.started", "launch")
    step = steps(trace)
    if step[started] == step[enabled]:
        raise AssertionError(
            f"launch started in the step it was enabled ({label(trace[started])}): an earlier signal was kept, "
            "but a transient signal that nobody waits for is lost"
        )


def _taken_when_waiting(trace: Trace, result: Result) -> None:
    (enabled,) = positions(trace, "item.enabled", "launch")
    (started,) = positions(trace, "item.started", "launch")
    step = steps(trace)
    signals = [i for i in positions(trace, "signal.received") if enabled < i and step[i] == step[started]]
    if not signals:
        raise AssertionError(f"launch started at {label(trace[started])} without a signal arriving while it waited")


def _once(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "launch")
    if n != 1:
        raise AssertionError(f"launch ran {n} times, not once")


PATTERN = Pattern(
    number=23,
    name="Transient Trigger",
    definition=(
        "The ability for a task to be triggered by a signal from another part of the process or from "
        "the external environment; triggers are transient: if the task is not waiting for the signal "
        "when it arrives, the signal is lost. Signals sent before the task waits never start it; the "
        "task starts in the step of the first signal that arrives while it waits."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("signals sent before the task waits are lost", _early_lost),
        ("the task starts at a signal that arrives while it waits", _taken_when_waiting),
        ("the task runs once", _once),
    ),
    construct="trigger: {signal: name}: a signal nobody waits for is lost",
)
