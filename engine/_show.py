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

import html
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._spec._model import FlowSpec, JoinSpec, NetSpec, Spec, SplitSpec, TaskSpec

if TYPE_CHECKING:
    from ._state import CaseState

__all__ = ("Overlay", "overlay_of", "to_dot", "to_mermaid")


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
        parts.append(f"{flow.order}:" if flow.when is not None else f"order {flow.order}")
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
            kind = "miTask" if task.instances is not None else ("externalTask" if task.external else "task")
            out.append(f"{indent}class {node} {kind}")

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
    "classDef miTask fill:#eef3fb,stroke:#3b5b92,stroke-width:4px",
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
#
# YAWL's notation, drawn with Graphviz: conditions are small circles named beside them (the input
# condition holds a green ``▶``, the output condition a red ``■``); a task is a box whose join
# sits in a cell on its left and whose split in a cell on its right, each a YAWL glyph — AND:
# a triangle pointing into the task for a join (``▷``) and out of it for a split (``◁``), XOR the
# other way round, OR a diamond (``◇``), a threads join or split ``xN`` (a multiplication sign), a partial join ``N/k``.
# A multiple-instance task is a stacked box (``box3d``), a composite task a double-bordered box.
# Cancellation sets are dashed red arrows that do not pull on the layout; ``completes`` dashed
# purple, milestones dotted.


class Overlay:
    """A case drawn over its net: its marking, its live items and what it has done.

    Attributes:
        case: the case id.
        status: the case's status (running, completed, failed, cancelled).
        tokens: tokens per place name (implicit conditions named ``c{src_dst}``), only marked ones.
        live: per task name, its live items counted by state (enabled, offered, started).
        done: per task name, how many of its items completed.
        suspended: whether the case is suspended.
    """

    __slots__ = ("case", "done", "live", "status", "suspended", "tokens")

    def __init__(self, *, case: str, status: str, tokens: dict[str, int], live: dict[str, dict[str, int]],
                 done: dict[str, int], suspended: bool = False) -> None:
        self.case = case
        self.status = status
        self.tokens = tokens
        self.live = live
        self.done = done
        self.suspended = suspended


def overlay_of(place_names: Iterable[str], state: CaseState, trace: Iterable[dict[str, Any]]) -> Overlay:
    """The overlay of a case: marking and live items from ``state``, completions from ``trace``.

    Args:
        place_names: the compiled net's place names by id (``CompiledNet.place_names``).
        state: the case's state (folded from its store, or live).
        trace: the trace records of its events so far (each a dict with ``event`` and ``task``).
    """
    tokens: dict[str, int] = {}
    for pid, name in enumerate(place_names):
        n = int(state.marking.get(pid))
        if n:
            tokens[name] = n
    live: dict[str, dict[str, int]] = {}
    for item in state.items.values():
        counts = live.setdefault(item.task, {})
        counts[item.state] = counts.get(item.state, 0) + 1
    done: dict[str, int] = {}
    for rec in trace:
        if rec.get("event") == "item.completed" and rec.get("task") is not None:
            task = str(rec["task"])
            done[task] = done.get(task, 0) + 1
    return Overlay(case=state.case, status=state.status, tokens=tokens, live=live, done=done,
                   suspended=bool(state.suspended))


def _dot_text(text: str) -> str:
    """A DOT double-quoted string's content."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _html(text: str) -> str:
    """Text for a Graphviz HTML-like label."""
    return html.escape(text, quote=True)


_TIMES = "\u00d7"  # the multiplication sign
_JOIN_GLYPH = {"and": "▷", "xor": "◁", "or": "◇"}
_SPLIT_GLYPH = {"and": "◁", "xor": "▷", "or": "◇"}


def _join_glyph(join: JoinSpec, incoming: int) -> str:
    if join.kind == "threads":
        return f"{_TIMES}{join.n}"
    if join.kind == "partial":
        return f"{join.n}/{incoming}"
    return _JOIN_GLYPH[join.kind]


def _split_glyph(split: SplitSpec) -> str:
    return f"{_TIMES}{split.n}" if split.kind == "threads" else _SPLIT_GLYPH[split.kind]


def _task_details(task: TaskSpec) -> list[str]:
    """The small print under a task's name: what runs it and its other behaviour."""
    lines = _task_lines(task, 0)[1:]
    return [line for line in lines if not line.startswith(("join:", "split:"))]


# fill colours: by kind of task, and by what a case overlay says
_FILL_AUTO = "#eef3fb"
_FILL_OFFERED_TASK = "#fff8e1"
_FILL_ROUTING = "#ffffff"
_LIVE_FILL = {"started": "#a5d6a7", "offered": "#ffe082", "enabled": "#fff3c4"}
_DONE_FILL = "#d9d9d9"
_PATH = "#1565c0"
_MARKED_FILL = "#ff8f00"


