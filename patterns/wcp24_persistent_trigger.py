"""WCP-24 Persistent Trigger: a signal is kept until the task waits for it, then consumed."""

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
id: wcp24_persistent_trigger
nets:
  main:
    input: start
    output: end
    tasks:
      prepare: {external: true, flows: [launch]}
      launch: {trigger: {signal: go, persistent: true}, run: work, flows: [end]}
"""


async def _drive(case: Case, rng: random.Random) -> None:
    early = rng.random() < 0.5
    if early:
        await case.signal("go")  # kept until launch waits
    (item,) = case.work_items("offered")
    await case.complete(item.id)
    if not early:
        await case.idle()
        await case.signal("go")


def _none_lost(trace: Trace, result: Result) -> None:
    n = count(trace, "item.completed", "launch")
    if n != 1:
        raise AssertionError(f"one signal was sent, so launch must run once, ran {n} times")


def _consumed_at_once(trace: Trace, result: Result) -> None:
    (signal,) = positions(trace, "signal.received")
    (enabled,) = positions(trace, "item.enabled", "launch")
    (started,) = positions(trace, "item.started", "launch")
    step = steps(trace)
    ready = max(signal, enabled)
    if step[started] != step[ready]:
        raise AssertionError(
            f"launch started at {label(trace[started])}, not as soon as it was both enabled and signalled "
            f"({label(trace[ready])})"
        )


PATTERN = Pattern(
    number=24,
    name="Persistent Trigger",
    definition=(
        "The ability for a task to be triggered by a signal from another part of the process or from "
        "the external environment; triggers are persistent: a signal that arrives before the task is "
        "enabled is retained until the task can act on it. No signal is lost: the task starts in the "
        "step where it is both enabled and signalled, consuming one signal."
    ),
    spec=SPEC,
    handlers={"work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("no signal is lost: the task runs once for its signal", _none_lost),
        ("the signal is consumed as soon as the task is enabled", _consumed_at_once),
    ),
    construct="trigger: {signal: name, persistent: true}: kept until a task consumes it",
)
