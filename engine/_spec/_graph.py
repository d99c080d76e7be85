"""Whole-net checks over a best-effort model: names, flow targets, references, reachability.

Theory of operation: these checks need every element of a net (or every net) at once, so they
run after the walk in ``_validate`` has built the model. Per net:

1. Names: a task and a condition may not share a name; the input and output conditions differ.
2. Flows: each target must exist; nothing flows into the input condition; the output condition
   has no outgoing flows; a condition flows only into tasks (YAWL has no condition→condition
   arc). A target that does not exist is reported with the closest name, and *that* name is
   assumed for the graph below, so one typo gives one problem rather than a cascade of
   "unreachable" echoes.
3. References: ``cancels`` (an element, or the net itself: the whole case), ``completes``
   (multiple-instance tasks), ``milestone`` (conditions), ``net`` (a net of the spec), mutex
   regions (tasks).
4. Graph (skipped for nets the walker marked damaged): every task and explicit condition must be
   reachable from the input condition; with explicit termination the output condition must be
   too; a partial join's N may not exceed its number of incoming flows.

Problems are reported at the path where the author wrote the thing; ``FlowPaths`` maps each
model flow back to it (the walker drops unreadable flows, and it adds the implicit input flow).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ._model import NetSpec, Spec
from ._report import Path, Reporter

__all__ = ("FlowPaths", "check_nets")

FlowPaths = dict[tuple[str, str, str], tuple[Path, ...]]
"""(net, "tasks" or "conditions", owner) → the written path of each of the owner's model flows."""


def check_nets(spec: Spec, report: Reporter, damaged: set[str], flow_paths: FlowPaths) -> None:
    """Run the whole-net checks on every net of ``spec``, reporting to ``report``."""
    net_names = [net.name for net in spec.nets]
    for net in spec.nets:
        _NetCheck(net, net_names, report, flow_paths).run(graph=net.name not in damaged)


