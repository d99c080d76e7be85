"""The one way yawlflow reads XML: hardened, capped, and located.

Theory of operation. Every XML document the project reads (``.yawl`` specs today) is parsed by
:func:`parse` (bytes) or :func:`parse_file` (a path), never by ``xml.etree`` directly. Parsing
runs on defusedxml's expat parser with ``forbid_dtd``, ``forbid_entities`` and
``forbid_external`` all on, so the classic attacks stop at their first byte of markup:

* XXE (an external entity), billion laughs (nested entity expansion) and quadratic blow-up (one
  large entity referenced many times) all need a ``<!DOCTYPE ...>`` declaration; it is refused
  where it starts, before any entity is declared or expanded.
* Deep nesting (10,000 levels of ``<a>``) is refused when an element opens one level deeper than
  :attr:`XmlLimits.max_depth`, so the tree is never built that deep.
* A document larger than :attr:`XmlLimits.max_bytes` is refused before parsing; one with more
  than :attr:`XmlLimits.max_elements` elements stops when it reaches the cap.

Each refusal is an :class:`XmlError` naming the file, the line and column where the parser was,
what was found, and what to do. The elements built are :class:`Node` (an ``Element`` subclass)
carrying the ``line`` and ``column`` where each starts, so readers can locate their own problems.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

from ._errors import Problem, YawlflowError

__all__ = ("DEFAULT_LIMITS", "Node", "XmlError", "XmlLimits", "local_name", "parse", "parse_file")


@dataclass(frozen=True, kw_only=True, slots=True)
class XmlLimits:
    """Caps on what one XML document may hold.

    Attributes:
        max_bytes: the largest document read (default 16 MiB, as for YAML and JSON specs).
        max_depth: the deepest element nesting (default 256; YAWL specs need about 30).
        max_elements: the most elements in one document (default 1,000,000).
    """

    max_bytes: int = 16 * 1024 * 1024
    max_depth: int = 256
    max_elements: int = 1_000_000


DEFAULT_LIMITS = XmlLimits()
"""The limits :func:`parse` uses unless given others."""


class XmlError(YawlflowError):
    """An XML document was refused: malformed, unsafe, or over a limit.

    Attributes:
        problem: where (file, line, column) and what, with the fix.
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


class Node(Element):
    """An element that knows where it starts in its document.

    Attributes:
        line: the 1-based line of its start tag (0 when unknown).
        column: the 1-based column of its start tag (0 when unknown).
    """

    line: int = 0
    column: int = 0


def local_name(tag: str) -> str:
    """An element's name without its namespace: ``{http://...}task`` → ``task``."""
    return tag.rpartition("}")[2] if tag[:1] == "{" else tag


