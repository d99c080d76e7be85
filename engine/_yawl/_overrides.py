"""CEL overrides for a YAWL file: ``x.yawl.cel.yaml``, beside the file it completes.

Theory of operation. The importer translates the XPath/XQuery it can (``_xpath``); for the rest,
the author writes the CEL by hand in a side file, keyed by the ids of the YAWL file itself::

    flows:                       # flow predicates: source element id -> target element id -> CEL
      register:
        flight: want_flight && budget > 100
    tasks:                       # per task element id
      review:
        input: {paper: papers[0]}        # starting mappings: task parameter -> CEL over the net's data
        output: {score: score * 2}       # completed mappings: net variable -> CEL over the task's output
        timer: P3D                       # a timer whose duration YAWL reads from a net variable
        instances: {min: 1, max: 5, threshold: 3}
    nets:                        # the same, for one net only (when ids repeat across nets)
      make_trip:
        flows: {...}
        tasks: {...}

An override wins over the importer's own translation. Every entry must be used: one that names a
flow or task the file does not have is reported (with its line in the side file), so a typo
never silently leaves an expression untranslated.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._errors import Problem, SpecError
from .._spec._report import Marks, render_path
from .._spec._yaml import compose

__all__ = ("SUFFIX", "Overrides")

SUFFIX = ".cel.yaml"
"""A YAWL file's side file is its own name plus this suffix: ``orders.yawl.cel.yaml``."""

_TOP_KEYS = ("flows", "tasks", "nets")
_TASK_KEYS = ("input", "output", "timer", "instances")
_INSTANCE_KEYS = ("min", "max", "threshold")
_HINT = "see docs/yawl.md, 'CEL overrides': flows: {source: {target: CEL}}, tasks: {task: {input: {...}}}"