class _NetCheck:
    def __init__(self, net: NetSpec, net_names: list[str], report: Reporter, flow_paths: FlowPaths) -> None:
        self.net = net
        self.net_names = net_names
        self.report = report
        self.flow_paths = flow_paths
        self.base: Path = ("nets", net.name)
        self.tasks = {task.name: task for task in net.tasks}
        self.conditions = {net.input, net.output, *(c.name for c in net.conditions)} - {""}
        self.elements = sorted(self.conditions | set(self.tasks))
        self.edges: dict[str, list[str]] = {name: [] for name in self.elements}

    def run(self, *, graph: bool) -> None:
        self.names()
        self.flows()
        self.references()
        if graph and self.net.input and self.net.output:
            self.reachability()

    def names(self) -> None:
        net, base = self.net, self.base
        for cond in net.conditions:
            if cond.name in self.tasks and cond.name not in (net.input, net.output):
                self.report.error(
                    (*base, "conditions", cond.name),
                    f"{cond.name!r} is both a task and a condition",
                    "give them different names",
                )
        for key, name in (("input", net.input), ("output", net.output)):
            if name in self.tasks:
                self.report.error(
                    (*base, key),
                    f"the {key} condition {name!r} has the same name as a task",
                    "give them different names",
                )
        if net.input and net.input == net.output:
            self.report.error(
                (*base, "output"),
                f"the input and output conditions are the same ({net.input!r})",
                "give the output condition its own name, e.g. end",
            )

    def flow_path(self, kind: str, owner: str, index: int) -> Path:
        written = self.flow_paths.get((self.net.name, kind, owner))
        if written is not None and index < len(written):
            return written[index]
        return (*self.base, kind, owner, "flows", index)

    def target(self, path: Path, name: str) -> tuple[str | None, bool]:
        """Resolve a flow target: ``(name, True)``, or ``(closest guess or None, False)`` after reporting."""
        if name in self.edges:
            return name, True
        if not (self.net.input and self.net.output):
            return None, False  # it may be the condition whose name is missing: that is reported
        hint = f"a flow names a task, a condition, or the output condition {self.net.output!r}"
        guess = self.report.missing_name(path, "task or condition", name, self.elements, hint)
        return guess, False

    def flows(self) -> None:
        net = self.net
        for cond in net.conditions:
            if cond.name == net.output and cond.flows:
                self.report.error(
                    (*self.base, "conditions", cond.name, "flows"),
                    f"the output condition {cond.name!r} has outgoing flows",
                    "the case ends when it is marked; remove these flows",
                )
                continue
            for i, flow in enumerate(cond.flows):
                path = self.flow_path("conditions", cond.name, i)
                to, exists = self.target(path, flow.to)
                if exists and to in self.conditions and to not in self.tasks:
                    if to == net.input:
                        self.into_input(path)
                        continue
                    self.report.error(
                        path,
                        f"a condition flows only into tasks, and {to!r} is a condition",
                        f"put a task between {cond.name!r} and {to!r}",
                    )
                if to is not None and cond.name in self.edges:  # kept: no echoes downstream
                    self.edges[cond.name].append(to)
        for task in net.tasks:
            for i, flow in enumerate(task.flows):
                path = self.flow_path("tasks", task.name, i)
                to, exists = self.target(path, flow.to)
                if exists and to == net.input and to not in self.tasks:
                    self.into_input(path)
                elif to is not None:
                    self.edges[task.name].append(to)

    def into_input(self, path: Path) -> None:
        self.report.error(
            path,
            f"a flow into the input condition {self.net.input!r}",
            "the input condition only starts the case; flow into a task, or an explicit condition",
        )

    def references(self) -> None:
        net, base = self.net, self.base
        tasks = list(self.tasks)
        for task in net.tasks:
            here: Path = (*base, "tasks", task.name)
            for i, name in enumerate(task.cancels):
                if name not in self.edges and name != net.name:
                    hint = f"cancels names tasks and conditions of this net, or the net itself ({net.name!r})"
                    self.missing((*here, "cancels", i), "task or condition", name, self.elements, hint)
            for i, name in enumerate(task.completes):
                path = (*here, "completes", i)
                done = self.tasks.get(name)
                if done is None:
                    self.missing(path, "task", name, tasks, "completes names multiple-instance tasks")
                elif done.instances is None:
                    self.report.error(
                        path,
                        f"{name!r} is not a multiple-instance task",
                        "completes names tasks with instances:",
                    )
            for i, name in enumerate(task.milestone):
                path = (*here, "milestone", i)
                if name in self.tasks and name not in self.conditions:
                    self.report.error(
                        path, f"milestone names conditions, and {name!r} is a task", "name a condition"
                    )
                elif name not in self.conditions:
                    self.missing(
                        path, "condition", name, sorted(self.conditions), "milestone names conditions"
                    )
            if task.net is not None and task.net not in self.net_names:
                hint = f"nets: {', '.join(self.net_names)}"
                self.missing((*here, "net"), "net", task.net, self.net_names, hint)
        for mutex, regions in net.mutex.items():
            for i, region in enumerate(regions):
                for name in region:
                    if name not in self.tasks:
                        hint = "a mutex region is a task or a list of tasks"
                        self.missing((*base, "mutex", mutex, i), "task", name, tasks, hint)

    def missing(self, path: Path, what: str, name: str, candidates: Iterable[str], hint: str) -> None:
        self.report.missing_name(path, what, name, list(candidates), hint)

    def reachability(self) -> None:
        net, base = self.net, self.base
        reached = {net.input}
        queue = deque([net.input])
        incoming: dict[str, int] = {}
        while queue:
            for to in self.edges.get(queue.popleft(), ()):
                if to not in reached:
                    reached.add(to)
                    queue.append(to)
        for targets in self.edges.values():
            for to in targets:
                incoming[to] = incoming.get(to, 0) + 1
        for task in net.tasks:
            here: Path = (*base, "tasks", task.name)
            if task.name not in reached:
                self.report.error(
                    here,
                    f"task {task.name!r} cannot be reached from the input condition {net.input!r}",
                    "add a flow into it, or remove it",
                )
            n, m = task.join.n, incoming.get(task.name, 0)
            if task.join.kind == "partial" and n is not None and m and n > m:
                self.report.error(
                    (*here, "join", "partial"),
                    f"partial join needs 1 <= N <= {m} (its incoming flows), got N={n}",
                    f"lower partial to at most {m}, or add flows into {task.name!r}",
                )
        for cond in net.conditions:
            if cond.name not in reached and cond.name != net.output and cond.name not in self.tasks:
                self.report.error(
                    (*base, "conditions", cond.name),
                    f"condition {cond.name!r} cannot be reached from the input condition {net.input!r}",
                    "add a flow into it, or remove it",
                )
        if net.termination == "explicit" and net.output not in reached:
            self.report.error(
                base,
                f"no path from the input condition {net.input!r} to the output condition {net.output!r}",
                "add flows that lead to the output condition, or set termination: implicit",
            )
