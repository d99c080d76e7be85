"""Multiple instances: one firing of a task becomes a group of instances (WCP-12 to 15, 26, 27, 34 to 36).

Theory of operation. When an MI task fires, the runner opens an :class:`MIGroup` and records the
task as a whole (``item.enabled``, ``item.started``, ``instance: null``). It computes the number
of instances — ``count`` (an int or CEL), the length of ``items`` (a CEL list), else ``min`` (else
1) — fails the case when the number is outside ``[min, max]``, and creates them: each is a work
item of its own (``instance`` = 0, 1, ...), run like a single item of the task's kind, whose input
holds ``item``. The task as a whole completes (``item.completed``, ``instance: null``, then its
split) when its join says so:

* ``join: none`` — at once, before any instance ends (WCP-12);
* ``join: all`` — when every instance created has ended (WCP-13, 14, 15);
* ``join: threshold`` (or any ``threshold``) — when the threshold holds: an int is a number of
  completed instances, a CEL expression sees ``completed``, ``instances`` and ``results``
  (WCP-34, 36); with ``cancel_rest`` the live instances are withdrawn then (WCP-35); otherwise
  they run on and their completions have no effect. If every instance ends first, the task
  completes too.

``as`` gathers the outputs of the instances completed by then, in instance order; without it each
output merges into the case data as it completes. The task is not enabled again until every
instance has ended. A cancellation set naming the task withdraws the group without completing it
(WCP-26); ``completes:`` or ``force_complete`` withdraws the live instances and completes it at
once (WCP-27). ``add_instance`` adds an instance to a running dynamic group (WCP-15, 36).

The status questions on a group's counters (is the join satisfied, and how; may an instance be
added; is a number of instances allowed) are the MI status kernel's (``yawlflow._hotpath``'s
:class:`MIPolicy`, compiled or its pure twin), built once per task's parameters; only a CEL
threshold is evaluated here, when the kernel asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._compiled import KIND_ROUTING
from ._errors import InvalidEventError, YawlflowInternalError
from ._events import ForceCompleteRequested, InstanceAdded
from ._hotpath import (
    ADD_AT_MAX,
    ADD_STATIC,
    MI_ALL_ENDED,
    MI_ASK,
    MI_JOIN_ALL,
    MI_JOIN_NONE,
    MI_JOIN_THRESHOLD,
    MI_THRESHOLD,
    MI_THRESHOLD_CANCEL,
    MIPolicy,
)
from ._state import CaseState, ItemRecord, MIGroup

if TYPE_CHECKING:
    from ._runner import NetRunner
    from ._spec._model import InstancesSpec

__all__ = (
    "add_instance",
    "check",
    "force_complete",
    "instance_completed",
    "instance_ended",
    "start",
    "withdraw_group",
)


_JOINS = {"all": MI_JOIN_ALL, "threshold": MI_JOIN_THRESHOLD, "none": MI_JOIN_NONE}
_BIG = 2**63 - 1  # the kernel's counters are 64-bit: a larger min, max or threshold acts as this one


def _clamp(value: int) -> int:
    return value if value <= _BIG else _BIG


# per InstancesSpec (by identity; the entry keeps the spec alive, so its id is not reused)
_POLICIES: dict[int, tuple[InstancesSpec, MIPolicy]] = {}


def policy(spec: InstancesSpec) -> MIPolicy:
    """The MI status kernel for the parameters ``spec`` (made once per spec)."""
    hit = _POLICIES.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    threshold = spec.threshold
    made = MIPolicy(
        join=_JOINS[spec.join],
        threshold=_clamp(threshold) if isinstance(threshold, int) else None,
        threshold_cel=threshold is not None and not isinstance(threshold, int),
        min=_clamp(spec.min) if spec.min is not None else 0,
        max=_clamp(spec.max) if spec.max is not None else None,
        dynamic=spec.creation == "dynamic",
        cancel_rest=spec.cancel_rest,
    )
    if len(_POLICIES) > 4096:
        _POLICIES.clear()
    _POLICIES[id(spec)] = (spec, made)
    return made


def _fail(r: NetRunner, s: CaseState, t: int, message: str) -> None:
    r._fail_case(s, f"$.nets.{s.net}.tasks.{r.net.task_names[t]}.instances: {message}")


def start(r: NetRunner, s: CaseState, t: int, whole: ItemRecord) -> None:
    """The MI task ``t`` fired: open its group and create its instances."""
    spec = r.net.tasks[t].instances
    if spec is None:  # pragma: no cover
        raise YawlflowInternalError("spec is unset: this is a bug; please report it")
    name = r.net.task_names[t]
    where = f"tasks.{name}.instances"
    values: list[Any] | None = None
    if spec.items is not None:
        got = r._eval(s, spec.items, s.data, where + ".items")
        if not isinstance(got, list):
            _fail(r, s, t, f"items gave {type(got).__name__}, not a list")
        values = list(got)
        n = len(values)
    elif spec.count is not None:
        got = spec.count if isinstance(spec.count, int) else r._eval(s, spec.count, s.data, where + ".count")
        if not isinstance(got, int) or isinstance(got, bool):
            _fail(r, s, t, f"count gave {got!r}, not an integer")
        n = int(got)
    else:
        n = spec.min if spec.min is not None else 1
    if not policy(spec).count_ok(n):
        lo = spec.min if spec.min is not None else 0
        bounds = f"[{lo}, {spec.max if spec.max is not None else 'unbounded'}]"
        _fail(r, s, t, f"{n} instances is outside {bounds} (adjust min/max or the data)")
    group = MIGroup(whole.id)
    s.mi[t] = group
    r._rec("item.enabled", whole)
    r._rec("item.started", whole)
    base = r._input_for(s, t)
    r._mi_opening.add(t)
    try:
        for i in range(n):
            _spawn(r, s, t, group, base, {"item": values[i] if values is not None else i})
    finally:
        r._mi_opening.discard(t)
    if spec.join == "none" or n == 0:
        _complete(r, s, t, group)  # WCP-12: control continues at once
    elif group.finished == group.created:
        _check_join(r, s, t, group)  # routing instances may all have ended already


def _spawn(r: NetRunner, s: CaseState, t: int, group: MIGroup, base: dict[str, Any], extra: dict[str, Any]) -> None:
    item = r._new_item(s, t, "started")
    item.instance = group.created
    item.claimed = True
    group.created += 1
    group.live.append(item.id)
    if r.net.kind[t] == KIND_ROUTING:
        # A routing instance completes at once; its input is what it outputs.
        r._rec("item.completed", item)
        _ended(r, s, t, group, item, None, ok=True)
        return
    r._begin(s, item, announced=False, extra={**base, **extra})


def instance_completed(r: NetRunner, s: CaseState, item: ItemRecord, output: dict[str, Any] | None) -> None:
    """An instance completed with ``output``."""
    del s.items[item.id]
    if item.busy:
        item.busy = False
        r._busy(item.tid, -1)
    item.state = "completed"
    r._rec("item.completed", item, data=output)
    instance_ended(r, s, item, output, ok=True)


def instance_ended(r: NetRunner, s: CaseState, item: ItemRecord, output: dict[str, Any] | None, *, ok: bool) -> None:
    """An instance ended (completed when ``ok``, else failed or withdrawn): update its group."""
    group = s.mi.get(item.tid)
    if group is None or item.id not in group.live:
        return  # the group was withdrawn (WCP-26)
    _ended(r, s, item.tid, group, item, output, ok=ok)


def _ended(r: NetRunner, s: CaseState, t: int, group: MIGroup, item: ItemRecord,
           output: dict[str, Any] | None, *, ok: bool) -> None:
    group.live.remove(item.id)
    spec = r.net.tasks[t].instances
    if spec is None or item.instance is None:  # pragma: no cover
        raise YawlflowInternalError("an instance of a task without instances: this is a bug; please report it")
    if ok and spec.join == "none":
        # WCP-12: the task completed at once; each output still merges as it completes.
        group.results[item.instance] = dict(output or {})
        if spec.as_ is None:
            r._merge_output(s, t, output)
        else:
            s.data[spec.as_] = [group.results[i] for i in sorted(group.results)]
    elif not group.done:
        group.finished += 1
        if ok:
            group.completed += 1
            group.results[item.instance] = dict(output or {})
            if spec.as_ is None:
                r._merge_output(s, t, output)
        if t not in r._mi_opening:  # not while the group is still being created
            _check_join(r, s, t, group)
    if group.done and not group.live and s.mi.get(t) is group:
        del s.mi[t]
        r._touch(t)  # the task may be enabled again


def _cel_threshold(r: NetRunner, s: CaseState, t: int, group: MIGroup, threshold: str) -> int:
    """The CEL threshold's answer (1 holds, 0 not), over ``completed``, ``instances`` and ``results``."""
    scope = {**s.data, "completed": group.completed, "instances": group.created,
             "results": [group.results[i] for i in sorted(group.results)]}
    return int(bool(r._truthy_in(s, threshold, scope, f"tasks.{r.net.task_names[t]}.instances.threshold")))


