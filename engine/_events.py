"""Events: past-tense facts that the engine feeds the net runner, one at a time.

Every event is a frozen, tagged ``msgspec.Struct``, so the event log round-trips exactly through
JSON or msgpack. Time (``at_ns``), ids and the seed arrive inside events, stamped by the engine:
the runner has no clock and no randomness of its own.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

__all__ = (
    "CaseCancelRequested",
    "CaseResumed",
    "CaseStarted",
    "CaseSuspended",
    "Event",
    "ForceCompleteRequested",
    "InstanceAdded",
    "ItemCancelRequested",
    "ItemCompleted",
    "ItemFailed",
    "ItemResumed",
    "ItemStarted",
    "ItemSuspended",
    "SignalForwarded",
    "SignalReceived",
    "TimerFired",
    "fingerprint",
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
    """Someone started the offered item ``item`` (an external work item); ``key``: the call's idempotency key."""

    item: int
    key: str | None = None


class ItemCompleted(_Event, frozen=True, kw_only=True, tag="item_completed"):
    """Item ``item`` completed with ``output`` (``None``: no output)."""

    item: int
    output: dict[str, Any] | None = None
    key: str | None = None


class ItemFailed(_Event, frozen=True, kw_only=True, tag="item_failed"):
    """One attempt of item ``item`` failed with ``error`` (``error_type``: the exception's class;
    ``retryable``: false when the error itself says another attempt cannot succeed)."""

    item: int
    error: str
    error_type: str = "Exception"
    retryable: bool = True  # False: the error says another attempt cannot succeed (no retry)


class ItemCancelRequested(_Event, frozen=True, kw_only=True, tag="item_cancel_requested"):
    """The API asked to withdraw (offered) or halt (started) item ``item``."""

    item: int
    key: str | None = None


class SignalReceived(_Event, frozen=True, kw_only=True, tag="signal_received"):
    """The signal ``signal`` arrived, carrying ``data`` to merge into the case data.

    ``persistent``: this case may consume (or keep) it for a persistent trigger. A signal sent to
    a case tree is one signal: the engine lets only one case of the tree consume or keep it.
    """

    signal: str
    data: dict[str, Any] | None = None
    persistent: bool = True
    keep: bool = False
    key: str | None = None


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


class CaseSuspended(_Event, frozen=True, kw_only=True, tag="case_suspended"):
    """The API suspended the case: it starts nothing new until resumed; its offered items stay."""


class CaseResumed(_Event, frozen=True, kw_only=True, tag="case_resumed"):
    """The API resumed the suspended case."""


class ItemSuspended(_Event, frozen=True, kw_only=True, tag="item_suspended"):
    """The API suspended item ``item``: it cannot be started or completed, nor its handler run, until resumed."""

    item: int


class ItemResumed(_Event, frozen=True, kw_only=True, tag="item_resumed"):
    """The API resumed the suspended item ``item``."""

    item: int


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
    | CaseSuspended
    | CaseResumed
    | ItemSuspended
    | ItemResumed
)


def fingerprint(event: Event) -> str:
    """What an API call asked for, as a short string: a repeated call with the same idempotency key
    must ask for the same thing (its kind, its target and a digest of its data)."""
    kind = type(event).__struct_config__.tag
    target = getattr(event, "item", None)
    if target is None:
        target = getattr(event, "signal", None)
    body = getattr(event, "output", None)
    if body is None:
        body = getattr(event, "data", None)
    digest = hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()[:16]
    return f"{kind}:{target}:{digest}"
