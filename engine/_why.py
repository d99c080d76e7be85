"""Why a case waits: what a running case needs before it can move on.

``Case.why()`` and ``yawlflow cases why`` answer from the case's state alone (live, or folded
back from a store): offered and started external items, handlers running or held, sub-cases,
triggers, timers, and the tasks that hold tokens but cannot fire — an OR-join still waiting for a
branch that may arrive, an AND or partial join missing inputs, a task blocked by a mutex held by
another region, or by an unmarked milestone. Read-only: nothing here changes the state.
"""

from __future__ import annotations

import msgspec

from . import _gates
from ._compiled import KIND_AUTO, KIND_COMPOSITE, KIND_EXTERNAL
from ._hotpath import JOIN_AND, JOIN_OR, JOIN_PARTIAL, JOIN_THREADS
from ._runner import NetRunner
from ._state import CaseState

__all__ = ("Wait", "why")


class Wait(msgspec.Struct, frozen=True, kw_only=True):
    """One thing a case waits for.

    Attributes:
        kind: ``offered`` (an item for a person or system to start), ``started`` (an external
            item being worked on), ``handler`` (an auto item's handler runs, or waits for the
            case to resume), ``sub-case``, ``trigger`` (a signal), ``timer``, ``timeout``,
            ``or-join``, ``join``, ``mutex``, ``milestone``, ``suspended``.
        case: the id of the case that waits.
        task: the task concerned, if any.
        item: the work item concerned, if any.
        message: a sentence saying what is awaited and how to provide it.
    """

    kind: str
    case: str
    task: str | None = None
    item: int | None = None
    message: str


def why(runner: NetRunner, state: CaseState, timers: dict[tuple[int, str], int] | None = None,
        held: frozenset[int] = frozenset()) -> list[Wait]:
    """What the case of ``state`` waits for (empty once it has ended).

    Args:
        runner: the runner of the case's net.
        state: the case's state.
        timers: its armed timers, (item, purpose) -> deadline, if known.
        held: items whose handler the engine holds (the case or item is suspended).
    """
    if state.status != "running":
        return []
    net = runner.net
    case = state.case
    out: list[Wait] = []
    if state.suspended:
        out.append(Wait(kind="suspended", case=case, message=f"case {case} is suspended: nothing starts until "
                        "it is resumed (case.resume())"))
    paused = state.paused or set()
    armed = timers or {}
    for item in state.items.values():
        spec = net.tasks[item.tid]
        kind = net.kind[item.tid]
        label = f"item {item.id} ({item.task}{f'[{item.instance}]' if item.instance is not None else ''})"
        note = " — suspended: resume it first (case.resume_item)" if item.id in paused else ""
        if item.state == "offered":
            out.append(Wait(kind="offered", case=case, task=item.task, item=item.id,
                            message=f"{label} is offered: start or complete it (case.complete({item.id}, ...)){note}"))
        elif item.state == "started" and kind == KIND_EXTERNAL:
            out.append(Wait(kind="started", case=case, task=item.task, item=item.id,
                            message=f"{label} was started: it waits for its completion "
                                    f"(case.complete({item.id}, ...)){note}"))
        elif item.busy and kind == KIND_AUTO:
            if item.id in held or state.suspended or item.id in paused:
                message = f"{label}: its handler starts when the case (or item) is resumed"
            else:
                message = f"{label}: its handler {spec.run.handler if spec.run else ''!s} runs (attempt {item.attempt})"
            out.append(Wait(kind="handler", case=case, task=item.task, item=item.id, message=message))
        elif item.busy and kind == KIND_COMPOSITE:
            out.append(Wait(kind="sub-case", case=case, task=item.task, item=item.id,
                            message=f"{label}: its sub-case {case}/{item.id} (net {spec.net}) runs"))
        elif item.state == "enabled" and spec.trigger is not None:
            out.append(Wait(kind="trigger", case=case, task=item.task, item=item.id,
                            message=f"{label} waits for the signal {spec.trigger.signal!r} "
                                    f"(case.signal({spec.trigger.signal!r})){note}"))
        if spec.timer is not None and item.state != "started" and (timers is None or (item.id, "timer") in armed):
            out.append(Wait(kind="timer", case=case, task=item.task, item=item.id,
                            message=f"{label} completes when its timer fires ({spec.timer.after_ns / 1e9:g}s after "
                                    "it was enabled), unless another branch is taken first"))
        if (item.id, "timeout") in armed and spec.timeout_ns is not None:
            out.append(Wait(kind="timeout", case=case, task=item.task, item=item.id,
                            message=f"{label} fails if it has not completed {spec.timeout_ns / 1e9:g}s after it "
                                    "started"))
    out.extend(_stuck_tasks(runner, state))
    return out


def _stuck_tasks(runner: NetRunner, state: CaseState) -> list[Wait]:
    """Tasks with tokens in their input that cannot fire: what each one lacks."""
    net = runner.net
    marking = state.marking
    has_item = {item.tid for item in state.items.values()}
    out: list[Wait] = []
    for t, preset in enumerate(net.preset):
        if t in has_item or not preset:
            continue
        marked = [p for p in preset if marking.get(p)]
        if not marked or runner._capacity(state, t) > 0:
            continue
        task = net.task_names[t]
        missing = [_input(runner, p) for p in preset if not marking.get(p)]
        unmet = [net.place_names[p] for p in net.milestone[t] if not marking.get(p)]
        if unmet:
            out.append(Wait(kind="milestone", case=state.case, task=task,
                            message=f"task {task} waits for its milestone: {', '.join(unmet)} must be marked"))
        elif net.mutex_of[t] and _gates.mutex_blocked(runner, state, t):
            holders = sorted({net.task_names[u] for name, _r in net.mutex_of[t]
                              if state.mutex.get(name) is not None
                              for u in net.mutex_regions[name][state.mutex[name]]})
            out.append(Wait(kind="mutex", case=state.case, task=task,
                            message=f"task {task} waits for its mutex: held by {', '.join(holders)}"))
        elif net.join[t] == JOIN_OR:
            out.append(Wait(kind="or-join", case=state.case, task=task,
                            message=f"task {task} (OR-join) waits: a token may still reach "
                                    f"{', '.join(missing) or 'one of its inputs'} from a branch still running"))
        elif net.join[t] in (JOIN_AND, JOIN_PARTIAL, JOIN_THREADS):
            kind = {JOIN_AND: "AND-join", JOIN_PARTIAL: "partial join", JOIN_THREADS: "thread merge"}[net.join[t]]
            out.append(Wait(kind="join", case=state.case, task=task,
                            message=f"task {task} ({kind}) waits for "
                                    f"{', '.join(missing) if missing else 'more threads'}"))
    return out


def _input(runner: NetRunner, p: int) -> str:
    """A place as a reader knows it: a condition by its name, an implicit one by the flow it stands for."""
    net = runner.net
    name = net.place_names[p]
    if not name.startswith("c{"):
        return name
    return "the flow from " + " or ".join(net.task_names[u] for u in net.producers[p])