def _check_join(r: NetRunner, s: CaseState, t: int, group: MIGroup) -> None:
    spec = r.net.tasks[t].instances
    if spec is None:  # pragma: no cover
        raise YawlflowInternalError("spec is unset: this is a bug; please report it")
    mi = policy(spec)
    counters = (group.created, group.finished, group.completed, len(group.live), group.done)
    status = mi.join_status(*counters)
    if status == MI_ASK and isinstance(spec.threshold, str):
        status = mi.join_status(*counters, _cel_threshold(r, s, t, group, spec.threshold))
    if status == MI_THRESHOLD_CANCEL:  # WCP-35: the rest are withdrawn when the threshold is reached
        group.done = True
        _withdraw_live(r, s, group)
        _complete(r, s, t, group)
    elif status in (MI_THRESHOLD, MI_ALL_ENDED):
        _complete(r, s, t, group)


def _withdraw_live(r: NetRunner, s: CaseState, group: MIGroup) -> None:
    for item_id in list(group.live):
        live = s.items.get(item_id)
        if live is not None:
            r._withdraw(s, live)
        if item_id in group.live:
            group.live.remove(item_id)


def _complete(r: NetRunner, s: CaseState, t: int, group: MIGroup) -> None:
    """The task as a whole completes: gather, record, route."""
    group.done = True
    spec = r.net.tasks[t].instances
    if spec is None:  # pragma: no cover
        raise YawlflowInternalError("spec is unset: this is a bug; please report it")
    output: dict[str, Any] | None = None
    if spec.as_ is not None:
        gathered = [group.results[i] for i in sorted(group.results)]
        s.data[spec.as_] = gathered
        output = {spec.as_: gathered}
    whole = ItemRecord(id=group.item, tid=t, task=r.net.task_names[t], net=s.net, state="completed")
    r._rec("item.completed", whole, data=output)
    if not group.live and s.mi.get(t) is group:
        del s.mi[t]
        r._touch(t)
    r._route(s, t, whole, output)


