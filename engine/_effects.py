"""Effects: orders the net runner gives the engine, in the order it must carry them out.

The runner decides; the engine does the I/O. Effects are frozen ``msgspec.Struct`` values.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ("ArmTimer", "CancelItem", "CaseFinished", "DisarmTimer", "Effect", "StartItem", "StartSubcase")


class _Effect(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class StartItem(_Effect, frozen=True, kw_only=True, tag="start_item"):
    """Run the auto item ``item`` of ``task`` (attempt ``attempt``, 1-based) with ``input``.

    ``delay_attempt`` > 1 asks the engine to wait a backoff (computed from the task's ``retry``,
    with jitter from the engine's seeded random source) before this attempt.
    """

    item: int
    task: str
    net: str
    input: dict[str, Any]
    attempt: int = 1
    key: str = ""


class StartSubcase(_Effect, frozen=True, kw_only=True, tag="start_subcase"):
    """Start a sub-case ``case`` of net ``net`` with ``data`` for the composite item ``item``."""

    item: int
    task: str
    net: str
    case: str
    data: dict[str, Any]


class CancelItem(_Effect, frozen=True, kw_only=True, tag="cancel_item"):
    """Halt the running item ``item`` (its handler, or its sub-case)."""

    item: int


class ArmTimer(_Effect, frozen=True, kw_only=True, tag="arm_timer"):
    """Deliver ``TimerFired(item, purpose)`` after ``after_ns`` nanoseconds of the engine's clock.

    ``purpose``: ``timer`` (the task's ``timer``: the item completes) or ``timeout`` (the task's
    ``timeout`` on an external or composite item: the item fails).
    """

    item: int
    after_ns: int
    purpose: str = "timer"


class DisarmTimer(_Effect, frozen=True, kw_only=True, tag="disarm_timer"):
    """Forget the timer (``purpose``) of item ``item``."""

    item: int
    purpose: str = "timer"


class CaseFinished(_Effect, frozen=True, kw_only=True, tag="case_finished"):
    """The case ended with ``status`` (completed, failed, cancelled) and final ``data``."""

    status: str
    data: dict[str, Any]
    error: str | None = None


Effect = StartItem | StartSubcase | CancelItem | ArmTimer | DisarmTimer | CaseFinished
