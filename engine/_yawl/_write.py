"""A yawlflow :class:`Spec` as a YAWL 4.0 specification that YAWL's schema accepts.

Theory of operation. The writer is the importer's inverse (docs/yawl.md has the table): each net
becomes a ``NetFactsType`` decomposition, each task a ``<task>`` with its join and split codes,
flows (``when`` → ``<predicate>``, ``order`` → ``ordering``, ``default`` → ``<isDefaultFlow/>``
with ``true()`` on an XOR split and ``false()`` on an OR split, which is how YAWL spells "only
when no other flow is taken"), cancellation set, mappings, timer and multiple-instance bounds. An
explicit condition named ``c{a_b}`` between tasks ``a`` and ``b`` (what the importer makes of a
``removesTokensFromFlow``) is written back as the direct flow and the ``removesTokensFromFlow``.

Variables: every name a net's predicates and mappings read or write is declared in that net
(root net: ``localVariable``; a sub-net: ``inputParam`` for what its composite tasks pass in,
``outputParam`` for what they read back), typed ``boolean``/``long``/``double`` where a
predicate compares it with such a literal, else ``string``; each atomic task's decomposition
declares the parameters its mappings use. So importing the result gives back an equal spec.

What YAWL cannot express is refused, each place listed in one :class:`SpecError`: triggers,
milestones, loops, ``completes``, retries, timeouts, strategies, ``critical: false``, mutexes,
implicit termination, partial and thread joins and splits, connectors, ``items``/``count``
instances, and CEL with no XPath form.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from .._errors import Problem, SpecError
from .._spec._model import InstancesSpec, NetSpec, Spec, TaskSpec
from .._spec._report import Path, render_path
from ._toxpath import cel_to_predicate, cel_to_query
from ._xpath import Untranslatable

__all__ = ("YAWL_NAMESPACE", "export_yawl")

YAWL_NAMESPACE = "http://www.yawlfoundation.org/yawlschema"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XS = "http://www.w3.org/2001/XMLSchema"
_UNBOUNDED = 2_147_483_647
_NCNAME = re.compile(r"[A-Za-z_][\w.\-]*\Z")
_NMTOKEN = re.compile(r"[\w.\-:]+\Z")
_ISO = re.compile(r"P(?:\d+W)?(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?\Z")
_XSD_TYPE = {"boolean": "boolean", "integer": "long", "decimal": "double", "string": "string"}


class _Writer:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.problems: list[Problem] = []
        self.decomposition_ids: set[str] = {net.name for net in spec.nets}
        self.gateways: list[Element] = []
        self.net_params: dict[str, tuple[set[str], set[str]]] = {net.name: (set(), set()) for net in spec.nets}
        for net in spec.nets:
            for task in net.tasks:
                if task.net is not None and task.net in self.net_params:
                    inputs, outputs = self.net_params[task.net]
                    inputs.update((task.input or {}).keys())
                    outputs.update(_identifiers((task.output or {}).values()))

    def refuse(self, path: Path, message: str, hint: str = "") -> None:
        self.problems.append(Problem(source=self.spec.source, path=render_path(path), message=message, hint=hint))

    # -- the document -------------------------------------------------------------------------

    def document(self) -> bytes:
        spec = self.spec
        root = Element("specificationSet", {"xmlns": YAWL_NAMESPACE, "version": "4.0"})
        root.set(f"{{{_XSI}}}schemaLocation", f"{YAWL_NAMESPACE} {YAWL_NAMESPACE}/YAWL_Schema4.0.xsd")
        body = SubElement(root, "specification", {"uri": spec.id})
        meta = SubElement(body, "metaData")
        SubElement(meta, "title").text = spec.id
        SubElement(meta, "creator").text = "yawlflow"
        SubElement(meta, "version").text = "0.1"
        SubElement(meta, "persistent").text = "false"
        digest = hashlib.sha256(spec.id.encode("utf-8")).hexdigest()[:32]
        SubElement(meta, "identifier").text = f"UID_{digest}"
        SubElement(body, f"{{{_XS}}}schema")
        for net in spec.nets:
            body.append(self.net(net))
        for gateway in self.gateways:
            body.append(gateway)
        if self.problems:
            raise SpecError(self.problems)
        indent(root, "  ")
        text: bytes = tostring(root, encoding="utf-8", xml_declaration=False)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text + b"\n"

    def net(self, net: NetSpec) -> Element:
        base: Path = ("nets", net.name)
        if not _NCNAME.match(net.name):
            self.refuse(
                base,
                f"net name {net.name!r} is not an XML name, which YAWL needs for a decomposition id",
                "rename it: letters, digits, _ . - (not starting with a digit)",
            )
        if net.termination != "explicit":
            self.refuse(
                (*base, "termination"), "YAWL has no implicit termination", "end the net in its output condition"
            )
        if net.mutex:
            self.refuse((*base, "mutex"), "YAWL has no mutex regions", "remove mutex")
        types: dict[str, str] = {}
        folded = self.folded_conditions(net)
        tasks = [self.task(net, task, types, folded) for task in net.tasks]
        dec = Element("decomposition", {"id": net.name})
        dec.set(f"{{{_XSI}}}type", "NetFactsType")
        if net.name == self.spec.root:
            dec.set("isRootNet", "true")
        names = self.net_variables(net)
        inputs, outputs = self.net_params[net.name]
        index = 0
        sub = net.name != self.spec.root
        for role, chosen in (("inputParam", inputs), ("outputParam", outputs)):
            for name in sorted(chosen) if sub else ():
                _variable(dec, role, name, types.get(name, "string"), index)
                index += 1
        for name in sorted(names - (inputs if sub else set())):
            _variable(dec, "localVariable", name, types.get(name, "string"), index)
            index += 1
        pce = SubElement(dec, "processControlElements")
        conditions = {c.name: c for c in net.conditions}
        start = SubElement(pce, "inputCondition", {"id": net.input})
        for flow in conditions[net.input].flows if net.input in conditions else ():
            SubElement(SubElement(start, "flowsInto"), "nextElementRef", {"id": flow.to})
        if not len(start):
            self.refuse((*base, "input"), "the input condition has no outgoing flow", "YAWL needs one")
        for cond in net.conditions:
            if cond.name in (net.input, net.output) or cond.name in folded:
                continue
            element = SubElement(pce, "condition", {"id": cond.name})
            self.check_id((*base, "conditions", cond.name), cond.name)
            for flow in cond.flows:
                SubElement(SubElement(element, "flowsInto"), "nextElementRef", {"id": flow.to})
            if not cond.flows:
                self.refuse((*base, "conditions", cond.name), "a condition with no outgoing flow", "YAWL needs one")
        pce.extend(tasks)
        SubElement(pce, "outputCondition", {"id": net.output})
        return dec

    def folded_conditions(self, net: NetSpec) -> dict[str, tuple[str, str]]:
        """Explicit conditions ``c{a_b}`` that stand for a task→task flow a cancellation names."""
        tasks = {t.name for t in net.tasks}
        producers: dict[str, list[str]] = {}
        for task in net.tasks:
            for flow in task.flows:
                producers.setdefault(flow.to, []).append(task.name)
        out: dict[str, tuple[str, str]] = {}
        for cond in net.conditions:
            made_by = producers.get(cond.name, [])
            if cond.name in (net.input, net.output) or len(made_by) != 1 or len(cond.flows) != 1:
                continue
            src, dst = made_by[0], cond.flows[0].to
            if cond.name != f"c{{{src}_{dst}}}" or dst not in tasks:
                continue
            if any(f.to == dst for f in next(t for t in net.tasks if t.name == src).flows):
                continue
            out[cond.name] = (src, dst)
        return out

    def net_variables(self, net: NetSpec) -> set[str]:
        names: set[str] = set()
        for task in net.tasks:
            for flow in task.flows:
                if flow.when is not None:
                    names.update(_identifiers((flow.when,)))
            names.update(_identifiers((task.input or {}).values()))
            names.update((task.output or {}).keys())
        return names

    def check_id(self, path: Path, name: str) -> None:
        if not _NMTOKEN.match(name):
            self.refuse(
                path,
                f"{name!r} is not an XML name token, which YAWL needs for an element id",
                "rename it: letters, digits, _ . - :",
            )

    # -- tasks --------------------------------------------------------------------------------

    def task(self, net: NetSpec, task: TaskSpec, types: dict[str, str], folded: dict[str, tuple[str, str]]) -> Element:
        here: Path = ("nets", net.name, "tasks", task.name)
        self.check_id(here, task.name)
        self.unsupported(here, task)
        element = Element("task", {"id": task.name})
        if task.instances is not None:
            element.set(f"{{{_XSI}}}type", "MultipleInstanceExternalTaskFactsType")
        if task.join.kind not in ("and", "or", "xor"):
            self.refuse((*here, "join"), f"YAWL has no {task.join.kind} join", "use and, or, xor")
        if task.split.kind not in ("and", "or", "xor"):
            self.refuse((*here, "split"), f"YAWL has no {task.split.kind} split", "use and, or, xor")
        choosing = task.split.kind in ("or", "xor")
        for i, flow in enumerate(task.flows):
            target = folded[flow.to][1] if flow.to in folded else flow.to
            into = SubElement(element, "flowsInto")
            SubElement(into, "nextElementRef", {"id": target})
            if not choosing:
                continue
            if flow.default:
                predicate = "true()" if task.split.kind == "xor" else "false()"
            elif flow.when is None:
                predicate = "true()"
            else:
                try:
                    predicate = cel_to_predicate(flow.when, net.name, types)
                except Untranslatable as exc:
                    self.refuse(
                        (*here, "flows", i, "when"),
                        f"CEL {flow.when!r} has no XPath form ({exc.reason})",
                        "write it as comparisons of variables with literals, joined by && and ||",
                    )
                    predicate = "true()"
            attrs = {"ordering": str(flow.order)} if flow.order is not None else {}
            SubElement(into, "predicate", attrs).text = predicate
            if flow.default or (task.split.kind == "xor" and len(task.flows) == 1):
                SubElement(into, "isDefaultFlow")
        if not task.flows:
            self.refuse(
                (*here, "flows"), "a task with no outgoing flow", "YAWL needs one: flow into the output condition"
            )
        SubElement(element, "join", {"code": task.join.kind})
        SubElement(element, "split", {"code": task.split.kind})
        flows_cancelled: list[tuple[str, str]] = []
        for i, name in enumerate(task.cancels):
            if name in folded:
                flows_cancelled.append(folded[name])
            elif name == net.name:
                self.refuse(
                    (*here, "cancels", i),
                    "YAWL cannot cancel a whole (sub-)case from a task",
                    "list the net's tasks and conditions instead",
                )
            else:
                SubElement(element, "removesTokens", {"id": name})
        for src, dst in flows_cancelled:
            rtf = SubElement(element, "removesTokensFromFlow")
            SubElement(rtf, "flowSource", {"id": src})
            SubElement(rtf, "flowDestination", {"id": dst})
        decomposition = self.decomposition(net, task, here)
        self.mappings(net, task, here, types, element, decomposition)
        if task.timer is not None:
            timer = SubElement(element, "timer")
            SubElement(timer, "trigger").text = "OnEnabled"
            SubElement(timer, "duration").text = _iso_duration(task.timer.after, task.timer.after_ns)
        if task.external:
            resourcing = SubElement(element, "resourcing")
            for step in ("offer", "allocate", "start"):
                SubElement(resourcing, step, {"initiator": "user"})
        if decomposition is not None:
            SubElement(element, "decomposesTo", {"id": decomposition})
        if task.instances is not None:
            self.instances(net, task, task.instances, here, element)
        return element

    def unsupported(self, here: Path, task: TaskSpec) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("trigger", task.trigger is not None, "YAWL has no signals"),
            ("milestone", bool(task.milestone), "YAWL has no milestones"),
            ("loop", task.loop is not None, "write the loop as a back flow from an XOR split"),
            ("completes", bool(task.completes), "YAWL cannot force-complete another task"),
            ("retry", task.retry is not None, "YAWL has no retries"),
            ("timeout", task.timeout is not None, "use a timer"),
            ("strategy", task.strategy is not None, "execution strategies are engine configuration"),
            ("critical", not task.critical, "YAWL has no non-critical tasks"),
        ]
        for key, present, hint in checks:
            if present:
                self.refuse((*here, key), f"{key} has no YAWL equivalent", hint)
        if task.run is not None and task.run.connector is not None:
            self.refuse(
                (*here, "run"), "a connector task has no YAWL equivalent", "use a handler (a codelet) or external: true"
            )

    def decomposition(self, net: NetSpec, task: TaskSpec, here: Path) -> str | None:
        if task.net is not None:
            return task.net
        handler = task.run.handler if task.run is not None else None
        if handler is None and not task.external and task.input is None and task.output is None:
            return None
        name = re.sub(r"[^\w.\-]", "_", task.name)
        name = name if _NCNAME.match(name) else "_" + name
        base, n = name, 2
        while name in self.decomposition_ids:
            name, n = f"{base}_{n}", n + 1
        self.decomposition_ids.add(name)
        dec = Element("decomposition", {"id": name})
        dec.set(f"{{{_XSI}}}type", "WebServiceGatewayFactsType")
        index = 0
        for role, names in (
            ("inputParam", sorted((task.input or {}).keys())),
            ("outputParam", sorted(_identifiers((task.output or {}).values()))),
        ):
            for param in names:
                _variable(dec, role, param, "string", index)
                index += 1
        if handler is not None:
            if not _NCNAME.match(handler):
                self.refuse(
                    (*here, "run"),
                    f"handler {handler!r} is not an XML name, which a YAWL codelet needs",
                    "register the handler under a plain name",
                )
            SubElement(dec, "codelet").text = handler
        SubElement(dec, "externalInteraction").text = "manual" if task.external else "automated"
        self.gateways.append(dec)
        return name

    def mappings(
        self,
        net: NetSpec,
        task: TaskSpec,
        here: Path,
        types: dict[str, str],
        element: Element,
        decomposition: str | None,
    ) -> None:
        sources = {"input": net.name, "output": decomposition or task.name}
        for key, tag in (("input", "startingMappings"), ("output", "completedMappings")):
            mapping: dict[str, str] | None = getattr(task, key)
            if not mapping:
                continue
            container = SubElement(element, tag)
            for target, cel in mapping.items():
                if not _NCNAME.match(target):
                    self.refuse(
                        (*here, key, target), f"{target!r} is not an XML name, which a YAWL variable needs", "rename it"
                    )
                    continue
                try:
                    query = cel_to_query(cel, target, sources[key], types if key == "input" else {})
                except Untranslatable as exc:
                    self.refuse(
                        (*here, key, target),
                        f"CEL {cel!r} has no XQuery form ({exc.reason})",
                        "map a variable (a.b) or a literal",
                    )
                    continue
                item = SubElement(container, "mapping")
                SubElement(item, "expression", {"query": query})
                SubElement(item, "mapsTo").text = target

    def instances(self, net: NetSpec, task: TaskSpec, mi: InstancesSpec, here: Path, element: Element) -> None:
        path = (*here, "instances")
        if mi.count is not None or mi.items is not None:
            self.refuse(
                path, "count and items have no YAWL form here", "give min and max; YAWL splits data with XQuery"
            )
        if mi.as_ is not None:
            self.refuse((*path, "as"), "as has no YAWL form here", "remove as")
        if mi.join == "none":
            self.refuse((*path, "join"), "YAWL has no multiple instances without synchronisation", "use join: all")
        threshold = mi.threshold
        if threshold is not None and (not isinstance(threshold, int) or not mi.cancel_rest):
            self.refuse(
                (*path, "threshold"),
                "YAWL's threshold is an integer, and withdraws the other instances",
                "write threshold: N with cancel_rest: true",
            )
        high = mi.max if mi.max is not None else _UNBOUNDED
        SubElement(element, "minimum").text = str(mi.min if mi.min is not None else 1)
        SubElement(element, "maximum").text = str(high)
        SubElement(element, "threshold").text = str(threshold if isinstance(threshold, int) else high)
        SubElement(element, "creationMode", {"code": mi.creation})
        data = SubElement(element, "miDataInput")
        SubElement(data, "expression", {"query": f"/{net.name}/{task.name}_items"})
        SubElement(data, "splittingExpression", {"query": f"for $i in /{task.name}_items/* return $i"})
        SubElement(data, "formalInputParam").text = "item"


def _variable(parent: Element, role: str, name: str, kind: str, index: int) -> None:
    var = SubElement(parent, role)
    SubElement(var, "index").text = str(index)
    SubElement(var, "name").text = name
    SubElement(var, "type").text = _XSD_TYPE.get(kind, "string")
    SubElement(var, "namespace").text = _XS


_IDENT = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?<![\w.])([A-Za-z_]\w*)(?!\s*\()""")
_CEL_WORDS = frozenset(("true", "false", "null", "in"))


def _identifiers(expressions: Iterable[str]) -> set[str]:
    """The top-level variable names CEL expressions read (``a`` of ``a.b > 1``)."""
    out: set[str] = set()
    for expr in expressions:
        for match in _IDENT.finditer(expr):
            name = match.group(2)
            if name is not None and name not in _CEL_WORDS:
                out.add(name)
    return out


def _iso_duration(after: str, ns: int) -> str:
    """``after`` if it is already an xs:duration, else ``ns`` written as one (``PT1H30M``)."""
    if _ISO.match(after) and after not in ("P", "PT"):
        return after
    seconds, rest = divmod(ns, 1_000_000_000)
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    out = "P" + (f"{days}D" if days else "")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or rest or not (days or time):
        time += f"{seconds}.{rest:09d}".rstrip("0").rstrip(".") + "S"
    return out + ("T" + time if time else "")


def export_yawl(spec: Spec) -> bytes:
    """Write ``spec`` as YAWL 4.0 XML (see the module's theory of operation).

    Raises:
        SpecError: the spec uses something YAWL cannot express; every place is listed.
    """
    return _Writer(spec).document()