class _Stop(Exception):
    """Raised inside a parser callback to abort: a limit was reached (carries the message)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _Builder(TreeBuilder):
    """A tree builder that stamps positions on elements and enforces depth and count caps."""

    def __init__(self, limits: XmlLimits) -> None:
        super().__init__(element_factory=Node)
        self.limits = limits
        self.depth = 0
        self.count = 0
        self.expat: Any = None  # the expat parser, set once the XMLParser exists

    def start(self, tag: Any, attrs: Any) -> Element:
        self.depth += 1
        self.count += 1
        if self.depth > self.limits.max_depth:
            raise _Stop(
                f"elements nest deeper than {self.limits.max_depth} levels",
                "this is not a spec a person wrote; if it is, raise XmlLimits.max_depth",
            )
        if self.count > self.limits.max_elements:
            raise _Stop(
                f"more than {self.limits.max_elements:,} elements",
                "this is not a spec a person wrote; if it is, raise XmlLimits.max_elements",
            )
        node = super().start(tag, attrs)
        if self.expat is not None and isinstance(node, Node):
            node.line = self.expat.CurrentLineNumber
            node.column = self.expat.CurrentColumnNumber + 1
        return node

    def end(self, tag: Any) -> Element:
        self.depth -= 1
        return super().end(tag)


_UNSAFE_HINT = "XML specs may not declare a DOCTYPE or entities; remove the <!DOCTYPE ...> block"


def parse(data: bytes, *, source: str = "<string>", limits: XmlLimits = DEFAULT_LIMITS) -> Node:
    """Parse one XML document, refusing anything unsafe or over the limits.

    Args:
        data: the document's bytes (its encoding declaration is honoured).
        source: the name messages give it (a file name).
        limits: the caps (default :data:`DEFAULT_LIMITS`).

    Returns:
        The root element; every element is a :class:`Node` with its line and column.

    Raises:
        XmlError: the document is too large, malformed, declares a DOCTYPE or entities (XXE,
            billion laughs, quadratic blow-up), references an external entity, nests deeper
            than ``limits.max_depth`` or holds more than ``limits.max_elements`` elements. The
            problem names the file, line and column, and the fix.
    """
    if len(data) > limits.max_bytes:
        raise _error(
            source,
            f"the document is {len(data) / 2**20:.1f} MiB, over the limit of {limits.max_bytes / 2**20:.1f} MiB",
            "check that this is the file you meant; raise XmlLimits.max_bytes if it is",
        )
    builder = _Builder(limits)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    expat = parser.parser
    builder.expat = expat
    try:
        parser.feed(data)
        root = parser.close()
    except _Stop as stop:
        raise _error(source, stop.message, stop.hint, *_where(expat)) from None
    except DTDForbidden as exc:
        raise _error(
            source, f"a DOCTYPE declaration (<!DOCTYPE {exc.name} ...>)", _UNSAFE_HINT, *_where(expat)
        ) from None
    except EntitiesForbidden as exc:
        raise _error(source, f"an entity declaration ({exc.name!r})", _UNSAFE_HINT, *_where(expat)) from None
    except ExternalReferenceForbidden as exc:
        raise _error(
            source, f"a reference to an external entity ({exc.sysid!r})", _UNSAFE_HINT, *_where(expat)
        ) from None
    except ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(": line ")[0]
        raise _error(
            source, f"not well-formed XML: {reason}", "check the tags and quoting near here", line, column + 1
        ) from None
    if not isinstance(root, Node):  # pragma: no cover - the builder makes every element a Node
        raise _error(source, "the document has no root element", "")
    return root


def parse_file(path: str | os.PathLike[str], *, source: str | None = None, limits: XmlLimits = DEFAULT_LIMITS) -> Node:
    """Read and :func:`parse` the XML file at ``path``, checking its size before reading it.

    Args:
        path: the file.
        source: the name messages give it (default: ``path`` as given).
        limits: the caps (default :data:`DEFAULT_LIMITS`).

    Returns:
        The root element.

    Raises:
        XmlError: the file is missing, unreadable, or refused by :func:`parse`.
    """
    name = os.fspath(path) if source is None else source
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > limits.max_bytes:
            raise _error(
                name,
                f"the document is {size / 2**20:.1f} MiB, over the limit of {limits.max_bytes / 2**20:.1f} MiB",
                "check that this is the file you meant; raise XmlLimits.max_bytes if it is",
            )
        with file.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise _error(name, "no such file", f"check the path; relative paths start at {os.getcwd()}") from None
    except OSError as exc:
        raise _error(name, f"cannot read the file: {exc.strerror or exc}", "check its permissions") from None
    return parse(data, source=name, limits=limits)


def _where(expat: Any) -> tuple[int | None, int | None]:
    try:
        return int(expat.CurrentLineNumber), int(expat.CurrentColumnNumber) + 1
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - expat always has them
        return None, None


def _error(source: str, message: str, hint: str, line: int | None = None, column: int | None = None) -> XmlError:
    return XmlError(Problem(source=source, path="$", message=message, hint=hint, line=line, column=column))
