"""The normalised model back to the spec file's plain-data shape (the inverse of the loader).

:func:`to_builtins` writes the shortest spelling the loader reads back to the same model:
defaults are left out, a flow with only a target is its name, ``JoinSpec(kind="or")`` is
``"or"``, durations are kept as written. So ``from_data(to_builtins(spec), source=spec.source)
== spec`` for every spec the loader produced, and the output dumps as YAML or JSON unchanged.
"""

from __future__ import annotations

from typing import Any

from ._model import (
    ConditionSpec,
    FlowSpec,
    InstancesSpec,
    JoinSpec,
    NetSpec,
    RetrySpec,
    RunSpec,
    Spec,
    SplitSpec,
    TaskSpec,
)

__all__ = ("to_builtins",)


def to_builtins(spec: Spec) -> dict[str, Any]:
    """Encode ``spec`` as the plain data of a spec file (dicts, lists, strings, numbers, bools).

    Args:
        spec: a spec, as :func:`~yawlflow._spec.load` returns it.

    Returns:
        The document, ready for ``yaml.safe_dump`` or ``msgspec.json.encode``; loading it back
        with the same ``source`` gives an equal :class:`Spec`. (``source`` itself is not part of
        the file.)
    """
    return {
        "yawlflow": spec.version,
        "id": spec.id,
        "root": spec.root,
        "nets": {net.name: _net(net) for net in spec.nets},
    }


def _net(net: NetSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"input": net.input, "output": net.output}
    conditions = list(net.conditions)
    implicit = ConditionSpec(name=net.input, flows=(FlowSpec(to=net.tasks[0].name),) if net.tasks else ())
    if conditions and conditions[0] == implicit:
        conditions.pop(0)  # the loader adds it back: the input condition flows into the first task
    if conditions:
        out["conditions"] = {
            c.name: ({"flows": [_flow(f) for f in c.flows]} if c.flows else None) for c in conditions
        }
    out["tasks"] = {task.name: _task(task) for task in net.tasks}
    if net.termination != "explicit":
        out["termination"] = net.termination
    if net.mutex:
        out["mutex"] = {
            name: [region[0] if len(region) == 1 else list(region) for region in regions]
            for name, regions in net.mutex.items()
        }
    return out


def _flow(flow: FlowSpec) -> str | dict[str, Any]:
    if flow.when is None and flow.order is None and not flow.default:
        return flow.to
    out: dict[str, Any] = {"to": flow.to}
    if flow.when is not None:
        out["when"] = flow.when
    if flow.order is not None:
        out["order"] = flow.order
    if flow.default:
        out["default"] = True
    return out


def _join(join: JoinSpec) -> str | dict[str, Any]:
    if join.kind == "partial":
        out: dict[str, Any] = {"partial": join.n}
        if join.reset != "wait":
            out["reset"] = join.reset
        return out
    if join.kind == "threads":
        return {"threads": join.n}
    return join.kind


def _split(split: SplitSpec) -> str | dict[str, Any]:
    return {"threads": split.n} if split.kind == "threads" else split.kind


def _run(run: RunSpec) -> str | dict[str, Any]:
    if run.connector is None and run.handler is not None and not run.config:
        return run.handler
    out: dict[str, Any] = {}
    if run.handler is not None:
        out["handler"] = run.handler
    if run.connector is not None:
        out["connector"] = run.connector
    if run.config:
        out["config"] = run.config
    return out


def _instances(mi: InstancesSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (("count", mi.count), ("min", mi.min), ("max", mi.max), ("threshold", mi.threshold)):
        if value is not None:
            out[key] = value
    if mi.items is not None:
        out["items"] = mi.items
    if mi.creation != "static":
        out["creation"] = mi.creation
    if mi.join != "all":
        out["join"] = mi.join
    if mi.cancel_rest:
        out["cancel_rest"] = True
    if mi.as_ is not None:
        out["as"] = mi.as_
    return out


def _retry(retry: RetrySpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if retry.attempts != 1:
        out["attempts"] = retry.attempts
    if retry.backoff != "100ms" or retry.backoff_ns != 100_000_000:
        out["backoff"] = retry.backoff
    for key, value in (("max_backoff", retry.max_backoff), ("deadline", retry.deadline)):
        if value is not None:
            out[key] = value
    if retry.on:
        out["on"] = list(retry.on)
    return out


def _task(task: TaskSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if task.run is not None:
        out["run"] = _run(task.run)
    if task.external:
        out["external"] = True
    if task.net is not None:
        out["net"] = task.net
    if task.join != JoinSpec():
        out["join"] = _join(task.join)
    if task.split != SplitSpec():
        out["split"] = _split(task.split)
    if task.flows:
        out["flows"] = [_flow(f) for f in task.flows]
    for key in ("cancels", "completes", "milestone"):
        names: tuple[str, ...] = getattr(task, key)
        if names:
            out[key] = list(names)
    if task.instances is not None:
        out["instances"] = _instances(task.instances)
    if task.trigger is not None:
        trigger: dict[str, Any] = {"signal": task.trigger.signal}
        if task.trigger.persistent:
            trigger["persistent"] = True
        out["trigger"] = trigger
    if task.loop is not None:
        out["loop"] = (
            {"while": task.loop.while_} if task.loop.while_ is not None else {"until": task.loop.until}
        )
    if task.timer is not None:
        out["timer"] = {"after": task.timer.after}
    for key in ("input", "output"):
        mapping: dict[str, str] | None = getattr(task, key)
        if mapping is not None:
            out[key] = dict(mapping)
    if task.timeout is not None:
        out["timeout"] = task.timeout
    if task.retry is not None:
        out["retry"] = _retry(task.retry)
    if task.strategy is not None:
        out["strategy"] = task.strategy
    if not task.critical:
        out["critical"] = False
    return out
