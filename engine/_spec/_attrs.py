"""Readers for a task's structured attributes: join, split, run, instances, trigger, loop, timer, retry.

Each function reads one attribute's plain data at its path with a :class:`~._shape.Reader`,
expands the file's shorthand into the model's single shape (``"or"`` → ``JoinSpec(kind="or")``,
``{partial: 2}`` → ``JoinSpec(kind="partial", n=2)``, ``run: name`` → ``RunSpec(handler=name)``),
checks what is local to the attribute (``min`` ≤ ``max``, exactly one of ``while``/``until``),
and returns ``None`` or the default after reporting what does not fit.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ._model import (
    InstancesSpec,
    JoinSpec,
    LoopSpec,
    RetrySpec,
    RunSpec,
    SplitSpec,
    TimerSpec,
    TriggerSpec,
)
from ._report import Path, describe, render_path
from ._shape import Reader

__all__ = ("handler", "instances", "join", "loop", "retry", "run", "split", "timer", "trigger")

_RUN_KEYS = ("handler", "connector", "config")
_INSTANCES_KEYS = ("count", "min", "max", "threshold", "items", "creation", "join", "cancel_rest", "as")
_RETRY_KEYS = ("attempts", "backoff", "max_backoff", "deadline", "on")
_SIMPLE_JOINS = {"and": JoinSpec(kind="and"), "or": JoinSpec(kind="or"), "xor": JoinSpec(kind="xor")}
_SIMPLE_SPLITS = {"and": SplitSpec(kind="and"), "or": SplitSpec(kind="or"), "xor": SplitSpec(kind="xor")}
_JOIN_HINT = "use one of: and, or, xor, {partial: N}, {threads: N}"
_SPLIT_HINT = "use one of: and, xor, or, {threads: N}"
_IMPORT_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\Z")


def join(read: Reader, path: Path, data: Any) -> JoinSpec:
    if isinstance(data, str):
        if data in _SIMPLE_JOINS:
            return _SIMPLE_JOINS[data]
        read.report.error(path, f"unknown join {data!r}", _JOIN_HINT)
        return JoinSpec()
    if not isinstance(data, dict):
        read.report.error(path, f"expected a join, got {describe(data)}", _JOIN_HINT)
        return JoinSpec()
    body = read.mapping(path, data) or {}
    read.keys(path, body, ("partial", "threads", "reset"))
    if ("partial" in body) == ("threads" in body):
        which = "both partial and threads" if "partial" in body else "neither partial nor threads"
        read.report.error(path, f"a join mapping needs partial: N or threads: N, and has {which}", _JOIN_HINT)
        return JoinSpec()
    if "threads" in body:
        if "reset" in body:
            read.report.error((*path, "reset"), "reset applies to a partial join only", "remove reset")
        n = read.integer((*path, "threads"), body["threads"], minimum=1)
        return JoinSpec(kind="threads", n=n) if n is not None else JoinSpec()
    n = read.integer((*path, "partial"), body["partial"], minimum=1)
    reset = "wait"
    if "reset" in body:
        reset = read.choice((*path, "reset"), body["reset"], ("wait", "cancel"), "reset") or "wait"
    if n is None:
        return JoinSpec()
    return JoinSpec(kind="partial", n=n, reset="cancel" if reset == "cancel" else "wait")


def split(read: Reader, path: Path, data: Any) -> SplitSpec:
    if isinstance(data, str):
        if data in _SIMPLE_SPLITS:
            return _SIMPLE_SPLITS[data]
        read.report.error(path, f"unknown split {data!r}", _SPLIT_HINT)
        return SplitSpec()
    if not isinstance(data, dict):
        read.report.error(path, f"expected a split, got {describe(data)}", _SPLIT_HINT)
        return SplitSpec()
    body = read.mapping(path, data) or {}
    read.keys(path, body, ("threads",), {"threads": _SPLIT_HINT})
    n = read.integer((*path, "threads"), body["threads"], minimum=1) if "threads" in body else None
    return SplitSpec(kind="threads", n=n) if n is not None else SplitSpec()


def run(read: Reader, path: Path, data: Any) -> RunSpec | None:
    hint = "e.g. run: receive_order, run: package.module:function, or run: {connector: http, config: {...}}"
    if isinstance(data, str):
        return RunSpec(handler=handler(read, path, data))
    if not isinstance(data, dict):
        read.report.error(path, f"expected a handler name or a connector, got {describe(data)}", hint)
        return None
    body = read.mapping(path, data) or {}
    read.keys(path, body, _RUN_KEYS)
    if ("handler" in body) == ("connector" in body):
        which = "both" if "handler" in body else "neither"
        read.report.error(path, f"run needs a handler or a connector, and has {which}", hint)
        return None
    if "handler" in body:
        if "config" in body:
            read.report.error((*path, "config"), "config applies to a connector only", "remove config")
        return RunSpec(handler=handler(read, (*path, "handler"), body["handler"]))
    connector = read.name((*path, "connector"), body["connector"], "a connector name")
    config: dict[str, Any] = {}
    if "config" in body and body["config"] is not None:
        config = read.mapping((*path, "config"), body["config"], "a mapping (the connector's config)") or {}
    if connector is None:
        return None
    _check_connector_config(read, path, connector, config)
    return RunSpec(connector=connector, config=copy.deepcopy(config))  # the model owns its data


def _check_connector_config(read: Reader, path: Path, name: str, config: dict[str, Any]) -> None:
    """Validate a connector task's config against the connector's ``Config`` as the spec loads.

    The connector resolves in the process-wide registry (built-ins, explicit registrations,
    installed plugins, loaded on first use: only a spec that names one pays for it). A name it
    does not know is not an error here: an engine may register it (``Engine(connectors=...)``);
    the engine checks again when a case starts. A plugin that fails to import, or was built for
    another yawlflow, is an error located at ``connector``.
    """
    from yawlflow.connectors._errors import ConnectorConfigError, PluginError, UnknownConnectorError
    from yawlflow.connectors._registry import registry

    where = (*path, "config")
    try:
        registry.validate_config(name, config, render_path(where))
    except ConnectorConfigError as exc:
        read.report.error((*where, *exc.below), exc.reason, exc.hint)
    except UnknownConnectorError:
        return
    except PluginError as exc:
        read.report.error((*path, "connector"), str(exc), "reinstall the plugin, or one built for this yawlflow")


def handler(read: Reader, path: Path, data: Any) -> str | None:
    name = read.name(path, data, "a handler name")
    if name is not None and ":" in name and not _IMPORT_NAME.match(name):
        read.report.error(
            path,
            f"bad handler reference {name!r}",
            "write a registry name, or package.module:function",
        )
        return None
    return name


def instances(read: Reader, path: Path, data: Any) -> InstancesSpec | None:
    body = read.mapping(
        path, data, "a mapping of multiple-instance parameters", "e.g. {items: orders, as: results}"
    )
    if body is None:
        return None
    read.keys(path, body, _INSTANCES_KEYS)

    def get(key: str, reader: Any, **kw: Any) -> Any:
        return reader((*path, key), body[key], **kw) if key in body else None

    count = get("count", read.int_or_expression, minimum=0)
    low = get("min", read.integer, minimum=0)
    high = get("max", read.integer, minimum=1)
    threshold = get("threshold", read.int_or_expression, minimum=1)
    items = get("items", read.expression)
    creation = get("creation", read.choice, choices=("static", "dynamic"), what="creation")
    join = get("join", read.choice, choices=("all", "threshold", "none"), what="instances join")
    cancel_rest = get("cancel_rest", read.boolean)
    gather = get("as", read.name, what="a key to gather results under")
    if low is not None and high is not None and low > high:
        read.report.error((*path, "min"), f"min {low} is greater than max {high}", "make min <= max")
    for key, value in (("count", count), ("threshold", threshold)):
        if isinstance(value, int) and high is not None and value > high:
            read.report.error((*path, key), f"{key} {value} is greater than max {high}", f"make {key} <= max")
    if isinstance(count, int) and low is not None and count < low:
        read.report.error((*path, "count"), f"count {count} is less than min {low}", "make count >= min")
    if "count" in body and "items" in body:
        read.report.error(
            path, "count and items both given", "items makes one instance per element; drop count"
        )
    if join == "threshold" and "threshold" not in body:
        read.report.error(
            (*path, "join"), "join: threshold needs a threshold", "add threshold: N or a CEL condition"
        )
    return InstancesSpec(
        count=count,
        min=low,
        max=high,
        threshold=threshold,
        items=items,
        creation="dynamic" if creation == "dynamic" else "static",
        join="threshold" if join == "threshold" else "none" if join == "none" else "all",
        cancel_rest=bool(cancel_rest),
        as_=gather,
    )


def trigger(read: Reader, path: Path, data: Any) -> TriggerSpec | None:
    if isinstance(data, str):
        signal = read.name(path, data, "a signal name")
        return TriggerSpec(signal=signal) if signal is not None else None
    body = read.mapping(path, data, "a trigger", "e.g. {signal: paid, persistent: true}")
    if body is None:
        return None
    read.keys(path, body, ("signal", "persistent"), {"signal": "name it: trigger: {signal: paid}"})
    signal = read.name((*path, "signal"), body["signal"], "a signal name") if "signal" in body else None
    persistent = read.boolean((*path, "persistent"), body["persistent"]) if "persistent" in body else None
    return TriggerSpec(signal=signal, persistent=bool(persistent)) if signal is not None else None


def loop(read: Reader, path: Path, data: Any) -> LoopSpec | None:
    hint = "write loop: {while: <CEL>} (tested before each iteration) or loop: {until: <CEL>} (after)"
    body = read.mapping(path, data, "a loop", hint)
    if body is None:
        return None
    read.keys(path, body, ("while", "until"))
    if ("while" in body) == ("until" in body):
        which = "both" if "while" in body else "neither"
        read.report.error(path, f"a loop needs while or until, and has {which}", hint)
        return None
    if "while" in body:
        return LoopSpec(while_=read.expression((*path, "while"), body["while"]))
    return LoopSpec(until=read.expression((*path, "until"), body["until"]))


def timer(read: Reader, path: Path, data: Any) -> TimerSpec | None:
    if isinstance(data, str):
        after = read.duration(path, data)
    else:
        body = read.mapping(path, data, "a timer", "e.g. timer: {after: 10s}")
        if body is None:
            return None
        read.keys(path, body, ("after",), {"after": "e.g. timer: {after: 10s}"})
        after = read.duration((*path, "after"), body["after"]) if "after" in body else None
    return TimerSpec(after=after[0], after_ns=after[1]) if after is not None else None


def retry(read: Reader, path: Path, data: Any) -> RetrySpec | None:
    body = read.mapping(path, data, "a retry policy", "e.g. {attempts: 3, backoff: 100ms}")
    if body is None:
        return None
    read.keys(path, body, _RETRY_KEYS)
    attrs: dict[str, Any] = {}
    if "attempts" in body:
        attempts = read.integer((*path, "attempts"), body["attempts"], minimum=1)
        if attempts is not None:
            attrs["attempts"] = attempts
    for key in ("backoff", "max_backoff", "deadline"):
        if key in body:
            found = read.duration((*path, key), body[key], positive=key == "deadline")
            if found is not None:
                attrs[key], attrs[f"{key}_ns"] = found
    if "on" in body:
        attrs["on"] = read.names((*path, "on"), body["on"], "an error class name")
    return RetrySpec(**attrs)
