"""YAWL specification XML (schema Beta 2 to 4.0) to a yawlflow :class:`Spec`.

Theory of operation. The file is parsed by the hardened entry point (:mod:`yawlflow._xml`),
then read into the *plain data* of a YAML spec (``{"yawlflow": 1, "nets": {...}}``) while
recording, for each spec path, the line of the XML element it came from. That data goes through
the same :func:`~yawlflow._spec._validate.validate` as a hand-written spec, so an imported spec
validates exactly like one, and its problems point at the YAWL file's lines.

The mapping (docs/yawl.md has the table):

* ``specificationSet/specification`` (one per file): ``uri`` is the spec id; each
  ``NetFactsType`` decomposition (or Beta 2 ``rootNet``) is a net, in document order, its id
  made an NCName if it is not one (``make record`` → ``make_record``, with a note); ``<layout>``
  is ignored.
* ``inputCondition``, ``condition``, ``outputCondition`` and ``task`` keep their ids; a
  condition's ``flowsInto`` are its flows (a deferred choice when there are several).
* ``join``/``split`` codes are copied. Splits: AND takes every flow (predicates are ignored, as
  YAWL does); XOR tries the predicates by ``ordering`` and takes the default flow (whose
  predicate YAWL never evaluates) when none holds; OR takes every true flow, and its default flow
  when it holds *or* no other flow did: ``when: P || !(Q1 || Q2)``, or just ``default: true``
  when P is ``false()``/absent, or a plain flow when P is ``true()``.
* ``decomposesTo`` a net: a composite task (``net:``). A web-service gateway decomposition:
  with a ``codelet``, an auto task ``run: <codelet>`` (a handler registered under the codelet's
  name); automated without one, a routing task (it completes at once, as YAWL's resource service
  does); otherwise (manual, a worklist, or a custom ``yawlService``, which completes the item
  through YAWL's Interface B) an offered item, ``external: true``. No decomposition: a routing
  task.
* ``removesTokens`` → ``cancels``; ``removesTokensFromFlow`` names the implicit condition
  ``c{src_dst}`` between two tasks, which is then made explicit so that it can be cancelled.
* Multiple instances: ``minimum``/``maximum`` (2147483647: no maximum), ``threshold`` (below the
  maximum: ``join: threshold`` with ``cancel_rest``, as YAWL withdraws the rest), ``creationMode``.
  YAWL makes one instance per element of the split query; that query is not carried over (a
  note), so a case makes ``min`` instances unless the side file says otherwise.
* ``timer`` with a ``duration`` (or ``durationparams``) → ``timer: {after: ...}``.
* Predicates and mappings go through :mod:`._xpath`. A predicate, ``netparam`` timer or MI bound
  that cannot be translated is an error (the choice it makes cannot be guessed) unless the side
  file (:mod:`._overrides`) supplies it; a mapping that cannot be translated is left out, with a
  note, and the side file can supply it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any
from xml.etree.ElementTree import Element

from .._errors import Problem, SpecError
from .._spec._report import Marks, Path, Reporter, render_path
from .._spec._validate import validate
from .._xml import DEFAULT_LIMITS, Node, XmlError, XmlLimits, local_name, parse
from ._overrides import SUFFIX, Overrides
from ._types import Variable, YawlImport, kind_of
from ._xpath import Untranslatable, predicate_to_cel, query_to_cel

__all__ = ("NAMESPACES", "read_yawl")

NAMESPACES = (
    "http://www.yawlfoundation.org/yawlschema",
    "http://www.citi.qut.edu.au/yawl",
    "http://www.yawl.fit.qut.edu.au/",
)
"""Every namespace YAWL specifications were written in (2.0 and later, Beta, 2006-07 Beta)."""

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_UNBOUNDED = 2_147_483_647
_NCNAME = re.compile(r"[A-Za-z_][\w.\-]*\Z")
_ISO_UNITS = {
    "MSEC": ("S", 0.001),
    "SEC": ("S", 1),
    "MIN": ("M", 1),
    "HOUR": ("H", 1),
    "DAY": ("D", 1),
    "WEEK": ("W", 1),
}
_SIDE_FILE_HINT = "supply it in {side}: {key}"


@dataclass
class _Decomposition:
    id: str
    kind: str  # "net" or "gateway"
    node: Node
    variables: list[Variable] = field(default_factory=list)
    net_name: str = ""


class _Reader:
    """Reads one specification into plain spec data, marks, problems and notes."""

    def __init__(self, source: str, overrides: Overrides | None, side: str) -> None:
        self.source = source
        self.overrides = overrides or Overrides()
        self.side = side
        self.marks = Marks()
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []
        self.decompositions: dict[str, _Decomposition] = {}
        self.outputs: dict[str, dict[str, dict[str, Any]]] = {}

    # -- reporting ------------------------------------------------------------------------------

    def _problem(self, node: Node | None, path: Path, message: str, hint: str) -> Problem:
        return Problem(
            source=self.source,
            path=render_path(path),
            message=message,
            hint=hint,
            line=node.line if node is not None else None,
            column=node.column if node is not None else None,
        )

    def error(self, node: Node | None, path: Path, message: str, hint: str = "") -> None:
        self.problems.append(self._problem(node, path, message, hint))

    def note(self, node: Node | None, path: Path, message: str, hint: str = "") -> None:
        self.notes.append(self._problem(node, path, message, hint))

    def mark(self, path: Path, node: Node | None) -> None:
        if node is not None and node.line:
            self.marks.values.setdefault(path, (node.line, node.column))

    def side_hint(self, key: str) -> str:
        return _SIDE_FILE_HINT.format(side=self.side, key=key)

    # -- the document -----------------------------------------------------------------------------

    def read(self, root: Node) -> tuple[dict[str, Any], str, str, dict[str, Any], dict[str, tuple[Variable, ...]]]:
        namespace = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
        if local_name(root.tag) != "specificationSet":
            self.error(
                root,
                (),
                f"the root element is <{local_name(root.tag)}>, not a YAWL <specificationSet>",
                "a YAWL specification file starts with <specificationSet>; is this the file you meant?",
            )
            raise SpecError(self.problems)
        if namespace not in NAMESPACES:
            self.error(
                root, (), f"unknown YAWL namespace {namespace!r}", f"YAWL files use one of: {', '.join(NAMESPACES)}"
            )
            raise SpecError(self.problems)
        version = root.get("version") or "Beta 2"
        specs = list(_children(root, "specification"))
        if len(specs) != 1:
            self.error(
                root,
                (),
                f"the specification set holds {len(specs)} specifications",
                "yawlflow imports one specification per file; save each in a file of its own",
            )
            raise SpecError(self.problems)
        spec = specs[0]
        spec_id = spec.get("uri") or "yawl"
        root_net = self.collect(spec)
        nets: dict[str, Any] = {}
        variables: dict[str, tuple[Variable, ...]] = {}
        for dec in self.decompositions.values():
            if dec.kind == "net":
                nets[dec.net_name] = self.net(dec)
                variables[dec.net_name] = tuple(dec.variables)
        data: dict[str, Any] = {"yawlflow": 1, "id": spec_id, "nets": nets}
        if root_net is not None:
            data["root"] = root_net.net_name
            self.mark(("root",), root_net.node)
        elif nets:
            self.error(spec, ("root",), "no root net", 'mark one net decomposition isRootNet="true"')
        start = {v.name: v.value() for v in root_net.variables if v.role != "enablement"} if root_net else {}
        for problem in self.overrides.unused():
            self.problems.append(problem)
        return data, version, namespace, start, variables

    def collect(self, spec: Node) -> _Decomposition | None:
        """Index every decomposition; name the nets; return the root net."""
        root: _Decomposition | None = None
        used: set[str] = set()
        for child in _children(spec, "rootNet", "decomposition"):
            tag = local_name(child.tag)
            if tag not in ("rootNet", "decomposition"):
                continue
            dec_id = child.get("id") or ""
            xsi = (child.get(_XSI_TYPE) or "").rpartition(":")[2]
            kind = "net" if tag == "rootNet" or xsi == "NetFactsType" else "gateway"
            if not dec_id:
                self.error(child, (), f"a <{tag}> without an id", "give it an id attribute")
                continue
            if dec_id in self.decompositions:
                self.error(
                    child, (), f"a second decomposition with id {dec_id!r}", "decomposition ids are unique in a file"
                )
                continue
            dec = _Decomposition(id=dec_id, kind=kind, node=child, variables=list(self.variables(child)))
            if kind == "net":
                name = dec_id if _NCNAME.match(dec_id) else re.sub(r"[^\w.\-]", "_", dec_id)
                if not _NCNAME.match(name):
                    name = "_" + name
                base, n = name, 2
                while name in used:
                    name, n = f"{base}_{n}", n + 1
                used.add(name)
                dec.net_name = name
                if name != dec_id:
                    self.note(child, ("nets", name), f"net id {dec_id!r} is not an XML name; imported as {name!r}")
                if tag == "rootNet" or child.get("isRootNet") == "true":
                    root = dec
            self.decompositions[dec_id] = dec
        return root

    def variables(self, dec: Node) -> Iterator[Variable]:
        roles = {
            "inputParam": "input",
            "outputParam": "output",
            "localVariable": "local",
            "enablementParam": "enablement",
        }
        for child in dec:
            role = roles.get(local_name(child.tag))
            if role is None:
                continue
            fields = {local_name(c.tag): c for c in child}
            name = child.get("name") or _text(fields.get("name")) or _text(fields.get("element"))
            if not name:
                continue
            type_name = _text(fields.get("type")) or None
            namespace = _text(fields.get("namespace")) or None
            initial_node = fields.get("initialValue", fields.get("defaultValue"))
            initial = initial_node.text if initial_node is not None and initial_node.text is not None else None
            yield Variable(
                name=name, role=role, type_name=type_name, kind=kind_of(type_name, namespace), initial=initial
            )

    # -- nets -------------------------------------------------------------------------------------

    def net(self, dec: _Decomposition) -> dict[str, Any]:
        name = dec.net_name
        base: Path = ("nets", name)
        self.mark(base, dec.node)
        pce = _child(dec.node, "processControlElements")
        if pce is None:
            self.error(
                dec.node, base, f"net {dec.id!r} has no <processControlElements>", "add its conditions and tasks"
            )
            return {}
        kinds: dict[str, str] = {v.name: v.kind for v in dec.variables if v.kind is not None}
        elements = [c for c in pce if isinstance(c, Node)]
        inputs = [e for e in elements if local_name(e.tag) == "inputCondition"]
        outputs = [e for e in elements if local_name(e.tag) == "outputCondition"]
        body: dict[str, Any] = {}
        for key, found in (("input", inputs), ("output", outputs)):
            if len(found) != 1:
                self.error(
                    pce, (*base, key), f"the net has {len(found)} <{key}Condition> elements", "a net has exactly one"
                )
            else:
                body[key] = found[0].get("id") or ""
                self.mark((*base, key), found[0])
        tasks = [e for e in elements if local_name(e.tag) == "task"]
        task_ids = {t.get("id") or "" for t in tasks}
        explicit = self.flow_cancellations(tasks, task_ids)
        conditions: dict[str, Any] = {}
        for element in elements:
            tag = local_name(element.tag)
            if tag not in ("inputCondition", "condition"):
                continue
            cid = element.get("id") or ""
            here: Path = (*base, "conditions", cid)
            self.mark(here, element)
            flows = []
            for i, flow in enumerate(_children(element, "flowsInto")):
                target = _flow_target(flow)
                self.mark((*here, "flows", i), flow)
                flows.append(target)
            conditions[cid] = {"flows": flows} if flows else None
        for (_src, dst), cname in explicit.items():
            conditions[cname] = {"flows": [dst]}
        if conditions:
            body["conditions"] = conditions
        body["tasks"] = {}
        for task in tasks:
            tid = task.get("id") or ""
            if tid in body["tasks"]:
                self.error(
                    task, (*base, "tasks", tid), f"a second element with id {tid!r}", "element ids are unique in a net"
                )
                continue
            body["tasks"][tid] = self.task(dec, task, tid, kinds, explicit)
        return body

    def flow_cancellations(self, tasks: list[Node], task_ids: set[str]) -> dict[tuple[str, str], str]:
        """The task→task flows some ``removesTokensFromFlow`` names: their conditions become explicit."""
        flows = {(t.get("id") or "", _flow_target(f)) for t in tasks for f in _children(t, "flowsInto")}
        out: dict[tuple[str, str], str] = {}
        for task in tasks:
            for rtf in _children(task, "removesTokensFromFlow"):
                src = _ref(rtf, "flowSource")
                dst = _ref(rtf, "flowDestination")
                if (src, dst) in flows and dst in task_ids:
                    out[(src, dst)] = f"c{{{src}_{dst}}}"
        return out

    # -- tasks ------------------------------------------------------------------------------------

    def task(
        self, dec: _Decomposition, node: Node, tid: str, kinds: dict[str, str], explicit: dict[tuple[str, str], str]
    ) -> dict[str, Any]:
        net = dec.net_name
        here: Path = ("nets", net, "tasks", tid)
        self.mark(here, node)
        out: dict[str, Any] = {}
        join = _child(node, "join")
        split = _child(node, "split")
        join_code = ((join.get("code") if join is not None else None) or "xor").lower()
        split_code = ((split.get("code") if split is not None else None) or "and").lower()
        for key, element, code in (("join", join, join_code), ("split", split, split_code)):
            self.mark((*here, key), element)
            if element is None:
                self.error(node, (*here, key), f"task {tid!r} has no <{key}>", f'add <{key} code="xor"/> (or and, or)')
            elif code not in ("and", "or", "xor"):
                self.error(element, (*here, key), f"unknown {key} code {code!r}", "use and, or, xor")
            else:
                out[key] = code
        out["flows"] = self.split_flows(dec, node, tid, split_code, kinds, explicit)
        self.kind(dec, node, tid, out)
        cancels: list[str] = []
        for removes in _children(node, "removesTokens"):
            self.mark((*here, "cancels", len(cancels)), removes)
            cancels.append(removes.get("id") or "")
        for rtf in _children(node, "removesTokensFromFlow"):
            src = _ref(rtf, "flowSource")
            dst = _ref(rtf, "flowDestination")
            cname = explicit.get((src, dst))
            if cname is None:
                self.note(
                    rtf,
                    (*here, "cancels"),
                    f"removesTokensFromFlow names no task->task flow {src!r} -> {dst!r}; ignored, as YAWL does",
                )
                continue
            self.mark((*here, "cancels", len(cancels)), rtf)
            cancels.append(cname)
        if cancels:
            out["cancels"] = cancels
        self.instances(node, here, tid, net, out)
        self.timer(node, here, tid, net, out)
        return out

    def kind(self, dec: _Decomposition, node: Node, tid: str, out: dict[str, Any]) -> None:
        """What the task does: composite, handler, offered item, or routing; and its mappings."""
        net = dec.net_name
        here: Path = ("nets", net, "tasks", tid)
        ref = _child(node, "decomposesTo")
        if ref is None:
            for mappings in ("startingMappings", "completedMappings"):
                if _child(node, mappings) is not None:
                    self.note(_child(node, mappings), here, f"{mappings} on a task with no decomposition are ignored")
            return
        self.mark((*here, "net"), ref)
        target = self.decompositions.get(ref.get("id") or "")
        if target is None:
            self.error(
                ref,
                (*here, "net"),
                f"decomposesTo names no decomposition {ref.get('id')!r}",
                f"decompositions: {', '.join(sorted(self.decompositions)) or '(none)'}",
            )
            return
        routing = False
        if target.kind == "net":
            out["net"] = target.net_name
        else:
            codelet = _text(_child(target.node, "codelet"))
            interaction = _text(_child(target.node, "externalInteraction"))
            service = _child(target.node, "yawlService")
            if codelet:
                out["run"] = codelet
            elif interaction == "automated" and service is None:
                routing = True
            else:
                out["external"] = True
            if not routing:
                self.outputs.setdefault(net, {})[tid] = {
                    v.name: v.value() for v in target.variables if v.role == "output"
                }
        self.mappings(dec, target, node, tid, out)
        if routing and not out.get("input") and not out.get("output"):
            out.pop("input", None)
            out.pop("output", None)

    def mappings(self, dec: _Decomposition, target: _Decomposition, node: Node, tid: str, out: dict[str, Any]) -> None:
        net = dec.net_name
        here: Path = ("nets", net, "tasks", tid)
        net_kinds = {v.name: v.kind for v in dec.variables if v.kind is not None}
        task_kinds = {v.name: v.kind for v in target.variables if v.kind is not None}
        mi_input = _text(_child(_child(node, "miDataInput"), "formalInputParam"))
        mi_output = _child(_child(node, "miDataOutput"), "formalOutputExpression")
        mi_output_query = mi_output.get("query") if mi_output is not None else None
        for direction, element_name in (("input", "startingMappings"), ("output", "completedMappings")):
            found: dict[str, str] = {}
            container = _child(node, element_name)
            self.mark((*here, direction), container)
            for mapping in _children(container, "mapping") if container is not None else ():
                expression = _child(mapping, "expression")
                query = expression.get("query") if expression is not None else None
                key = _text(_child(mapping, "mapsTo"))
                if not key or query is None:
                    self.note(mapping, (*here, direction), "a mapping without a query or a mapsTo is ignored")
                    continue
                path: Path = (*here, direction, key)
                self.mark(path, mapping)
                if direction == "input" and key == mi_input:
                    self.note(
                        mapping,
                        path,
                        f"the multiple-instance data split ({query!r}) is not carried over",
                        "each instance's input holds item; set instances: {items: ...} in a YAML spec",
                    )
                    continue
                if direction == "output" and query == mi_output_query:
                    self.note(
                        mapping, path, f"the multiple-instance output aggregation into {key!r} is not carried over"
                    )
                    continue
                if direction == "input":
                    kind, kinds = task_kinds.get(key), net_kinds
                else:
                    kind, kinds = net_kinds.get(key), task_kinds
                try:
                    found[key] = query_to_cel(query, kind, kinds)
                except Untranslatable as exc:
                    self.note(
                        mapping,
                        path,
                        f"mapping to {key!r}: XQuery {query!r} has no CEL translation ({exc.reason}); left out",
                        self.side_hint(f"tasks: {{{tid}: {{{direction}: {{{key}: <CEL>}}}}}}"),
                    )
            override = self.overrides.task(net, tid, direction)
            if isinstance(override, dict):
                found.update({str(k): str(v) for k, v in override.items()})
            out[direction] = found
        if _child(node, "enablementMappings") is not None:
            self.note(
                _child(node, "enablementMappings"), here, "enablementMappings (resource allocation data) are ignored"
            )

    # -- splits and predicates --------------------------------------------------------------------

    def split_flows(
        self,
        dec: _Decomposition,
        node: Node,
        tid: str,
        code: str,
        kinds: dict[str, str],
        explicit: dict[tuple[str, str], str],
    ) -> list[Any]:
        net = dec.net_name
        here: Path = ("nets", net, "tasks", tid)
        raw = []
        for i, flow in enumerate(_children(node, "flowsInto")):
            target = _flow_target(flow)
            predicate = _child(flow, "predicate")
            ordering = predicate.get("ordering") if predicate is not None else None
            order: int | None = None
            if ordering is not None:
                try:
                    order = int(ordering.strip())
                except ValueError:
                    self.error(
                        predicate,
                        (*here, "flows", i, "order"),
                        f"ordering {ordering!r} is not an integer",
                        'write ordering="1"',
                    )
            text = predicate.text.strip() if predicate is not None and predicate.text else None
            raw.append((i, flow, target, predicate, text, order, _child(flow, "isDefaultFlow") is not None))
        flows: list[Any] = []
        translated: dict[int, str | None] = {}
        overridden: set[int] = set()
        if code in ("xor", "or") and len(raw) > 1:
            for i, _flow, target, predicate, text, _order, default in raw:
                if default and code == "xor":
                    continue
                if self.overrides.flow(net, tid, target) is not None:
                    overridden.add(i)
                translated[i] = self.predicate(net, tid, target, predicate, text, (*here, "flows", i, "when"), kinds)
        elif code == "and" and any(r[4] not in (None, "true()") for r in raw):
            self.note(node, (*here, "split"), "predicates on an AND split are ignored (as YAWL does)")
        for i, flow, target, _predicate, _text, order, default in raw:
            to = explicit.get((tid, target), target)
            self.mark((*here, "flows", i), flow)
            if code not in ("xor", "or") or len(raw) == 1:
                flows.append(to)
                continue
            entry: dict[str, Any] = {"to": to}
            when = translated.get(i)
            if code == "or" and default:
                if when in (None, "false"):
                    entry["default"] = True
                    when = None
                elif when != "true":
                    when = self.or_default(i, raw, translated, overridden, kinds)
            elif default:
                entry["default"] = True
                when = None
            if when is not None and when != "true":
                entry["when"] = when
            if order is not None:
                entry["order"] = order
            flows.append(entry if len(entry) > 1 else to)
        return flows

    def or_default(
        self, i: int, raw: list[Any], translated: dict[int, str | None], overridden: set[int], kinds: dict[str, str]
    ) -> str | None:
        """An OR split's default flow: taken when its predicate holds, or when no other flow is."""
        others = [r for r in raw if r[0] != i]
        if any(translated.get(r[0]) in (None, "true") for r in others):
            return translated[i]  # another flow always fires (or failed to translate): no fallback
        if overridden & {i, *(r[0] for r in others)}:
            rest = " || ".join(f"({translated[r[0]]})" for r in others)
            return f"({translated[i]}) || !({rest})"
        text = next(r[4] for r in raw if r[0] == i)
        rest = " or ".join(f"({r[4]})" for r in others)
        return predicate_to_cel(f"({text}) or not({rest})", kinds)

    def predicate(
        self, net: str, tid: str, target: str, node: Node | None, text: str | None, path: Path, kinds: dict[str, str]
    ) -> str | None:
        override = self.overrides.flow(net, tid, target)
        if override is not None:
            return override
        if text is None:
            return None
        try:
            return predicate_to_cel(text, kinds)
        except Untranslatable as exc:
            self.error(
                node,
                path,
                f"flow {tid!r} -> {target!r}: XPath predicate {text!r} has no CEL translation ({exc.reason})",
                self.side_hint(f"flows: {{{tid}: {{{target}: <CEL>}}}}"),
            )
            return None

    # -- multiple instances and timers ------------------------------------------------------------

    def instances(self, node: Node, here: Path, tid: str, net: str, out: dict[str, Any]) -> None:
        minimum = _child(node, "minimum")
        if minimum is None:
            return
        self.mark((*here, "instances"), minimum)
        override = self.overrides.task(net, tid, "instances")
        values: dict[str, int | None] = {}
        for key in ("minimum", "maximum", "threshold"):
            element = _child(node, key)
            short = key[:3] if key != "threshold" else key
            if isinstance(override, dict) and short in override:
                values[key] = int(override[short])
                continue
            text = _text(element)
            if not re.fullmatch(r"\s*\d+\s*", text or ""):
                self.error(
                    element if element is not None else node,
                    (*here, "instances", short),
                    f"multiple-instance {key} {text!r} is not an integer, and no other form is translated",
                    self.side_hint(f"tasks: {{{tid}: {{instances: {{{short}: N}}}}}}"),
                )
                values[key] = None
                continue
            values[key] = int(text.strip())
        spec: dict[str, Any] = {}
        low, high, threshold = values.get("minimum"), values.get("maximum"), values.get("threshold")
        if low is not None:
            spec["min"] = low
        if high is not None and high < _UNBOUNDED:
            spec["max"] = high
        bound = high if high is not None and high < _UNBOUNDED else _UNBOUNDED
        if threshold is not None and threshold < bound:
            spec.update(threshold=threshold, join="threshold", cancel_rest=True)
        mode = _child(node, "creationMode")
        if mode is not None and (mode.get("code") or "").lower() == "dynamic":
            spec["creation"] = "dynamic"
        if _child(node, "miDataInput") is not None and _child(node, "startingMappings") is None:
            self.note(
                _child(node, "miDataInput"),
                (*here, "instances"),
                "the multiple-instance data split is not carried over",
            )
        out["instances"] = spec

    def timer(self, node: Node, here: Path, tid: str, net: str, out: dict[str, Any]) -> None:
        timer = _child(node, "timer")
        override = self.overrides.task(net, tid, "timer")
        if override is not None:
            out["timer"] = {"after": str(override)}
            return
        if timer is None:
            return
        path = (*here, "timer")
        self.mark(path, timer)
        duration = _text(_child(timer, "duration"))
        params = _child(timer, "durationparams")
        trigger = _text(_child(timer, "trigger"))
        if duration:
            out["timer"] = {"after": duration}
        elif params is not None:
            ticks = _text(_child(params, "ticks"))
            interval = _text(_child(params, "interval")).upper()
            unit = _ISO_UNITS.get(interval)
            if unit is None or not ticks.isdigit():
                self.error(
                    params,
                    path,
                    f"timer of {ticks} {interval} has no fixed length",
                    self.side_hint(f"tasks: {{{tid}: {{timer: <duration>}}}}"),
                )
                return
            letter, scale = unit
            amount = int(ticks) * scale
            number = f"{amount:g}" if isinstance(amount, float) else str(amount)
            out["timer"] = {"after": f"P{number}{letter}" if letter in ("D", "W") else f"PT{number}{letter}"}
        else:
            what = "a net variable's value" if _child(timer, "netparam") is not None else "an expiry date"
            self.error(
                timer,
                path,
                f"the timer of task {tid!r} takes its duration from {what}, known only at run time",
                self.side_hint(f"tasks: {{{tid}: {{timer: <duration>}}}}"),
            )
            return
        if trigger == "OnExecuting":
            self.note(timer, path, "the timer starts when the item is offered, not when it starts (OnExecuting)")


