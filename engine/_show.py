"""Diagrams of a spec: Mermaid flowcharts and Graphviz DOT, in YAWL notation as far as each allows.

Theory of operation. A diagram is drawn from the normalised :class:`Spec`, not from the compiled
net, so it shows what the author wrote: explicit conditions are circles, the input and output
conditions double circles marked ``▶`` and ``■`` (YAWL's symbols), tasks boxes, composite tasks
double-bordered boxes (Mermaid's subroutine shape). The implicit condition YAWL puts on every
task→task flow is not drawn: the arrow goes straight from task to task, as in YAWL's editor.

A task's label names its join when it has several incoming flows or a join other than the
default, and its split likewise; then what runs it (a handler, a connector, an offer, a timer,
a sub-net) and its other behaviour (instances, trigger, loop). Flow arrows carry their ``when``
predicate, their ``order`` and ``default``; cancellation sets are dashed arrows labelled
``cancels``, forced completion ``completes``, milestones dotted links into the task.

Output is deterministic: everything is emitted in the order written in the spec, and node ids
are derived from element names by an injective encoding, so the same spec gives the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ._spec._model import FlowSpec, JoinSpec, NetSpec, Spec, SplitSpec, TaskSpec

__all__ = ("to_dot", "to_mermaid")


# -- shared: what a task's label says ----------------------------------------------------------


def _incoming(net: NetSpec) -> dict[str, int]:
    """How many flows reach each element of ``net``."""
    count: dict[str, int] = {}
    owners: list[tuple[FlowSpec, ...]] = [c.flows for c in net.conditions] + [t.flows for t in net.tasks]
    for flows in owners:
        for flow in flows:
            count[flow.to] = count.get(flow.to, 0) + 1
    return count


def _join_text(join: JoinSpec) -> str:
    if join.kind == "partial":
        return f"partial {join.n}, reset: {join.reset}"
    if join.kind == "threads":
        return f"threads {join.n}"
    return join.kind


def _split_text(split: SplitSpec) -> str:
    return f"threads {split.n}" if split.kind == "threads" else split.kind


def _task_lines(task: TaskSpec, incoming: int) -> list[str]:
    """The lines of a task's label: its name, then its join, split and behaviour."""
    lines = [task.name]
    if incoming > 1 or task.join != JoinSpec():
        lines.append(f"join: {_join_text(task.join)}")
    if len(task.flows) > 1 or task.split != SplitSpec():
        lines.append(f"split: {_split_text(task.split)}")
    if task.run is not None:
        if task.run.connector is not None:
            lines.append(f"connector: {task.run.connector}")
        else:
            lines.append(f"run: {task.run.handler}")
    if task.external:
        lines.append("offered")
    if task.net is not None:
        lines.append(f"net: {task.net}")
    if task.timer is not None:
        lines.append(f"timer: {task.timer.after}")
    if task.trigger is not None:
        kind = "persistent" if task.trigger.persistent else "transient"
        lines.append(f"trigger: {task.trigger.signal} ({kind})")
    if task.instances is not None:
        mi = task.instances
        how = mi.items if mi.items is not None else (mi.count if mi.count is not None else mi.min or 1)
        lines.append(f"instances: {how} ({mi.creation}, join: {mi.join})")
    if task.loop is not None:
        if task.loop.while_ is not None:
            lines.append(f"loop while: {task.loop.while_}")
        else:
            lines.append(f"loop until: {task.loop.until}")
    return lines


def _flow_label(flow: FlowSpec) -> str:
    parts: list[str] = []
    if flow.order is not None:
        parts.append(f"{flow.order}:")
    if flow.when is not None:
        parts.append(flow.when)
    if flow.default:
        parts.append("default")
    return " ".join(parts)


def _select(spec: Spec, net: str | None) -> tuple[NetSpec, ...]:
    if net is None:
        return spec.nets
    for candidate in spec.nets:
        if candidate.name == net:
            return (candidate,)
    names = ", ".join(n.name for n in spec.nets)
    raise ValueError(f"spec {spec.id!r} has no net {net!r} (its nets: {names})")


def _encode_name(name: str) -> str:
    """An identifier-safe, injective spelling of ``name``: ``_`` → ``__``, others → ``_xHH_``."""
    out: list[str] = []
    for char in name:
        if char.isascii() and char.isalnum():
            out.append(char)
        elif char == "_":
            out.append("__")
        else:
            out.append(f"_x{ord(char):x}_")
    return "".join(out)


