"""CaseState and ItemRecord: the dynamic part of one case, owned by the net runner.

A CaseState is *linear* (ADR 0001 §1): ``NetRunner.handle`` consumes it and returns its
successor, mutated in place; take :meth:`CaseState.copy` first to keep the old one. The state is
a fold of the event log: ``replay(net, events)`` rebuilds it exactly.
"""

from __future__ import annotations

import copy as _copy
from typing import Any, Literal

from ._hotpath import Marking

__all__ = ("CaseState", "ItemRecord", "ItemState", "JoinState", "MIGroup")

ItemState = Literal["enabled", "offered", "started", "completed", "cancelled", "failed"]


class ItemRecord:
    """One work item of a case.

    Attributes:
        id: the item's id, unique in its case (the runner's counter).
        task: the task's name.
        net: the net's name.
        instance: the instance number of a multiple-instance task, else ``None``.
        state: enabled, offered, started, completed, cancelled or failed.
        data: the item's input (once started), else ``None``.
        attempt: the current attempt (1-based) of an auto item.
        claimed: whether its tokens were consumed (started, or triggered).
        busy: whether it counts as busy for the OR-join (started and not finished).
        extra: input an offered instance adds to the task's input when it starts (its ``item``).
    """

    __slots__ = ("attempt", "busy", "claimed", "data", "extra", "first_at_ns", "id", "instance", "net", "state",
                 "task", "tid")

    def __init__(
        self, *, id: int, tid: int, task: str, net: str, state: ItemState, instance: int | None = None
    ) -> None:
        self.id = id
        self.tid = tid
        self.task = task
        self.net = net
        self.state: ItemState = state
        self.instance = instance
        self.data: dict[str, Any] | None = None
        self.attempt = 1
        self.claimed = False
        self.busy = False
        self.extra: dict[str, Any] | None = None
        self.first_at_ns = 0

    def snapshot(self) -> tuple[object, ...]:
        """A comparable value of every field (used to compare states)."""
        return (self.id, self.tid, self.task, self.net, self.state, self.instance, _copy.deepcopy(self.data),
                _copy.deepcopy(self.extra), self.attempt,
                self.claimed, self.busy, self.first_at_ns)

    def __repr__(self) -> str:
        return f"ItemRecord(id={self.id}, task={self.task!r}, state={self.state!r}, instance={self.instance})"


class JoinState:
    """A partial join's memory (WCP-9, 28-32): which inputs arrived since the last reset.

    Attributes:
        arrived: bit i set when input i (in preset order) delivered its token.
        fired: whether the join fired since the last reset.
        ready: firings not yet taken by the task (the task then starts, or is offered).
    """

    __slots__ = ("arrived", "fired", "ready")

    def __init__(self) -> None:
        self.arrived = 0
        self.fired = False
        self.ready = 0

    def snapshot(self) -> tuple[int, bool, int]:
        """A comparable value."""
        return (self.arrived, self.fired, self.ready)


class MIGroup:
    """The instances of one firing of a multiple-instance task (WCP-12 to 15, 26, 27, 34 to 36).

    Attributes:
        item: the id of the task as a whole (its events carry ``instance: null``).
        created: instances created so far (the next instance number).
        live: the ids of the instances still live, in creation order.
        finished: instances that ended (completed, failed, withdrawn) before the task completed.
        completed: instances that completed before the task completed.
        results: output of each completed instance, by instance number.
        done: whether the task as a whole has completed (later completions have no effect).
    """

    __slots__ = ("completed", "created", "done", "finished", "item", "live", "results")

    def __init__(self, item: int) -> None:
        self.item = item
        self.created = 0
        self.live: list[int] = []
        self.finished = 0
        self.completed = 0
        self.results: dict[int, dict[str, Any]] = {}
        self.done = False

    def snapshot(self) -> tuple[object, ...]:
        """A comparable value."""
        return (self.item, self.created, list(self.live), self.finished, self.completed,
                _copy.deepcopy(sorted(self.results.items())), self.done)

    def copy(self) -> MIGroup:
        """An independent copy."""
        other = _copy.copy(self)
        other.live = list(self.live)
        other.results = _copy.deepcopy(self.results)
        return other