class Overrides:
    """The entries of one side file, looked up by net and element id, with their use tracked."""

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, source: str = "<overrides>", marks: Marks | None = None
    ) -> None:
        self.source = source
        self.marks = marks or Marks()
        self.problems: list[Problem] = []
        self.used: set[tuple[str | int, ...]] = set()
        self.data: dict[str, Any] = {}
        if data is not None:
            self._check(data)

    @classmethod
    def read(cls, path: Path, source: str) -> Overrides | None:
        """The side file at ``path``, or ``None`` when there is none.

        Raises:
            SpecError: the side file is not valid YAML or not in the format above.
        """
        if not path.is_file():
            return None
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(
                [Problem(source=source, path="$", message=f"cannot read the CEL overrides: {exc}")]
            ) from None
        data, marks, problems = compose(text, source)
        found = cls(data if data is not None else {}, source=source, marks=marks)
        found.problems[:0] = problems
        if found.problems:
            raise SpecError(found.problems)
        return found

    # -- checking the file's shape ----------------------------------------------------------------

    def _error(self, path: tuple[str | int, ...], message: str, hint: str = _HINT) -> None:
        line, column = self.marks.locate(path) or (None, None)
        self.problems.append(
            Problem(source=self.source, path=render_path(path), message=message, hint=hint, line=line, column=column)
        )

    def _check(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            self._error((), "the CEL overrides must be a mapping")
            return
        self._check_scope((), data, top=True)
        self.data = dict(data)

    def _check_scope(self, base: tuple[str | int, ...], data: Mapping[str, Any], *, top: bool) -> None:
        for key, value in data.items():
            here = (*base, key)
            if key not in (_TOP_KEYS if top else _TOP_KEYS[:2]):
                self._error(
                    here, f"unknown key {key!r}", f"use one of: {', '.join(_TOP_KEYS if top else _TOP_KEYS[:2])}"
                )
            elif not isinstance(value, Mapping):
                self._error(here, f"{key} must be a mapping")
            elif key == "nets":
                for net, scope in value.items():
                    if isinstance(scope, Mapping):
                        self._check_scope((*here, net), scope, top=False)
                    else:
                        self._error((*here, net), "a net's overrides must be a mapping of flows and tasks")
            elif key == "flows":
                for src, targets in value.items():
                    if not isinstance(targets, Mapping):
                        self._error(
                            (*here, src), "expected target element id: CEL", "e.g. flows: {register: {flight: ok}}"
                        )
                        continue
                    for dst, cel in targets.items():
                        if not isinstance(cel, str) or not cel.strip():
                            self._error((*here, src, dst), "expected a CEL expression (a string)")
            else:
                for task, body in value.items():
                    self._check_task((*here, task), body)

    def _check_task(self, here: tuple[str | int, ...], body: Any) -> None:
        if not isinstance(body, Mapping):
            self._error(here, "a task's overrides must be a mapping", f"keys: {', '.join(_TASK_KEYS)}")
            return
        for key, value in body.items():
            if key not in _TASK_KEYS:
                self._error((*here, key), f"unknown key {key!r}", f"use one of: {', '.join(_TASK_KEYS)}")
            elif key in ("input", "output"):
                if not isinstance(value, Mapping) or not all(isinstance(v, str) and v.strip() for v in value.values()):
                    self._error((*here, key), f"{key} must map names to CEL expressions (strings)")
            elif key == "timer":
                if not isinstance(value, str):
                    self._error((*here, key), "timer must be a duration, e.g. PT5M or 5m")
            elif (
                not isinstance(value, Mapping)
                or not set(value) <= set(_INSTANCE_KEYS)
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values())
            ):
                self._error((*here, key), "instances must map min, max, threshold to integers")

    # -- lookups --------------------------------------------------------------------------------

    def _scopes(self, net: str) -> list[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
        nets = self.data.get("nets")
        scopes: list[tuple[tuple[str | int, ...], Mapping[str, Any]]] = []
        if isinstance(nets, Mapping) and isinstance(nets.get(net), Mapping):
            scopes.append((("nets", net), nets[net]))
        scopes.append(((), self.data))
        return scopes

    def flow(self, net: str, source: str, target: str) -> str | None:
        """The CEL for the predicate of the flow ``source`` → ``target`` in ``net``, if given."""
        for base, scope in self._scopes(net):
            flows = scope.get("flows")
            if isinstance(flows, Mapping) and isinstance(flows.get(source), Mapping) and target in flows[source]:
                self.used.add((*base, "flows", source, target))
                value = flows[source][target]
                return value if isinstance(value, str) else None
        return None

    def task(self, net: str, task: str, key: str) -> Any:
        """The override ``key`` (input, output, timer, instances) of ``task`` in ``net``, if given."""
        for base, scope in self._scopes(net):
            tasks = scope.get("tasks")
            if isinstance(tasks, Mapping) and isinstance(tasks.get(task), Mapping) and key in tasks[task]:
                self.used.add((*base, "tasks", task, key))
                return tasks[task][key]
        return None

    def unused(self) -> list[Problem]:
        """A problem for each entry no flow or task of the file used (a typo, or a stale entry)."""
        out: list[Problem] = []

        def report(path: tuple[str | int, ...], what: str) -> None:
            line, column = self.marks.locate(path) or (None, None)
            out.append(
                Problem(
                    source=self.source,
                    path=render_path(path),
                    message=f"no {what} in the YAWL file",
                    hint="check the element ids (they are the YAWL file's id attributes), or remove it",
                    line=line,
                    column=column,
                )
            )

        def scope(base: tuple[str | int, ...], data: Mapping[str, Any]) -> None:
            flows = data.get("flows")
            if isinstance(flows, Mapping):
                for src, targets in flows.items():
                    for dst in targets if isinstance(targets, Mapping) else ():
                        if (*base, "flows", src, dst) not in self.used:
                            report((*base, "flows", src, dst), f"flow {src!r} -> {dst!r}")
            tasks = data.get("tasks")
            if isinstance(tasks, Mapping):
                for task, body in tasks.items():
                    for key in body if isinstance(body, Mapping) else ():
                        if (*base, "tasks", task, key) not in self.used:
                            report((*base, "tasks", task, key), f"task {task!r} with {key}")

        scope((), self.data)
        nets = self.data.get("nets")
        for net, body in nets.items() if isinstance(nets, Mapping) else ():
            if isinstance(body, Mapping):
                scope(("nets", net), body)
        return out