class _Ids:
    """Node ids of one net's elements: ``c_<name>`` for conditions, ``t_<name>`` for tasks."""

    def __init__(self, net: NetSpec, prefix: str) -> None:
        self.prefix = prefix
        self.tasks = {t.name for t in net.tasks}

    def __call__(self, name: str) -> str:
        kind = "t" if name in self.tasks else "c"
        return f"{self.prefix}{kind}_{_encode_name(name)}"


def _conditions(net: NetSpec) -> list[str]:
    """The net's conditions to draw: input, the explicit ones in the order written, output."""
    names = [net.input]
    for cond in net.conditions:
        if cond.name not in (net.input, net.output) and cond.name not in names:
            names.append(cond.name)
    names.append(net.output)
    return names


def _cancel_targets(net: NetSpec, task: TaskSpec) -> tuple[list[str], bool]:
    """The elements ``task`` cancels, and whether it cancels its whole net (the case).

    As in the compiler, the net's own name in ``cancels`` means the whole (sub-)case.
    """
    return [c for c in task.cancels if c != net.name], net.name in task.cancels


# -- Mermaid -----------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """Escape text for a quoted Mermaid label (entity codes; Mermaid decodes ``#NN;``).

    ``>`` is left as it is (harmless in a quoted label, and common in predicates); ``<`` and
    ``&`` could start HTML, ``"``, ``|`` and backticks end or change a label, ``#`` an entity.
    """
    out: list[str] = []
    for char in text:
        if char in '"#<&|`':
            out.append(f"#{ord(char)};")
        elif char == "\n":
            out.append("<br/>")
        else:
            out.append(char)
    return "".join(out)


def _mermaid_lines(lines: Iterable[str]) -> str:
    return "<br/>".join(_mermaid_text(line) for line in lines)


def _mermaid_net(net: NetSpec, prefix: str, indent: str) -> list[str]:
    ids = _Ids(net, prefix)
    out: list[str] = []
    incoming = _incoming(net)
    for name in _conditions(net):
        node = ids(name)
        if name == net.input:
            out.append(f'{indent}{node}((("{_mermaid_text("▶ " + name)}")))')
            out.append(f"{indent}class {node} inputCondition")
        elif name == net.output:
            out.append(f'{indent}{node}((("{_mermaid_text("■ " + name)}")))')
            out.append(f"{indent}class {node} outputCondition")
        else:
            out.append(f'{indent}{node}(("{_mermaid_text(name)}"))')
            out.append(f"{indent}class {node} condition")
    for task in net.tasks:
        node = ids(task.name)
        lines = _task_lines(task, incoming.get(task.name, 0))
        _, whole = _cancel_targets(net, task)
        if whole:
            lines.append("cancels: case")
        label = _mermaid_lines(lines)
        if task.net is not None:
            out.append(f'{indent}{node}[["{label}"]]')
            out.append(f"{indent}class {node} compositeTask")
        else:
            out.append(f'{indent}{node}["{label}"]')
            out.append(f"{indent}class {node} {'externalTask' if task.external else 'task'}")

    def arrow(src: str, flow: FlowSpec) -> str:
        label = _flow_label(flow)
        middle = f'|"{_mermaid_text(label)}"|' if label else ""
        return f"{indent}{ids(src)} -->{middle} {ids(flow.to)}"

    for cond in net.conditions:
        out.extend(arrow(cond.name, flow) for flow in cond.flows)
    for task in net.tasks:
        out.extend(arrow(task.name, flow) for flow in task.flows)
    for task in net.tasks:
        targets, _ = _cancel_targets(net, task)
        out.extend(f'{indent}{ids(task.name)} -.->|"cancels"| {ids(t)}' for t in targets)
        out.extend(f'{indent}{ids(task.name)} -.->|"completes"| {ids(t)}' for t in task.completes)
        out.extend(f'{indent}{ids(m)} -.-|"milestone"| {ids(task.name)}' for m in task.milestone)
    if net.termination != "explicit":
        out.append(f"{indent}%% termination: {net.termination}")
    for name, regions in net.mutex.items():
        shown = "; ".join(", ".join(region) for region in regions)
        out.append(f"{indent}%% mutex {name}: {shown}")
    return out


_MERMAID_CLASSES = (
    "classDef condition fill:#ffffff,stroke:#333333",
    "classDef inputCondition fill:#e8f5e9,stroke:#2e7d32,stroke-width:2px",
    "classDef outputCondition fill:#fdecea,stroke:#c62828,stroke-width:2px",
    "classDef task fill:#eef3fb,stroke:#3b5b92",
    "classDef externalTask fill:#fff8e1,stroke:#b26a00",
    "classDef compositeTask fill:#eef3fb,stroke:#3b5b92,stroke-width:3px",
)


def to_mermaid(spec: Spec, net: str | None = None) -> str:
    """Draw ``spec`` as a Mermaid flowchart in YAWL notation.

    Args:
        spec: a loaded spec.
        net: draw only this net; by default every net (several nets: one subgraph each).

    Returns:
        The Mermaid text, ending with a newline; the same spec always gives the same text.

    Raises:
        ValueError: ``net`` is not a net of ``spec``.
    """
    nets = _select(spec, net)
    out = ["flowchart LR", f"  %% yawlflow spec {spec.id!r}"]
    if len(nets) == 1:
        out.extend(_mermaid_net(nets[0], "", "  "))
    else:
        for i, one in enumerate(nets):
            title = f"net {one.name}" + (" (root)" if one.name == spec.root else "")
            out.append(f'  subgraph n{i}["{_mermaid_text(title)}"]')
            out.append("    direction LR")
            out.extend(_mermaid_net(one, f"n{i}_", "    "))
            out.append("  end")
    out.extend(f"  {line}" for line in _MERMAID_CLASSES)
    return "\n".join(out) + "\n"


# -- Graphviz DOT ------------------------------------------------------------------------------


def _dot_text(text: str) -> str:
    """A DOT double-quoted string's content."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _dot_net(net: NetSpec, prefix: str, indent: str) -> list[str]:
    ids: Callable[[str], str] = _Ids(net, prefix)
    out: list[str] = []
    incoming = _incoming(net)
    for name in _conditions(net):
        node = ids(name)
        if name == net.input:
            out.append(f'{indent}{node} [shape=doublecircle, label="{_dot_text("▶ " + name)}"];')
        elif name == net.output:
            out.append(f'{indent}{node} [shape=doublecircle, label="{_dot_text("■ " + name)}"];')
        else:
            out.append(f'{indent}{node} [shape=circle, label="{_dot_text(name)}"];')
    for task in net.tasks:
        lines = _task_lines(task, incoming.get(task.name, 0))
        _, whole = _cancel_targets(net, task)
        if whole:
            lines.append("cancels: case")
        extra = ", peripheries=2" if task.net is not None else ""
        extra += ", style=dashed" if task.external else ""
        out.append(f'{indent}{ids(task.name)} [shape=box, label="{_dot_text(chr(10).join(lines))}"{extra}];')

    def edge(src: str, flow: FlowSpec) -> str:
        label = _flow_label(flow)
        attrs = f' [label="{_dot_text(label)}"]' if label else ""
        return f"{indent}{ids(src)} -> {ids(flow.to)}{attrs};"

    for cond in net.conditions:
        out.extend(edge(cond.name, flow) for flow in cond.flows)
    for task in net.tasks:
        out.extend(edge(task.name, flow) for flow in task.flows)
    for task in net.tasks:
        targets, _ = _cancel_targets(net, task)
        out.extend(f'{indent}{ids(task.name)} -> {ids(t)} [style=dashed, label="cancels"];' for t in targets)
        out.extend(
            f'{indent}{ids(task.name)} -> {ids(t)} [style=dashed, label="completes"];' for t in task.completes
        )
        out.extend(
            f'{indent}{ids(m)} -> {ids(task.name)} [style=dotted, arrowhead=none, label="milestone"];'
            for m in task.milestone
        )
    return out


def to_dot(spec: Spec, net: str | None = None) -> str:
    """Draw ``spec`` as a Graphviz digraph in YAWL notation (render it with ``dot -Tsvg``).

    Args:
        spec: a loaded spec.
        net: draw only this net; by default every net (several nets: one cluster each).

    Returns:
        The DOT text, ending with a newline; the same spec always gives the same text.

    Raises:
        ValueError: ``net`` is not a net of ``spec``.
    """
    nets = _select(spec, net)
    out = [
        f'digraph "{_dot_text(spec.id)}" {{',
        "  rankdir=LR;",
        '  node [fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    if len(nets) == 1:
        out.extend(_dot_net(nets[0], "", "  "))
    else:
        for i, one in enumerate(nets):
            title = f"net {one.name}" + (" (root)" if one.name == spec.root else "")
            out.append(f"  subgraph cluster_n{i} {{")
            out.append(f'    label="{_dot_text(title)}";')
            out.extend(_dot_net(one, f"n{i}_", "    "))
            out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"