class CaseState:
    """Everything the runner knows about one case.

    Attributes:
        case: the case id.
        net: the net's name.
        marking: tokens per place and busy items per task (a hot-path kernel object).
        data: the case data.
        items: live items (enabled, offered, started) by id, in creation order.
        waiting: per task id, the ids of its unclaimed items (mirrors its capacity); only tasks that
            ever had one have an entry.
        signals: persistent signals received and not yet consumed, by name.
        joins: partial joins' memories, by task id.
        mi: running multiple-instance tasks, by task id.
        mutex: the active region of each mutex, by mutex name.
        status: running, completed, failed or cancelled.
        next_item: the next item id.
        seq: the next trace sequence number.
        seed: the seed from ``CaseStarted``.
        flags: the runner flags from ``CaseStarted``.
        error: the failure message, once failed.
        suspended: whether the case is suspended (it starts nothing new; API calls but cancel wait).
        paused: ids of the items suspended one by one (``None`` while there were none).
        keys: the idempotency keys of the API calls applied, each with the call's fingerprint
            (``None`` while there were none).
    """

    __slots__ = ("case", "data", "error", "flags", "items", "joins", "keys", "marking", "mi", "mutex", "net",
                 "next_item", "paused", "seed", "seq", "signals", "status", "suspended", "waiting")

    def __init__(self, *, case: str, net: str, marking: Marking, data: dict[str, Any], seed: int | None,
                 flags: int, n_tasks: int) -> None:
        self.case = case
        self.net = net
        self.marking = marking
        self.data = data
        self.items: dict[int, ItemRecord] = {}
        self.waiting: dict[int, list[int]] = {}  # sparse: a list per task would cost every case n_tasks lists
        self.signals: dict[str, int] = {}
        self.joins: dict[int, JoinState] = {}
        self.mi: dict[int, MIGroup] = {}
        self.mutex: dict[str, int] = {}
        self.status = "running"
        self.next_item = 0
        self.seq = 0
        self.seed = seed
        self.flags = flags
        self.error: str | None = None
        self.suspended = False
        self.paused: set[int] | None = None
        self.keys: dict[str, str] | None = None

    def copy(self) -> CaseState:
        """An independent deep copy."""
        other = CaseState.__new__(CaseState)
        other.case = self.case
        other.net = self.net
        other.marking = self.marking.copy()
        other.data = _copy.deepcopy(self.data) if self.data else {}
        other.items = {}
        for k, item in self.items.items():
            clone = _copy.copy(item)
            clone.data = _copy.deepcopy(item.data)
            clone.extra = _copy.deepcopy(item.extra)
            other.items[k] = clone
        other.waiting = {t: list(w) for t, w in self.waiting.items()}
        other.signals = dict(self.signals)
        other.joins = {t: _copy.copy(j) for t, j in self.joins.items()}
        other.mi = {t: g.copy() for t, g in self.mi.items()}
        other.mutex = dict(self.mutex)
        other.status = self.status
        other.next_item = self.next_item
        other.seq = self.seq
        other.seed = self.seed
        other.flags = self.flags
        other.error = self.error
        other.suspended = self.suspended
        other.paused = set(self.paused) if self.paused is not None else None
        other.keys = dict(self.keys) if self.keys is not None else None
        return other

    def fresh(self, case: str) -> CaseState:
        """A blank state for ``case`` on the same net, cloned from this one, which must be blank.

        The engine keeps one blank state per net (``NetRunner.initial_state``) and clones it for
        each new case: copying a marking is ~100x cheaper than building one from the net.
        """
        other = CaseState.__new__(CaseState)
        other.case = case
        other.net = self.net
        other.marking = self.marking.copy()
        other.data = {}
        other.items = {}
        other.waiting = {}
        other.signals = {}
        other.joins = {}
        other.mi = {}
        other.mutex = {}
        other.status = self.status
        other.next_item = self.next_item
        other.seq = self.seq
        other.seed = self.seed
        other.flags = self.flags
        other.error = self.error
        other.suspended = False
        other.paused = None
        other.keys = None
        return other

    def snapshot(self) -> tuple[object, ...]:
        """A comparable value of the whole state (``fold(log) == live`` checks use it)."""
        return (
            self.case, self.net, self.marking.tokens(), self.marking.busy_counts(), _copy.deepcopy(self.data),
            [i.snapshot() for i in self.items.values()], sorted((t, list(w)) for t, w in self.waiting.items() if w),
            sorted(self.signals.items()), sorted((t, j.snapshot()) for t, j in self.joins.items()),
            sorted((t, g.snapshot()) for t, g in self.mi.items()), sorted(self.mutex.items()),
            self.status, self.next_item, self.seq, self.seed, self.flags, self.error,
            self.suspended, sorted(self.paused or ()), sorted((self.keys or {}).items()),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CaseState):
            return NotImplemented
        return self.snapshot() == other.snapshot()

    __hash__ = None  # type: ignore[assignment]
