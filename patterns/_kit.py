"""The toolkit the pattern modules share: handlers, trace queries, property helpers, drivers.

A trace is the case's list of events in the order applied (ARCHITECTURE.md §4); a record's
*position* in that list is its time. Item ids are unique per case, so an item is keyed by
``(case, item)`` (a sub-case's records carry the sub-case's id).

Step boundaries. Properties such as "withdrawn in the same step" need to know which records one
event produced. :func:`steps` recovers that from the trace alone: a record *starts* a step when
only a new event can have produced it — a signal, a failure, a cancelled case, the completion of
an item that had started (an auto or external item, a composite's sub-case, not the whole of a
multiple-instance task), or the start of an offered item. A timer's firing is not detected (its
``item.started`` follows an ``item.enabled`` like a trigger's), so it may merge with the step
before it: the helper may join two steps, never split one.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio.lowlevel

if TYPE_CHECKING:
    from yawlflow import Case, ItemContext, Result, WorkItem

    from ._catalogue import Check, Property, Trace

__all__ = (
    "ANY",
    "JoinModel",
    "Output",
    "count",
    "ends",
    "events",
    "firings_follow",
    "intervals",
    "label",
    "live_items",
    "no_overlap",
    "play",
    "positions",
    "step",
    "steps",
    "tasks_of",
    "withdrawn_at",
    "work",
)

ANY: Any = object()
"""Matches any value in :func:`positions`."""

Output = Callable[["WorkItem", random.Random], Mapping[str, Any]]
"""Chooses the output an external item is completed with."""


# -- handlers ------------------------------------------------------------------------------------


async def work(data: dict[str, Any], ctx: ItemContext) -> None:
    """A unit of work: yields once, so concurrent items really interleave; outputs nothing.

    The trace records that it ran (``item.started``, ``item.completed``): that is the record.
    """
    await anyio.lowlevel.checkpoint()


async def step(data: dict[str, Any], ctx: ItemContext) -> dict[str, Any]:
    """Increments the counter ``n`` and notes which task did it (``last``)."""
    await anyio.lowlevel.checkpoint()
    return {"n": int(data.get("n", 0)) + 1, "last": ctx.task}


# -- trace queries -------------------------------------------------------------------------------


def positions(
    trace: Trace,
    event: str | None = None,
    task: str | None = None,
    *,
    instance: Any = ANY,
    case: Any = ANY,
) -> list[int]:
    """The positions of the records matching ``event``, ``task``, ``instance`` and ``case``.

    ``None`` for ``event`` or ``task`` matches any; ``instance`` and ``case`` match any unless
    given (``instance=None`` matches the whole of a multiple-instance task, or a plain item).
    """
    return [
        i
        for i, r in enumerate(trace)
        if (event is None or r["event"] == event)
        and (task is None or r["task"] == task)
        and (instance is ANY or r["instance"] == instance)
        and (case is ANY or r["case"] == case)
    ]


def events(trace: Trace, event: str | None = None, task: str | None = None) -> list[Mapping[str, Any]]:
    """The records matching ``event`` and ``task`` (``None``: any), in order."""
    return [trace[i] for i in positions(trace, event, task)]


def count(trace: Trace, event: str, task: str | None = None, *, instance: Any = ANY) -> int:
    """How many records match ``event``, ``task`` and ``instance``."""
    return len(positions(trace, event, task, instance=instance))


def tasks_of(trace: Trace, event: str, *, instance: Any = None) -> list[str]:
    """The tasks of the ``event`` records, in order (by default: whole items only)."""
    return [str(trace[i]["task"]) for i in positions(trace, event, instance=instance)]


def label(record: Mapping[str, Any]) -> str:
    """``#12 item.completed b[2]``: a record, for messages."""
    instance = f"[{record['instance']}]" if record["instance"] is not None else ""
    task = f" {record['task']}{instance}" if record["task"] is not None else ""
    return f"#{record['seq']} {record['event']}{task}"


def steps(trace: Trace) -> list[int]:
    """The step each record belongs to (see the module's docstring): a non-decreasing index."""
    mi_tasks = {(r["case"], r["task"]) for r in trace if r["instance"] is not None}
    last: dict[tuple[Any, Any], str] = {}
    started: set[tuple[Any, Any]] = set()
    out: list[int] = []
    current = 0
    for r in trace:
        key = (r["case"], r["item"])
        kind = r["event"]
        boundary = (
            kind in ("signal.received", "item.failed", "item.retried")
            or (kind == "item.started" and last.get(key) == "item.offered")
            or (
                kind == "item.completed"
                and key in started
                and not (r["instance"] is None and (r["case"], r["task"]) in mi_tasks)
            )
        )
        if boundary and out:
            current += 1
        out.append(current)
        if r["item"] is not None:
            last[key] = kind
            if kind == "item.started":
                started.add(key)
    return out


