"""What the YAWL importer hands back besides the Spec, and YAWL's variable declarations.

:class:`YawlImport` is the full result of reading a ``.yawl`` file: the :class:`Spec` (what
``yawlflow.load`` returns), the case data the root net declares (its variables' initial values),
each atomic task's output parameters with default values (what a test driver or a stub handler
can complete the item with), and the notes: every construct the importer read but could not
carry over (an XQuery mapping with no CEL form, a multiple-instance data split...), each
located. :class:`Variable` is one YAWL variable or parameter, with the *kind* its type maps to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from xml.etree.ElementTree import Element

from .._errors import Problem
from .._spec._model import Spec
from .._xml import XmlError, local_name, parse
from ._xpath import typed_value

__all__ = ("XSD_NAMESPACE", "Variable", "YawlImport", "default_value", "fragment_data", "kind_of")

XSD_NAMESPACE = "http://www.w3.org/2001/XMLSchema"

_BOOLEAN = frozenset({"boolean"})
_INTEGER = frozenset(
    [
        "integer",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "nonPositiveInteger",
        "negativeInteger",
        "unsignedLong",
        "unsignedInt",
        "unsignedShort",
        "unsignedByte",
    ]
)
_DECIMAL = frozenset({"decimal", "double", "float"})
_STRING = frozenset(
    [
        "string",
        "normalizedString",
        "token",
        "anyURI",
        "date",
        "dateTime",
        "time",
        "duration",
        "dayTimeDuration",
        "yearMonthDuration",
        "NCName",
        "Name",
        "NMTOKEN",
        "NMTOKENS",
        "ID",
        "IDREF",
        "IDREFS",
        "ENTITY",
        "ENTITIES",
        "language",
        "QName",
        "NOTATION",
        "gYear",
        "gYearMonth",
        "gMonth",
        "gMonthDay",
        "gDay",
        "base64Binary",
        "hexBinary",
        "anyAtomicType",
        "anySimpleType",
    ]
)

Kind = Literal["boolean", "integer", "decimal", "string"]


def kind_of(type_name: str | None, namespace: str | None) -> Kind | None:
    """The kind of an XML Schema built-in type, or ``None`` for a complex or user-defined type.

    Args:
        type_name: the type as written (``xs:boolean``, ``boolean``, ``mm:SongListType``).
        namespace: the ``<namespace>`` written beside it (Beta 3 and later), if any.
    """
    if not type_name:
        return None
    prefix, _, local = type_name.rpartition(":")
    builtin = namespace == XSD_NAMESPACE if namespace else prefix in ("", "xs", "xsd")
    if not builtin:
        return None
    if local in _BOOLEAN:
        return "boolean"
    if local in _INTEGER:
        return "integer"
    if local in _DECIMAL:
        return "decimal"
    if local in _STRING:
        return "string"
    return None


def default_value(kind: str | None) -> Any:
    """The value an unset variable of ``kind`` starts with (``false``, ``0``, ``0.0``, ``""``, ``{}``)."""
    return {"boolean": False, "integer": 0, "decimal": 0.0, "string": ""}.get(kind or "", {})


@dataclass(frozen=True, kw_only=True, slots=True)
class Variable:
    """One YAWL variable or parameter.

    Attributes:
        name: its name.
        role: ``input``, ``output``, ``local`` (a net's local variable) or ``enablement``.
        type_name: its type as written (``xs:string``, ``PurchaseOrderType``), or ``None``.
        kind: ``boolean``, ``integer``, ``decimal``, ``string``, or ``None`` (complex).
        initial: its initial (or default) value as written, or ``None``.
    """

    name: str
    role: str
    type_name: str | None
    kind: Kind | None
    initial: str | None = None

    def value(self) -> Any:
        """Its start value: the initial value typed by its kind, else the kind's default."""
        if self.initial is None or (self.kind is None and not self.initial.strip()):
            return default_value(self.kind)
        return typed_value(self.initial, self.kind) if self.kind is not None else fragment_data(self.initial)


def fragment_data(text: str) -> Any:
    """A complex value written as XML content (``<a>1</a><b/>``) as data: ``{"a": "1", "b": ""}``.

    Elements with children become mappings (a repeated child becomes a list), leaves their text.
    Text that is not well-formed XML content is kept as it is.
    """
    try:
        root = parse(b"<v>" + text.encode("utf-8") + b"</v>", source="<initial value>")
    except XmlError:
        return text
    return _element_data(root) if len(root) else text


def _element_data(element: Element) -> Any:
    if not len(element):
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in element:
        name = local_name(child.tag)
        value = _element_data(child)
        if name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out


@dataclass(frozen=True, kw_only=True)
class YawlImport:
    """The result of reading one YAWL specification file.

    Attributes:
        spec: the spec, validated exactly as a YAML spec is.
        version: the schema version the file declares (``Beta 2`` when it declares none).
        namespace: the file's YAWL namespace.
        start_data: the root net's variables with their initial values (or their type's
            default): the data a case of ``spec`` starts with in YAWL.
        outputs: per net, per atomic task, its output parameters with default values.
        variables: per net, its declared variables.
        notes: each construct read but not carried over (with where and why); never fatal.
    """

    spec: Spec
    version: str
    namespace: str
    start_data: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    variables: dict[str, tuple[Variable, ...]] = field(default_factory=dict)
    notes: tuple[Problem, ...] = ()
