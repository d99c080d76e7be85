"""Events: past-tense facts that the engine feeds the net runner, one at a time.

Every event is a frozen, tagged ``msgspec.Struct``, so the event log round-trips exactly through
JSON or msgpack. Time (``at_ns``), ids and the seed arrive inside events, stamped by the engine:
the runner has no clock and no randomness of its own.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = (
    "CaseCancelRequested",
    "CaseStarted",
    "Event",
    "ForceCompleteRequested",
    "InstanceAdded",
    "ItemCancelRequested",
    "ItemCompleted",
    "ItemFailed",
    "ItemStarted",
    "SignalForwarded",
    "SignalReceived",
    "TimerFired",
)


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    at_ns: int = 0


class CaseStarted(_Event, frozen=True, kw_only=True, tag="case_started"):
    """A case was started in ``net`` with ``data``; ``seed`` is the engine's seed (or ``None``)."""

    case: str
    net: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    seed: int | None = None
    flags: int = 0
    parent: str | None = None


class ItemStarted(_Event, frozen=True, kw_only=True, tag="item_started"):
    """Someone started the offered item ``item`` (an external work item)."""

    item: int


class ItemCompleted(_Event, frozen=True, kw_only=True, tag="item_completed"):
    """Item ``item`` completed with ``output`` (``None``: no output)."""

    item: int
    output: dict[str, Any] | None = None


class ItemFailed(_Event, frozen=True, kw_only=True, tag="item_failed"):
    """One attempt of item ``item`` failed with ``error`` (``error_type``: the exception's class)."""

    item: int
    error: str
    error_type: str = "Exception"


class ItemCancelRequested(_Event, frozen=True, kw_only=True, tag="item_cancel_requested"):
    """The API asked to withdraw (offered) or halt (started) item ``item``."""

    item: int


class SignalReceived(_Event, frozen=True, kw_only=True, tag="signal_received"):
    """The signal ``signal`` arrived, carrying ``data`` to merge into the case data.

    ``persistent``: this case may consume (or keep) it for a persistent trigger. A signal sent to
    a case tree is one signal: the engine lets only one case of the tree consume or keep it.
    """

    signal: str
    data: dict[str, Any] | None = None
    persistent: bool = True
    keep: bool = False


class SignalForwarded(_Event, frozen=True, kw_only=True, tag="signal_forwarded"):
    """A persistent signal this case kept was handed to a sub-case whose trigger now waits."""

    signal: str


class TimerFired(_Event, frozen=True, kw_only=True, tag="timer_fired"):
    """The timer armed for item ``item`` expired (``purpose``: ``timer`` or ``timeout``)."""

    item: int
    purpose: str = "timer"


class InstanceAdded(_Event, frozen=True, kw_only=True, tag="instance_added"):
    """The API added an instance with ``data`` to the running dynamic MI task ``task`` (WCP-15)."""

    task: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class ForceCompleteRequested(_Event, frozen=True, kw_only=True, tag="force_complete_requested"):
    """The API force-completed the running MI task ``task`` (WCP-27)."""

    task: str


class CaseCancelRequested(_Event, frozen=True, kw_only=True, tag="case_cancel_requested"):
    """The API asked to cancel the whole case."""


Event = (
    CaseStarted
    | ItemStarted
    | ItemCompleted
    | ItemFailed
    | ItemCancelRequested
    | SignalReceived
    | SignalForwarded
    | TimerFired
    | InstanceAdded
    | ForceCompleteRequested
    | CaseCancelRequested
)