def live_items(trace: Trace, at: int, tasks: Iterable[str] | None = None) -> dict[tuple[str, int], int]:
    """The work items live (enabled, offered or started) just before position ``at``.

    Returns:
        ``(case, item)`` → the position of the item's latest record, for the items of ``tasks``
        (default: all). The whole of a multiple-instance task is not a work item; its instances are.
    """
    wanted = None if tasks is None else set(tasks)
    mi = {(r["case"], r["task"]) for r in trace if r["instance"] is not None}
    live: dict[tuple[str, int], int] = {}
    for i in range(at):
        r = trace[i]
        if r["item"] is None or (wanted is not None and r["task"] not in wanted):
            continue
        if r["instance"] is None and (r["case"], r["task"]) in mi:
            continue
        key = (str(r["case"]), int(r["item"]))
        if r["event"] in ("item.enabled", "item.offered", "item.started"):
            live[key] = i
        elif r["event"] in ("item.completed", "item.cancelled", "item.failed"):
            live.pop(key, None)
    return live


def withdrawn_at(trace: Trace, at: int, tasks: Iterable[str] | None = None) -> None:
    """Assert that every item of ``tasks`` live just before ``at`` is withdrawn in ``at``'s step.

    The item whose record is at ``at`` (the cause) is exempt.

    Raises:
        AssertionError: naming each live item that was not withdrawn in that step.
    """
    step = steps(trace)
    cause = (str(trace[at]["case"]), trace[at]["item"])
    cancelled = {
        (str(r["case"]), int(r["item"]))
        for i, r in enumerate(trace)
        if r["event"] == "item.cancelled" and i > at and step[i] == step[at]
    }
    missing = [
        label(trace[i])
        for key, i in sorted(live_items(trace, at, tasks).items(), key=lambda kv: kv[1])
        if key != cause and key not in cancelled
    ]
    if missing:
        raise AssertionError(f"items live at {label(trace[at])} were not withdrawn in that step: {missing}")


def intervals(trace: Trace, tasks: Iterable[str]) -> list[tuple[str, int, int]]:
    """(task, start, end) of every item of ``tasks`` that started: from its ``item.started`` to the
    record that ended it (completed, cancelled or failed; the trace's end if none did)."""
    wanted = set(tasks)
    open_: dict[tuple[Any, Any], tuple[str, int]] = {}
    out: list[tuple[str, int, int]] = []
    for i, r in enumerate(trace):
        if r["task"] not in wanted or r["item"] is None:
            continue
        key = (r["case"], r["item"])
        if r["event"] == "item.started":
            open_[key] = (str(r["task"]), i)
        elif r["event"] in ("item.completed", "item.cancelled", "item.failed") and key in open_:
            task, start = open_.pop(key)
            out.append((task, start, i))
    out.extend((task, start, len(trace)) for task, start in open_.values())
    return sorted(out, key=lambda x: x[1])


def no_overlap(trace: Trace, spans: Sequence[tuple[str, int, int]], what: str) -> None:
    """Assert that no two ``spans`` overlap (each is (name, start, end) positions).

    Raises:
        AssertionError: two spans overlap; the message names both, with their records.
    """
    ordered = sorted(spans, key=lambda x: x[1])
    for (a, a0, a1), (b, b0, _b1) in itertools.pairwise(ordered):
        if b0 < a1:
            raise AssertionError(
                f"{what}: {a} ({label(trace[a0])} … {label(trace[a1]) if a1 < len(trace) else 'the end'}) "
                f"overlaps {b} (from {label(trace[b0])})"
            )


# -- property helpers ----------------------------------------------------------------------------


def ends(status: str) -> Property:
    """The property "the case ends <status>", checked on the result and the trace's last record."""
    want = {"completed": "case.completed", "cancelled": "case.cancelled", "failed": "case.failed"}[status]

    def check(trace: Trace, result: Result) -> None:
        if result.status != status:
            raise AssertionError(
                f"the case is {result.status}, not {status}" + (f": {result.error}" if result.error else "")
            )
        mine = [r for r in trace if r["case"] == result.case_id]
        if not (mine and mine[-1]["event"] == want):
            raise AssertionError(
                f"the case's last record is {label(mine[-1]) if mine else 'missing'}, not {want}: "
                "something happened after the case ended"
            )

    return (f"the case ends {status}", check)