def withdraw_group(r: NetRunner, s: CaseState, t: int) -> None:
    """Withdraw every live instance of ``t`` and the task as a whole, without completing it
    (WCP-26, a cancelled case, a cancelling partial join's branch)."""
    group = s.mi.pop(t, None)
    if group is None:
        return
    for item_id in list(group.live):
        live = s.items.get(item_id)
        if live is not None:
            r._withdraw(s, live)
    if not group.done:
        whole = ItemRecord(id=group.item, tid=t, task=r.net.task_names[t], net=s.net, state="cancelled")
        r._rec("item.cancelled", whole)
    r._touch(t)


def force_complete(r: NetRunner, s: CaseState, t: int) -> None:
    """WCP-27: withdraw the live instances of MI task ``t`` and complete it at once."""
    group = s.mi.get(t)
    if group is None or group.done:
        return
    group.done = True
    _withdraw_live(r, s, group)
    _complete(r, s, t, group)


def add_instance(r: NetRunner, s: CaseState, event: InstanceAdded) -> None:
    """WCP-15: add an instance to the running dynamic MI task."""
    t = r.net.task_ids[event.task]
    group = s.mi[t]
    base = r._input_for(s, t)
    _spawn(r, s, t, group, base, {"item": group.created, **event.data})


def check(r: NetRunner, s: CaseState, event: InstanceAdded | ForceCompleteRequested) -> None:
    """Raise :class:`InvalidEventError` unless the event fits the state (nothing changes)."""
    t = r.net.task_ids.get(event.task)
    if t is None:
        raise InvalidEventError(
            f"case {s.case!r}: net {s.net!r} has no task {event.task!r} "
            f"(its tasks: {', '.join(r.net.task_names)})"
        )
    spec = r.net.tasks[t].instances
    if spec is None:
        raise InvalidEventError(f"case {s.case!r}: task {event.task!r} is not a multiple-instance task")
    group = s.mi.get(t)
    if group is None or group.done:
        raise InvalidEventError(
            f"case {s.case!r}: multiple-instance task {event.task!r} is not running "
            "(it has not fired yet, or it has already completed)"
        )
    if isinstance(event, InstanceAdded):
        status = policy(spec).add_status(group.created)
        if status == ADD_STATIC:
            raise InvalidEventError(
                f"case {s.case!r}: task {event.task!r} creates its instances statically; "
                "declare `creation: dynamic` to add instances while it runs"
            )
        if status == ADD_AT_MAX:
            raise InvalidEventError(
                f"case {s.case!r}: task {event.task!r} already has its maximum of {spec.max} instances"
            )
