"""Plain spec data (from YAML, JSON or Python) to the normalised model, with every problem found.

Theory of operation: one walk over the data, top down, in the order written. Each level checks
its keys (unknown ones get a "did you mean"), reads each attribute through
:class:`~._shape.Reader`, expands shorthand into the model's one shape per concept (a flow
given as a name becomes ``FlowSpec(to=name)``, ``join: {partial: 2}`` becomes
``JoinSpec(kind="partial", n=2)``...), and checks what can be checked locally (``when`` on an
AND split, two default flows, ``loop`` with ``instances``...). A value that does not fit is
reported and replaced by its default, so the walk always yields a best-effort :class:`Spec`;
then the checks that need the whole net (``_graph``: names, reachability) and the CEL compiler
run over it, and :func:`validate` raises one :class:`SpecError` listing everything.

Where a problem could make the net checks report echoes of it (a task whose flows could not be
read looks unreachable downstream), the walker marks the net *damaged*: its names are still
checked, its reachability is not.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from .._errors import SpecError
from . import _attrs
from ._graph import FlowPaths, check_nets
from ._model import (
    ConditionSpec,
    FlowSpec,
    NetSpec,
    Spec,
    SplitSpec,
    TaskSpec,
)
from ._report import Path, Reporter, describe
from ._shape import Reader

__all__ = ("FORMAT_VERSION", "validate")

FORMAT_VERSION = 1

_TOP_KEYS = ("yawlflow", "id", "root", "nets")
_NET_KEYS = ("input", "output", "conditions", "tasks", "termination", "mutex")
_TASK_KEYS = (
    "flows", "run", "external", "join", "split", "cancels", "completes", "instances", "trigger",
    "milestone", "net", "loop", "timer", "input", "output", "timeout", "retry", "strategy", "critical",
)  # fmt: skip
_FLOW_KEYS = ("to", "when", "order", "default")
_STRATEGIES = ("inline", "thread", "process", "ray")
_CHOOSING_SPLIT = "set split: xor (the first true flow) or split: or (every true flow)"


def validate(data: Any, report: Reporter) -> Spec:
    """Check plain spec data and build its normalised :class:`Spec`.

    Args:
        data: the decoded document (mappings, lists, scalars).
        report: collects the problems; it may already hold some (from the parser).

    Returns:
        The normalised spec, when no problem was found.

    Raises:
        SpecError: every problem found, in source order.
    """
    walker = _Walker(report)
    spec = walker.spec(data)
    if spec is not None:
        check_nets(spec, report, walker.damaged, walker.flow_paths)
    if walker.read.expressions:
        _check_expressions(walker.read.expressions, report)
    if report.problems:
        raise SpecError(report.sorted_problems())
    if spec is None:  # pragma: no cover - spec() reports why it returns None
        raise SpecError(report.sorted_problems())
    return spec


class _Walker:
    """Walks one document; collects the model, the damaged nets, and where each flow was written."""

    def __init__(self, report: Reporter) -> None:
        self.report = report
        self.read = Reader(report)
        self.damaged: set[str] = set()
        self.flow_paths: FlowPaths = {}

    # -- spec and nets ------------------------------------------------------------------------

    def spec(self, data: Any) -> Spec | None:
        read = self.read
        top = read.mapping((), data, "a mapping at the top level", "a spec starts with yawlflow: 1")
        if top is None:
            return None
        read.keys((), top, _TOP_KEYS, {"nets": "add nets: {main: {input: ..., output: ..., tasks: ...}}"})
        version = FORMAT_VERSION
        if "yawlflow" in top:
            found = read.integer(("yawlflow",), top["yawlflow"])
            if found is not None and found != FORMAT_VERSION:
                self.report.error(
                    ("yawlflow",),
                    f"unsupported format version {found} (this yawlflow reads version {FORMAT_VERSION})",
                    f"write yawlflow: {FORMAT_VERSION}",
                )
        nets: list[NetSpec] = []
        if "nets" in top:
            body = read.mapping(("nets",), top["nets"], "a mapping of net names to nets")
            if body is not None and not body:
                self.report.error(("nets",), "no nets", "add one: nets: {main: {input: ..., output: ...}}")
            for name, net in (body or {}).items():
                if read.name(("nets", name), name, "a net name", key=True) is not None:
                    nets.append(self.net(name, net))
        root = self.root(top, [n.name for n in nets])
        spec_id = None
        if "id" in top:
            spec_id = read.name(("id",), top["id"], "an id")
        if spec_id is None:
            source = self.report.source
            spec_id = PurePath(source).stem if not source.startswith("<") else (root or "spec")
        return Spec(id=spec_id, root=root or "", nets=tuple(nets), version=version, source=self.report.source)

    def root(self, top: dict[str, Any], names: list[str]) -> str | None:
        if "root" in top:
            root = self.read.name(("root",), top["root"], "a net name")
            if root is not None and names and root not in names:
                self.report.missing_name(("root",), "net", root, names, f"use one of: {', '.join(names)}")
            return root
        if len(names) > 1:
            self.report.error(
                (), f"no root, and the spec has {len(names)} nets", f"add root: one of {', '.join(names)}"
            )
            return None
        return names[0] if names else None

    def net(self, name: str, data: Any) -> NetSpec:
        base: Path = ("nets", name)
        read = self.read
        body = read.mapping(base, data, "a net (a mapping with input, output and tasks)")
        if body is None:
            self.damaged.add(name)
            return NetSpec(name=name, input="", output="")
        required = {
            "input": "add input: <name of the input condition>, e.g. input: start",
            "output": "add output: <name of the output condition>, e.g. output: end",
            "tasks": "add tasks: {<name>: {flows: [...]}}",
        }
        guesses = read.keys(base, body, _NET_KEYS, required)
        if any(k not in body for k in required) or set(guesses) & {"tasks", "conditions"}:
            self.damaged.add(name)
        ends = {}
        for key in ("input", "output"):
            ends[key] = read.name((*base, key), body[key], "a condition name") if key in body else None
            if ends[key] is None:
                self.damaged.add(name)
        termination = "explicit"
        if "termination" in body:
            termination = (
                read.choice(
                    (*base, "termination"), body["termination"], ("explicit", "implicit"), "termination"
                )
                or "explicit"
            )
        tasks = self.tasks(name, body.get("tasks")) if "tasks" in body else []
        conditions = self.conditions(name, body["conditions"]) if "conditions" in body else []
        input_name = ends["input"] or ""
        listed = [c for c in conditions if c.name == input_name]
        if listed:
            conditions = [*listed, *(c for c in conditions if c.name != input_name)]
        else:  # the input condition flows into the first task listed (ARCHITECTURE §3)
            flows = (FlowSpec(to=tasks[0].name),) if tasks else ()
            conditions.insert(0, ConditionSpec(name=input_name, flows=flows))
            self.flow_paths[(name, "conditions", input_name)] = ((*base, "input"),) * len(flows)
        mutex = self.mutex((*base, "mutex"), body["mutex"]) if "mutex" in body else {}
        return NetSpec(
            name=name,
            input=input_name,
            output=ends["output"] or "",
            conditions=tuple(conditions),
            tasks=tuple(tasks),
            termination="implicit" if termination == "implicit" else "explicit",
            mutex=mutex,
        )

    def tasks(self, net: str, data: Any) -> list[TaskSpec]:
        path: Path = ("nets", net, "tasks")
        body = self.read.mapping(path, data, "a mapping of task names to tasks")
        if body is None or not body:
            self.damaged.add(net)
            if body is not None:
                self.report.error(
                    path, "a net needs at least one task", "add tasks: {<name>: {flows: [...]}}"
                )
            return []
        names = {name: self.read.name((*path, name), name, "a task name", key=True) for name in body}
        return [self.task(net, name, task) for name, task in body.items() if names[name] is not None]

    def conditions(self, net: str, data: Any) -> list[ConditionSpec]:
        path: Path = ("nets", net, "conditions")
        body = self.read.mapping(path, data, "a mapping of condition names to {flows: [...]}")
        if body is None:
            self.damaged.add(net)
            return []
        out = []
        for name, cond in body.items():
            here = (*path, name)
            if self.read.name(here, name, "a condition name", key=True) is None:
                continue
            flows: tuple[FlowSpec, ...] = ()
            if cond is not None:
                mapping = self.read.mapping(
                    here, cond, "a condition (a mapping with flows)", "e.g. {flows: [a, b]}"
                )
                if mapping is None or "flows" in self.read.keys(here, mapping, ("flows",)):
                    self.damaged.add(net)
                elif "flows" in mapping:
                    flows = self.flows(net, "conditions", name, mapping["flows"], None)
            out.append(ConditionSpec(name=name, flows=flows))
        return out

    def mutex(self, path: Path, data: Any) -> dict[str, tuple[tuple[str, ...], ...]]:
        body = self.read.mapping(
            path, data, "a mapping of mutex names to lists of regions", "e.g. {db: [a, [b, c]]}"
        )
        out: dict[str, tuple[tuple[str, ...], ...]] = {}
        for name, regions in (body or {}).items():
            here = (*path, name)
            if not isinstance(regions, list) or not regions:
                found_text = "an empty list" if isinstance(regions, list) else describe(regions)
                self.report.error(here, f"expected a list of regions, got {found_text}", "e.g. [a, [b, c]]")
                continue
            found = []
            for i, region in enumerate(regions):
                if isinstance(region, str):
                    one = self.read.name((*here, i), region, "a task name")
                    tasks: tuple[str, ...] = (one,) if one is not None else ()
                else:
                    tasks = self.read.names((*here, i), region, "a task name")
                if isinstance(region, list) and not region:
                    self.report.error((*here, i), "an empty region", "a region is a task or a list of tasks")
                if tasks:
                    found.append(tasks)
            out[name] = tuple(found)
        return out

    # -- tasks --------------------------------------------------------------------------------

    def task(self, net: str, name: str, data: Any) -> TaskSpec:
        path: Path = ("nets", net, "tasks", name)
        read = self.read
        if data is None:
            return TaskSpec(name=name)
        body = read.mapping(path, data, "a task (a mapping of its attributes)", "write {} for a routing task")
        if body is None:
            self.damaged.add(net)
            return TaskSpec(name=name)
        if "flows" in read.keys(path, body, _TASK_KEYS):
            self.damaged.add(net)

        def at(key: str) -> Path:
            return (*path, key)

        attrs: dict[str, Any] = {}
        split = _attrs.split(self.read, at("split"), body["split"]) if "split" in body else SplitSpec()
        attrs["split"] = split
        if "flows" in body:
            attrs["flows"] = self.flows(net, "tasks", name, body["flows"], split)
        if "join" in body:
            attrs["join"] = _attrs.join(self.read, at("join"), body["join"])
        if "run" in body:
            attrs["run"] = _attrs.run(self.read, at("run"), body["run"])
        for key in ("external", "critical"):
            if key in body:
                attrs[key] = read.boolean(at(key), body[key])
        for key in ("cancels", "completes", "milestone"):
            if key in body:
                attrs[key] = read.names(at(key), body[key])
        if "net" in body:
            attrs["net"] = read.name(at("net"), body["net"], "a net name")
        if "instances" in body:
            attrs["instances"] = _attrs.instances(self.read, at("instances"), body["instances"])
        if "trigger" in body:
            attrs["trigger"] = _attrs.trigger(self.read, at("trigger"), body["trigger"])
        if "loop" in body:
            attrs["loop"] = _attrs.loop(self.read, at("loop"), body["loop"])
        if "timer" in body:
            attrs["timer"] = _attrs.timer(self.read, at("timer"), body["timer"])
        for key in ("input", "output"):
            if key in body:
                attrs[key] = read.expressions_map(at(key), body[key])
        if "timeout" in body:
            timeout = read.duration(at("timeout"), body["timeout"], positive=True)
            if timeout is not None:
                attrs["timeout"], attrs["timeout_ns"] = timeout
        if "retry" in body:
            attrs["retry"] = _attrs.retry(self.read, at("retry"), body["retry"])
        if "strategy" in body:
            attrs["strategy"] = read.choice(at("strategy"), body["strategy"], _STRATEGIES, "strategy")
        self.exclusive(path, body)
        defaults = TaskSpec(name=name)
        kept = {k: v if v is not None or k in _NULLABLE else getattr(defaults, k) for k, v in attrs.items()}
        return TaskSpec(name=name, **kept)

    def exclusive(self, path: Path, body: dict[str, Any]) -> None:
        """Report attributes that cannot be combined."""
        for first, second, message, hint in _EXCLUSIVE:
            if body.get(first) not in (None, False) and body.get(second) not in (None, False):
                self.report.error((*path, second), message, hint)

    def flows(
        self, net: str, kind: str, owner: str, data: Any, split: SplitSpec | None
    ) -> tuple[FlowSpec, ...]:
        """A task's (``split`` given) or a condition's (``split`` None) outgoing flows."""
        path: Path = ("nets", net, kind, owner, "flows")
        if data is None:
            return ()
        if not isinstance(data, list):
            self.report.error(
                path, f"expected a list of flows, got {describe(data)}", "e.g. flows: [ship, end]"
            )
            self.damaged.add(net)
            return ()
        flows: list[FlowSpec] = []
        paths: list[Path] = []
        for i, entry in enumerate(data):
            flow = self.flow((*path, i), entry, split)
            if flow is None:
                self.damaged.add(net)
                continue
            flows.append(flow)
            paths.append((*path, i))
        self.flow_paths[(net, kind, owner)] = tuple(paths)
        if split is not None:
            self.split_rules(split, flows, paths)
        seen: dict[str, int] = {}
        for flow, here in zip(flows, paths, strict=True):
            if flow.to in seen:
                self.report.error(
                    here,
                    f"a second flow to {flow.to!r}",
                    f"merge it with flows[{seen[flow.to]}]; join predicates with ||",
                )
            seen.setdefault(flow.to, int(here[-1]))
        return tuple(flows)

    def flow(self, path: Path, data: Any, split: SplitSpec | None) -> FlowSpec | None:
        read = self.read
        if isinstance(data, str):
            to = read.name(path, data, "a flow target")
            return FlowSpec(to=to) if to is not None else None
        if not isinstance(data, dict):
            self.report.error(
                path,
                f"expected a flow (a target name, or {{to: name, when: ...}}), got {describe(data)}",
                "e.g. ship, or {to: ship, when: amount > 100}",
            )
            return None
        body = read.mapping(path, data) or {}
        read.keys(path, body, _FLOW_KEYS, {"to": "add to: <task or condition name>"})
        if "to" not in body:
            return None
        to = read.name((*path, "to"), body["to"], "a flow target")
        if to is None:
            return None
        if split is None:  # a condition's flows: its tasks race for its token (deferred choice)
            for key in ("when", "order", "default"):
                if key in body:
                    self.report.error(
                        (*path, key),
                        f"a condition's flows take no {key!r}",
                        "the first task started takes the token (deferred choice); "
                        "to choose by data, make a task with split: xor",
                    )
            return FlowSpec(to=to)
        when = read.expression((*path, "when"), body["when"]) if "when" in body else None
        order = read.integer((*path, "order"), body["order"]) if "order" in body else None
        default = read.boolean((*path, "default"), body["default"]) if "default" in body else None
        return FlowSpec(to=to, when=when, order=order, default=bool(default))

    def split_rules(self, split: SplitSpec, flows: list[FlowSpec], paths: list[Path]) -> None:
        choosing = split.kind in ("xor", "or")
        first_default: int | None = None
        for flow, here in zip(flows, paths, strict=True):
            if flow.when is not None and not choosing:
                self.report.error(
                    (*here, "when"),
                    f"'when' needs an xor or or split, but this task's split is {_split_text(split)}",
                    f"{_CHOOSING_SPLIT}, or remove when",
                )
            if not flow.default:
                continue
            if not choosing:
                self.report.error(
                    (*here, "default"),
                    f"'default' needs an xor or or split, but this task's split is {_split_text(split)}",
                    f"{_CHOOSING_SPLIT}, or remove default",
                )
            if flow.when is not None:
                self.report.error(
                    here,
                    "a default flow takes no 'when'",
                    "it is taken when no other flow is; remove when or default",
                )
            if first_default is not None:
                self.report.error(
                    here,
                    "more than one default flow",
                    f"flows[{first_default}] is already the default; a split has at most one",
                )
            else:
                first_default = int(here[-1])


_EXCLUSIVE = (
    ("run", "external", "a task runs a handler or is offered (external), not both",
     "remove run (an offered item is completed through the API) or external"),
    ("run", "net", "a composite task runs its sub-net, not a handler", "remove run or net"),
    ("external", "net", "a composite task runs its sub-net; it cannot be offered too",
     "remove external or net"),
    ("loop", "instances", "loop and instances cannot be combined",
     "loop over a composite task (net:) whose net holds the multiple-instance task"),
)  # fmt: skip
_NULLABLE = frozenset(
    ("run", "net", "instances", "trigger", "loop", "timer", "input", "output", "retry", "strategy")
)


def _split_text(split: SplitSpec) -> str:
    return f"{{threads: {split.n}}}" if split.kind == "threads" else split.kind


def _check_expressions(expressions: list[tuple[Path, str]], report: Reporter) -> None:
    """Compile every CEL expression; a syntax error is a problem at the expression's path."""
    from .._cel import CelError, compile_expr  # loads the CEL extension: only when a spec has CEL

    for path, expr in expressions:
        try:
            compile_expr(expr)
        except CelError as exc:
            report.error(
                path, f"bad CEL: {_cel_reason(str(exc), expr)}", "CEL reads like: amount > 1000 && ok"
            )


_CEL_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): (?:Syntax error: )?(.*?)(?= \| |\n|$)")


def _cel_reason(message: str, expr: str) -> str:
    match = _CEL_ERROR.search(message)
    if match is None:
        return message.splitlines()[0] if message else "does not parse"
    line, column, reason = match.groups()
    reason = re.sub(r" expecting \{.*?\}$", "", reason.strip()) or "does not parse"
    where = f"column {column}" if line == "1" else f"line {line}, column {column}"
    shown = expr if len(expr) <= 60 else expr[:57] + "..."
    return f"{reason} at {where} of {shown!r}"