def _child(node: Node | None, name: str) -> Node | None:
    if node is None:
        return None
    for child in node:
        if local_name(child.tag) == name and isinstance(child, Node):
            return child
    return None


def _children(node: Node, *names: str) -> Iterator[Node]:
    for child in node:
        if local_name(child.tag) in names and isinstance(child, Node):
            yield child


def _text(node: Element | None) -> str:
    return (node.text or "").strip() if node is not None else ""


def _ref(node: Node, name: str) -> str:
    child = _child(node, name)
    return (child.get("id") or "") if child is not None else ""


def _flow_target(flow: Node) -> str:
    ref = _child(flow, "nextElementRef")
    return (ref.get("id") or "") if ref is not None else ""


def read_yawl(
    data: bytes,
    *,
    source: str,
    overrides: Overrides | None = None,
    side: str = "the side file",
    limits: XmlLimits = DEFAULT_LIMITS,
) -> YawlImport:
    """Read YAWL specification XML into a validated :class:`YawlImport`.

    Args:
        data: the file's bytes.
        source: its name, for messages and ``Spec.source``.
        overrides: CEL for what cannot be translated (the side file), if any.
        side: the side file's name, for hints.
        limits: the XML caps.

    Returns:
        The spec and what YAWL declares besides it.

    Raises:
        SpecError: the XML is unsafe or malformed; it is not a YAWL specification; a predicate,
            ``netparam`` timer or MI bound has no CEL translation and no override; or the spec it
            describes is invalid. ``problems`` lists each, located at its line in the file.
    """
    try:
        root = parse(data, source=source, limits=limits)
    except XmlError as exc:
        raise SpecError([exc.problem]) from None
    reader = _Reader(source, overrides, side)
    body, version, namespace, start, variables = reader.read(root)
    report = Reporter(source, reader.marks)
    report.problems.extend(reader.problems)
    if reader.problems:
        # validate still runs: it adds the spec's own problems, located, to the importer's
        try:
            validate(body, report)
        except SpecError as exc:
            raise SpecError(exc.problems) from None
        raise SpecError(report.sorted_problems())  # pragma: no cover - validate raised above
    spec = validate(body, report)
    return YawlImport(
        spec=spec,
        version=version,
        namespace=namespace,
        start_data=start,
        outputs=reader.outputs,
        variables=variables,
        notes=tuple(reader.notes),
    )


def side_file(path: FilePath) -> FilePath:
    """The CEL side file of the YAWL file at ``path``: ``x.yawl`` → ``x.yawl.cel.yaml``."""
    return path.with_name(path.name + SUFFIX)