def _decoration(glyph: str, tooltip: str) -> str:
    return (f'<TD BGCOLOR="#f4f4f4" WIDTH="16" TOOLTIP="{_html(tooltip)}">'
            f'<FONT POINT-SIZE="13">{_html(glyph)}</FONT></TD>')


def _task_node(net: NetSpec, task: TaskSpec, incoming: int, node: str, overlay: Overlay | None) -> str:
    """One task's DOT statement: a box with its join and split cells, in YAWL notation."""
    cells: list[str] = []
    if incoming > 1 or task.join != JoinSpec():
        cells.append(_decoration(_join_glyph(task.join, incoming), f"join: {_join_text(task.join)}"))
        cells.append("<VR/>")
    body = f"<B>{_html(task.name)}</B>"
    small = _task_details(task)
    _, whole = _cancel_targets(net, task)
    if whole:
        small.append("cancels: case")
    status: list[str] = []
    fill = _FILL_OFFERED_TASK if task.external else (_FILL_AUTO if task.run is not None or task.net else _FILL_ROUTING)
    pen = "1"
    if overlay is not None:
        live = overlay.live.get(task.name, {})
        done = overlay.done.get(task.name, 0)
        for state in ("started", "offered", "enabled"):
            if live.get(state):
                status.append(f"{state} {_TIMES}{live[state]}")
        if done:
            status.append(f"completed {_TIMES}{done}")
        for state in ("started", "offered", "enabled"):
            if live.get(state):
                fill, pen = _LIVE_FILL[state], "2.5"
                break
        else:
            if done:
                fill = _DONE_FILL
    for line in small:
        body += f'<BR/><FONT POINT-SIZE="9" COLOR="#444444">{_html(line)}</FONT>'
    for line in status:
        body += f'<BR/><FONT POINT-SIZE="9" COLOR="#0d47a1"><I>{_html(line)}</I></FONT>'
    cells.append(f"<TD>{body}</TD>")
    if len(task.flows) > 1 or task.split != SplitSpec():
        cells.append("<VR/>")
        cells.append(_decoration(_split_glyph(task.split), f"split: {_split_text(task.split)}"))
    label = ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4"><TR>'
             + "".join(cells) + "</TR></TABLE>>")
    shape = "box3d" if task.instances is not None else "box"
    attrs = [f"shape={shape}", "style=filled", f'fillcolor="{fill}"', "margin=0", f"penwidth={pen}"]
    if task.net is not None:
        attrs.append("peripheries=2")
    tooltip = _task_lines(task, incoming)
    attrs.append(f'tooltip="{_dot_text(" | ".join(tooltip))}"')
    return f"{node} [{', '.join(attrs)}, label={label}];"


def _condition_node(net: NetSpec, name: str, node: str, overlay: Overlay | None) -> str:
    """One condition's DOT statement: a small circle named beside it, holding its tokens."""
    glyph, color = ("", "black")
    if name == net.input:
        glyph, color = "▶", "#2e7d32"
    elif name == net.output:
        glyph, color = "■", "#c62828"
    attrs = ["shape=circle", "fixedsize=true", "width=0.42", "fontsize=10", f'xlabel="{_dot_text(name)}"']
    tokens = overlay.tokens.get(name, 0) if overlay is not None else 0
    if tokens:
        text = "●" if tokens == 1 else f"●{tokens}"
        attrs += [f'label="{_dot_text(text)}"', "style=filled", f'fillcolor="{_MARKED_FILL}"', "penwidth=2",
                  f'tooltip="{_dot_text(name)}: {tokens} token{"s" * (tokens != 1)}"']
    else:
        attrs.append(f'label=<<FONT POINT-SIZE="16" COLOR="{color}">{glyph}</FONT>>' if glyph else 'label=""')
    if name in (net.input, net.output):
        attrs.append(f'color="{color}"')
    return f"{node} [{', '.join(attrs)}];"


def _visited(net: NetSpec, overlay: Overlay) -> set[str]:
    """Elements a case has been through: tasks that completed or have live items, marked places,
    and the explicit conditions between two visited tasks (the path taken)."""
    seen = {t for t, n in overlay.done.items() if n} | {t for t, c in overlay.live.items() if c}
    seen |= set(overlay.tokens)
    seen.add(net.input)
    if overlay.status == "completed":
        seen.add(net.output)
    for cond in net.conditions:
        if any(f.to in seen for f in cond.flows):
            seen.add(cond.name)
    return seen


