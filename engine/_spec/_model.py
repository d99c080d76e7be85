"""The spec model: frozen ``msgspec.Struct`` types for the format of ARCHITECTURE.md §3.

The model is the *normalised* form of a spec file: shorthand in the file (a flow given as a plain
name, ``join: or``, ``split: {threads: 3}``) is expanded by the loader into one shape per concept,
so that the compiler and the runner never look at the file's spelling. ``yawlflow.load`` builds
these structs; they are immutable and hashable, and encode back to the file format with
:func:`yawlflow._spec.to_builtins`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = (
    "ConditionSpec",
    "FlowSpec",
    "InstancesSpec",
    "JoinSpec",
    "LoopSpec",
    "NetSpec",
    "RetrySpec",
    "RunSpec",
    "Spec",
    "SplitSpec",
    "TaskSpec",
    "TimerSpec",
    "TriggerSpec",
)

JoinKind = Literal["and", "xor", "or", "partial", "threads"]
SplitKind = Literal["and", "xor", "or", "threads"]


class _Frozen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class FlowSpec(_Frozen, frozen=True):
    """One flow from a task or condition to a task, a condition, or the output condition.

    Attributes:
        to: the target element's name.
        when: a CEL predicate over the case data (``None``: always true).
        order: evaluation order; flows with an order are tried first, in ascending order.
        default: taken only when no other flow of the split is.
    """

    to: str
    when: str | None = None
    order: int | None = None
    default: bool = False


class JoinSpec(_Frozen, frozen=True):
    """A task's join: ``and``, ``xor``, ``or``, ``partial`` (N of M) or ``threads`` (N tokens)."""

    kind: JoinKind = "xor"
    n: int | None = None
    reset: Literal["wait", "cancel"] = "wait"


class SplitSpec(_Frozen, frozen=True):
    """A task's split: ``and``, ``xor``, ``or`` or ``threads`` (N tokens on every flow)."""

    kind: SplitKind = "and"
    n: int | None = None


class RunSpec(_Frozen, frozen=True):
    """What an auto item runs: a handler by name, or a connector with its config."""

    handler: str | None = None
    connector: str | None = None
    config: dict[str, Any] = msgspec.field(default_factory=dict)


class InstancesSpec(_Frozen, frozen=True):
    """Multiple-instance parameters (WCP-12 to 15, 34 to 36)."""

    count: int | str | None = None
    min: int | None = None
    max: int | None = None
    threshold: int | str | None = None
    items: str | None = None
    creation: Literal["static", "dynamic"] = "static"
    join: Literal["all", "threshold", "none"] = "all"
    cancel_rest: bool = False
    as_: str | None = msgspec.field(default=None, name="as")


class TriggerSpec(_Frozen, frozen=True):
    """A task enabled only once the named signal arrives (WCP-23 transient, WCP-24 persistent)."""

    signal: str
    persistent: bool = False


class LoopSpec(_Frozen, frozen=True):
    """A structured loop (WCP-21): exactly one of ``while_`` (pre-test) or ``until`` (post-test)."""

    while_: str | None = msgspec.field(default=None, name="while")
    until: str | None = None


class TimerSpec(_Frozen, frozen=True):
    """An item that completes by timer after ``after_ns`` nanoseconds (``after`` as written)."""

    after: str
    after_ns: int


class RetrySpec(_Frozen, frozen=True):
    """Re-running a failed item: attempts in all, exponential backoff with full jitter."""

    attempts: int = 1
    backoff: str = "100ms"
    backoff_ns: int = 100_000_000
    max_backoff: str | None = None
    max_backoff_ns: int | None = None
    deadline: str | None = None
    deadline_ns: int | None = None
    on: tuple[str, ...] = ()


class TaskSpec(_Frozen, frozen=True):
    """One task of a net, with every attribute of §3 (all optional)."""

    name: str
    flows: tuple[FlowSpec, ...] = ()
    run: RunSpec | None = None
    external: bool = False
    join: JoinSpec = JoinSpec()
    split: SplitSpec = SplitSpec()
    cancels: tuple[str, ...] = ()
    completes: tuple[str, ...] = ()
    instances: InstancesSpec | None = None
    trigger: TriggerSpec | None = None
    milestone: tuple[str, ...] = ()
    net: str | None = None
    loop: LoopSpec | None = None
    timer: TimerSpec | None = None
    input: dict[str, str] | None = None
    output: dict[str, str] | None = None
    timeout: str | None = None
    timeout_ns: int | None = None
    retry: RetrySpec | None = None
    strategy: Literal["inline", "thread", "process", "ray"] | None = None
    critical: bool = True


class ConditionSpec(_Frozen, frozen=True):
    """An explicit condition and its outgoing flows."""

    name: str
    flows: tuple[FlowSpec, ...] = ()


class NetSpec(_Frozen, frozen=True):
    """One net: input and output conditions, explicit conditions, tasks (in the order written)."""

    name: str
    input: str
    output: str
    conditions: tuple[ConditionSpec, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    termination: Literal["explicit", "implicit"] = "explicit"
    mutex: dict[str, tuple[tuple[str, ...], ...]] = msgspec.field(default_factory=dict)

    def task(self, name: str) -> TaskSpec | None:
        """The task called ``name``, or ``None``."""
        for task in self.tasks:
            if task.name == name:
                return task
        return None


class Spec(_Frozen, frozen=True):
    """A whole spec: its id, root net and nets (in the order written).

    Attributes:
        id: the spec's id.
        root: the net a case starts in.
        nets: every net, in the order written.
        version: the format version (``yawlflow: 1``).
        source: where it was loaded from (for messages), ``<string>`` for data.
    """

    id: str
    root: str
    nets: tuple[NetSpec, ...]
    version: int = 1
    source: str = "<string>"

    def net(self, name: str) -> NetSpec:
        """The net called ``name``.

        Raises:
            KeyError: no such net.
        """
        for net in self.nets:
            if net.name == name:
                return net
        raise KeyError(name)