class JoinModel:
    """The reference semantics of an N-out-of-M partial join (WCP-9, 28 to 32) and of the AND-join
    (WCP-33) and thread join (WCP-41), fed one arrival (input index) at a time.

    Args:
        inputs: M, the number of incoming branches.
        need: N, how many distinct inputs fire the join.
        mode: ``wait`` (blocking: a second arrival on an input that already arrived is held until
            every input has arrived once, the reset), ``cancel`` (on firing, the other branches
            are cancelled and the join resets at once), ``and`` (generalised AND-join: fires
            while every input holds a token, consuming one from each), or ``threads`` (fires
            each time ``need`` tokens have arrived in all).
    """

    def __init__(self, inputs: int, need: int, mode: str) -> None:
        self.inputs = inputs
        self.need = need
        self.mode = mode
        self.arrived: set[int] = set()
        self.fired = False
        self.held = [0] * inputs

    def arrive(self, i: int) -> int:
        """One token arrives on input ``i``; return how many times the join fires now."""
        if self.mode in ("and", "threads"):
            self.held[i] += 1
            fired = 0
            if self.mode == "and":
                while all(self.held):
                    self.held = [h - 1 for h in self.held]
                    fired += 1
            else:
                while sum(self.held) >= self.need:
                    take = self.need
                    for j in range(self.inputs):
                        got = min(take, self.held[j])
                        self.held[j] -= got
                        take -= got
                    fired += 1
            return fired
        if i in self.arrived:
            self.held[i] += 1
            return 0
        fired = self._take(i)
        progress = True
        while progress:
            progress = False
            for j in range(self.inputs):
                if self.held[j] and j not in self.arrived:
                    self.held[j] -= 1
                    fired += self._take(j)
                    progress = True
        return fired

    def _take(self, i: int) -> int:
        self.arrived.add(i)
        fired = 0
        if not self.fired and len(self.arrived) >= self.need:
            self.fired = True
            fired = 1
            if self.mode == "cancel":
                self.arrived = set()
                self.fired = False
                return fired
        if len(self.arrived) == self.inputs:
            self.arrived = set()
            self.fired = False
        return fired


def firings_follow(
    join: str, inputs: Sequence[str], need: int, mode: str, *, fire_event: str = "item.completed"
) -> Check:
    """A check: the join task ``join`` fires exactly when :class:`JoinModel` says, arrival by arrival.

    An arrival is the completion of one of the ``inputs`` tasks (their flows lead to the join);
    a firing is a ``fire_event`` record of ``join``. After each arrival, the firings before the
    next arrival must number what the model predicts for it.
    """

    def check(trace: Trace, result: Result) -> None:
        model = JoinModel(len(inputs), need, mode)
        index = {task: i for i, task in enumerate(inputs)}
        expected = 0
        seen = 0
        last_arrival: str | None = None
        for r in trace:
            if r["event"] == "item.completed" and r["task"] in index and r["instance"] is None:
                if seen != expected:
                    raise AssertionError(
                        f"{join} fired {seen} time(s) after {last_arrival or 'the start'}, "
                        f"where the {mode} join of {need} out of {len(inputs)} fires {expected} time(s)"
                    )
                expected = model.arrive(index[r["task"]])
                seen = 0
                last_arrival = label(r)
            elif r["event"] == fire_event and r["task"] == join and r["instance"] is None:
                seen += 1
        if seen != expected:
            raise AssertionError(
                f"{join} fired {seen} time(s) after {last_arrival or 'the start'}, "
                f"where the {mode} join of {need} out of {len(inputs)} fires {expected} time(s)"
            )

    return check


# -- drivers -------------------------------------------------------------------------------------


def _no_output(item: WorkItem, rng: random.Random) -> Mapping[str, Any]:
    return {}


async def play(
    case: Case,
    rng: random.Random,
    *,
    output: Output = _no_output,
    only: Callable[[WorkItem], bool] | None = None,
    max_moves: int = 200,
) -> None:
    """Play the external side at random until nothing external is left to do.

    Each move waits until the case is idle, then picks one of its live external items (offered,
    or started by this driver) with ``rng``: an offered item is started, or completed at once;
    an item it started is completed, with ``output(item, rng)``. So items overlap whenever the
    net allows it, in orders the seed picks.

    Args:
        case: the case.
        rng: the seeded chooser.
        output: the output an item is completed with.
        only: plays only the items it accepts (default: all).
        max_moves: a bound on the moves (a net that never ends must not hang the driver).
    """
    mine: set[int] = set()
    for _ in range(max_moves):
        await case.idle()
        if case.status != "running":
            return
        options = [
            w
            for w in sorted(case.work_items(), key=lambda w: w.id)
            if (w.state == "offered" or (w.state == "started" and w.id in mine)) and (only is None or only(w))
        ]
        if not options:
            return
        item = rng.choice(options)
        if item.state == "offered" and rng.random() < 0.5:
            await case.start_item(item.id)
            mine.add(item.id)
        else:
            await case.complete(item.id, dict(output(item, rng)))
            mine.discard(item.id)