def _dot_net(net: NetSpec, prefix: str, indent: str, overlay: Overlay | None = None) -> list[str]:
    ids: Callable[[str], str] = _Ids(net, prefix)
    out: list[str] = []
    incoming = _incoming(net)
    seen = _visited(net, overlay) if overlay is not None else set()
    for name in _conditions(net):
        out.append(indent + _condition_node(net, name, ids(name), overlay))
    for task in net.tasks:
        out.append(indent + _task_node(net, task, incoming.get(task.name, 0), ids(task.name), overlay))

    def edge(src: str, flow: FlowSpec, implicit: bool) -> str:
        attrs: list[str] = []
        label = _flow_label(flow)
        tokens = 0
        if overlay is not None and implicit:
            tokens = overlay.tokens.get(f"c{{{src}_{flow.to}}}", 0)
        if tokens:
            label = ("●" if tokens == 1 else f"●{tokens}") + (f" {label}" if label else "")
            attrs.append(f'fontcolor="{_MARKED_FILL}"')
        if label:
            attrs.append(f'label="{_dot_text(label)}"')
        if flow.default:
            attrs.append("arrowtail=odiamond, dir=both")
        if overlay is not None and src in seen and (flow.to in seen or tokens):
            attrs.append(f'color="{_PATH}", penwidth=2.2')
        body = f" [{', '.join(attrs)}]" if attrs else ""
        return f"{indent}{ids(src)} -> {ids(flow.to)}{body};"

    tasks = {t.name for t in net.tasks}
    for cond in net.conditions:
        out.extend(edge(cond.name, flow, False) for flow in cond.flows)
    for task in net.tasks:
        out.extend(edge(task.name, flow, flow.to in tasks) for flow in task.flows)
    for task in net.tasks:
        targets, _ = _cancel_targets(net, task)
        out.extend(f'{indent}{ids(task.name)} -> {ids(t)} [style=dashed, color="#c62828", fontcolor="#c62828", '
                   f'arrowhead=tee, constraint=false, label="cancels"];' for t in targets)
        out.extend(f'{indent}{ids(task.name)} -> {ids(t)} [style=dashed, color="#6a1b9a", fontcolor="#6a1b9a", '
                   f'constraint=false, label="completes"];' for t in task.completes)
        out.extend(f'{indent}{ids(m)} -> {ids(task.name)} [style=dotted, arrowhead=none, constraint=false, '
                   f'label="milestone"];' for m in task.milestone)
    notes: list[str] = []
    if net.termination != "explicit":
        notes.append(f"termination: {net.termination}")
    notes.extend(f"mutex {name}: " + "; ".join(", ".join(r) for r in regions) for name, regions in net.mutex.items())
    if notes:
        out.append(f'{indent}{prefix}notes [shape=note, fontsize=9, label="{_dot_text(chr(10).join(notes))}"];')
    return out


def to_dot(spec: Spec, net: str | None = None, *, overlay: Overlay | None = None) -> str:
    """Draw ``spec`` as a Graphviz digraph in YAWL notation (render it with ``dot -Tsvg``).

    Args:
        spec: a loaded spec.
        net: draw only this net; by default every net (several nets: one cluster each).
        overlay: a case of ``net`` to draw over it (:func:`overlay_of`): its tokens, its live
            items coloured by state, its completed tasks shaded, the path it took in blue.

    Returns:
        The DOT text, ending with a newline; the same spec always gives the same text.

    Raises:
        ValueError: ``net`` is not a net of ``spec``, or an overlay is given without one net.
    """
    nets = _select(spec, net)
    if overlay is not None and len(nets) != 1:
        raise ValueError("a case overlay needs the net it runs in (give net=...)")
    title = f"{spec.id}"
    if overlay is not None:
        title += (f" — case {overlay.case} ({overlay.status}{', suspended' if overlay.suspended else ''}): "
                  "● tokens, yellow offered, green started, grey completed, blue the path taken")
    out = [
        f'digraph "{_dot_text(spec.id)}" {{',
        "  rankdir=LR;",
        "  nodesep=0.35; ranksep=0.45;",
        f'  label="{_dot_text(title)}"; labelloc=t; fontname="DejaVu Sans"; fontsize=12;',
        '  node [fontname="DejaVu Sans", fontsize=11];',
        '  edge [fontname="DejaVu Sans", fontsize=9, arrowsize=0.7];',
    ]
    if len(nets) == 1:
        out.extend(_dot_net(nets[0], "", "  ", overlay))
    else:
        for i, one in enumerate(nets):
            name = f"net {one.name}" + (" (root)" if one.name == spec.root else "")
            out.append(f"  subgraph cluster_n{i} {{")
            out.append(f'    label="{_dot_text(name)}"; style=rounded; color="#9e9e9e";')
            out.extend(_dot_net(one, f"n{i}_", "    "))
            out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"
