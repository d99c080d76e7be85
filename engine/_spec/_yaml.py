"""YAML text to plain data plus a path → position map, safely and without recursion.

Theory of operation: PyYAML's own composer and constructor recurse once per nesting level and
expand aliases without limit, so a 10,000-deep list overflows the stack and a "billion laughs"
document builds a graph whose traversal never ends. Instead we pull *events* from the parser
(libyaml's ``CSafeLoader`` when available, else the pure ``SafeLoader``; both parse with a heap
stack, not recursion) and build the plain data ourselves with an explicit stack. While doing so:

* each value's start mark and each mapping key's mark is recorded under its element path
  (``_report.Marks``), so later checks can say ``orders.yaml:14:`` for ``$.nets.main...``;
* nesting deeper than :data:`MAX_DEPTH` stops the parse at once;
* every alias adds the size of the node it repeats to a budget; more than
  :data:`ALIAS_NODE_BUDGET` nodes reached through aliases stops the parse at once;
* duplicate keys are reported (located at the second one); the later value is kept, as in JSON;
* mapping keys are taken as written (``on:`` is the string ``"on"``, not YAML 1.1's ``True``);
  scalar values get YAML's usual types (``yes`` is ``True``), except that dates stay strings;
* only the standard tags (``!!str !!int !!float !!bool !!null !!map !!seq``) are accepted, and
  no tag can construct a Python object: scalars go through ``SafeConstructor``'s own functions.

``<<`` merge keys work as in PyYAML: explicit keys win over merged ones.
"""

from __future__ import annotations

from typing import Any

import yaml

from .._errors import Problem, SpecError
from ._report import Marks, Path, Position, render_path

__all__ = ("ALIAS_NODE_BUDGET", "MAX_DEPTH", "compose")

MAX_DEPTH = 64
"""Nesting deeper than this is refused (specs need about ten levels)."""

ALIAS_NODE_BUDGET = 10_000
"""At most this many nodes may be reached through aliases, in all."""

_Loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

_KEY_HINT = "write name: value; YAML's complex keys (? [a, b]) and anchored keys are not used in specs"
_FLATTEN = "a spec needs about ten levels; flatten the data"
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null"))
_MAP_TAGS = frozenset((None, "!", _TAG + "map"))
_SEQ_TAGS = frozenset((None, "!", _TAG + "seq"))


_Mark = Any  # yaml.error.Mark or libyaml's own Mark class; both have .line and .column (0-based)


def _at(mark: _Mark) -> Position:
    return (mark.line + 1, mark.column + 1)


class _Fatal(Exception):
    """Stops composing; carries the problem that made going on pointless."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class _Frame:
    """An open collection: where it is, what it holds so far, and what its anchor is."""

    __slots__ = ("anchor", "data", "key", "key_mark", "merge", "merges", "path", "start_count")

    def __init__(self, path: Path, data: dict[str, Any] | list[Any], anchor: str | None, start: int) -> None:
        self.path = path
        self.data = data
        self.anchor = anchor
        self.start_count = start  # the node count before this collection
        self.key: str | None = None  # mappings: the key whose value comes next
        self.key_mark: _Mark = None
        self.merge = False  # the next value is a << merge
        self.merges: list[dict[str, Any]] = []


class _Composer:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.loader = _Loader(text)
        self.marks = Marks()
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # name -> (value, node count)
        self.open_anchors: set[str] = set()
        self.count = 0
        self.aliased = 0
        self.root: Any = None
        self.documents = 0

    # -- problems -----------------------------------------------------------------------------

    def problem(self, path: Path, mark: _Mark, message: str, hint: str = "") -> Problem:
        line, column = _at(mark) if mark is not None else (None, None)
        return Problem(
            source=self.source, path=render_path(path), message=message, hint=hint, line=line, column=column
        )

    def fatal(self, path: Path, mark: _Mark, message: str, hint: str = "") -> _Fatal:
        return _Fatal(self.problem(path, mark, message, hint))

    # -- the event loop -----------------------------------------------------------------------

    def run(self) -> Any:
        loader = self.loader
        try:
            while loader.check_event():
                event = loader.get_event()
                if event is not None:
                    self.event(event)
        finally:
            loader.dispose()
        return self.root

    def event(self, event: yaml.Event) -> None:
        if isinstance(event, yaml.ScalarEvent):
            frame = self.stack[-1] if self.stack else None
            if frame is not None and isinstance(frame.data, dict) and frame.key is None:
                self.key(frame, event)
            else:
                self.value(self.scalar(event), event.start_mark, event.anchor, size=1, add=1)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            self.start(event)
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            self.end()
        elif isinstance(event, yaml.AliasEvent):
            self.alias(event)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fatal(
                    (), event.start_mark, "more than one YAML document", "put one spec in each file"
                )

    def child_path(self, mark: _Mark = None) -> Path:
        """The path of the value that comes next."""
        if not self.stack:
            return ()
        frame = self.stack[-1]
        if isinstance(frame.data, dict):
            if frame.key is None:
                raise self.fatal(frame.path, mark, "a mapping key must be a plain name", _KEY_HINT)
            return (*frame.path, frame.key)
        return (*frame.path, len(frame.data))

    def key(self, frame: _Frame, event: yaml.ScalarEvent) -> None:
        if event.anchor is not None or (event.tag not in (None, "!", _TAG + "str")):
            raise self.fatal(frame.path, event.start_mark, "a mapping key must be a plain name", _KEY_HINT)
        frame.key, frame.key_mark = event.value, event.start_mark
        frame.merge = event.value == "<<" and event.tag is None and not event.style
        path = (*frame.path, event.value)
        position = _at(event.start_mark)
        if frame.merge:
            return
        first = self.marks.keys.setdefault(path, position)
        if event.value in frame.data:  # reported; the later value replaces the first, as in JSON
            self.problems.append(
                self.problem(
                    path,
                    event.start_mark,
                    f"duplicate key {event.value!r} (first on line {first[0]})",
                    "remove one of them",
                )
            )

    def start(self, event: yaml.SequenceStartEvent | yaml.MappingStartEvent) -> None:
        path = self.child_path(event.start_mark)
        is_map = isinstance(event, yaml.MappingStartEvent)
        if event.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
            message = f"unsupported YAML tag {_short(event.tag or '')!r}"
            raise self.fatal(path, event.start_mark, message, "remove the tag")
        if len(self.stack) >= MAX_DEPTH:
            raise self.fatal(
                path,
                event.start_mark,
                f"nesting deeper than {MAX_DEPTH} levels",
                _FLATTEN,
            )
        self.marks.values[path] = _at(event.start_mark)
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        data: dict[str, Any] | list[Any] = {} if is_map else []
        self.stack.append(_Frame(path, data, event.anchor, self.count))
        self.count += 1

    def end(self) -> None:
        frame = self.stack.pop()
        data = frame.data
        if frame.merges and isinstance(data, dict):
            merged: dict[str, Any] = {}
            for source in frame.merges:
                for key, value in source.items():
                    merged.setdefault(key, value)
            merged.update(data)
            data = merged
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
        self.value(data, None, frame.anchor, size=self.count - frame.start_count, add=0)

    def alias(self, event: yaml.AliasEvent) -> None:
        name = event.anchor
        path = self.child_path(event.start_mark)
        if name in self.open_anchors:
            raise self.fatal(path, event.start_mark, f"alias *{name} refers to itself", "remove the cycle")
        if name not in self.anchors:
            raise self.fatal(path, event.start_mark, f"undefined alias *{name}", f"define &{name} before it")
        value, size = self.anchors[name]
        self.aliased += size
        if self.aliased > ALIAS_NODE_BUDGET:
            raise self.fatal(
                path,
                event.start_mark,
                f"aliases expand to more than {ALIAS_NODE_BUDGET:,} nodes",
                "write the repeated parts out, or repeat less",
            )
        self.marks.values.setdefault(path, _at(event.start_mark))
        self.value(value, None, None, size=size, add=size)

    def value(self, value: Any, mark: _Mark, anchor: str | None, *, size: int, add: int) -> None:
        """Place a finished value in its parent; ``size`` nodes in all, ``add`` of them new."""
        if mark is not None:
            self.marks.values[self.child_path()] = _at(mark)
        self.count += add
        if anchor is not None:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if isinstance(frame.data, list):
            frame.data.append(value)
            return
        key, frame.key = frame.key, None
        if frame.merge:
            self.add_merge(frame, value)
        elif key is not None:
            frame.data[key] = value

    def add_merge(self, frame: _Frame, value: Any) -> None:
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(source, dict) for source in sources):
            raise self.fatal(
                (*frame.path, "<<"),
                frame.key_mark,
                "a << merge key needs a mapping or a list of mappings",
                "write <<: *anchor",
            )
        frame.merges.extend(sources)

    def scalar(self, event: yaml.ScalarEvent) -> Any:
        tag = event.tag
        if tag in (None, "!"):
            if event.implicit[0]:
                tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
            else:
                tag = _TAG + "str"
        if tag == _TAG + "timestamp" and event.tag is None:
            return event.value  # a date in a spec is a name or a string, not a datetime
        path = self.child_path(event.start_mark)
        if tag not in _SCALAR_TAGS:
            message = f"unsupported YAML tag {_short(tag)!r}"
            self.problems.append(self.problem(path, event.start_mark, message, "remove the tag"))
            return event.value
        node = yaml.ScalarNode(tag, event.value, style=event.style)
        try:
            return self.loader.yaml_constructors[tag](self.loader, node)
        except (yaml.YAMLError, ValueError):
            message = f"{event.value!r} is not a valid {_short(tag)}"
            self.problems.append(self.problem(path, event.start_mark, message, "remove the tag"))
            return event.value


def _short(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def compose(text: str, source: str) -> tuple[Any, Marks, list[Problem]]:
    """Parse one YAML document into plain data, recording where each value was written.

    Args:
        text: the YAML text.
        source: the file name, for messages.

    Returns:
        The data (``None`` for an empty document), the positions of its values and keys, and
        the problems that did not stop the parse (duplicate keys, unsupported scalar tags).

    Raises:
        SpecError: a syntax error, nesting deeper than :data:`MAX_DEPTH`, aliases expanding
            beyond :data:`ALIAS_NODE_BUDGET` nodes, a recursive or undefined alias, several
            documents; with the problems found before it.
    """
    composer = _Composer(text, source)
    try:
        data = composer.run()
    except _Fatal as exc:
        raise SpecError([*composer.problems, exc.problem]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if "maximum nesting depth" in str(exc.problem):  # libyaml's own limit (1000)
            problem = composer.problem((), mark, f"nesting deeper than {MAX_DEPTH} levels", _FLATTEN)
        else:
            message = f"YAML syntax error: {exc.problem or exc.context}"
            if exc.context and exc.problem:
                message += f" ({exc.context})"
            hint = "check the indentation and the brackets near here"
            problem = composer.problem((), mark, message, hint)
        raise SpecError([*composer.problems, problem]) from None
    except yaml.YAMLError as exc:
        line = column = None
        position = getattr(exc, "position", None)
        if isinstance(position, int):
            line = text.count("\n", 0, position) + 1
            column = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = str(exc).split("\n", 1)[0]
        problem = Problem(source=source, path="$", message=f"YAML error: {reason}", line=line, column=column)
        raise SpecError([*composer.problems, problem]) from None
    return data, composer.marks, composer.problems
