"""Line and column of every value and key in a JSON text, for messages about a JSON spec.

msgspec decodes JSON fast and without positions. When a JSON spec turns out to have problems,
this second, tolerant scan (a regular-expression tokenizer and an explicit stack, no
recursion) records where each path's value and key start, so that JSON problems are located
as well as YAML ones. It runs only on that error path.
"""

from __future__ import annotations

import bisect
import json
import re

from ._report import Marks, Path, Position

__all__ = ("scan",)

_TOKEN = re.compile(r'("(?:[^"\\]|\\.)*")|([{}\[\],:])|([^\s{}\[\],:"]+)', re.S)


class _Frame:
    __slots__ = ("index", "is_object", "key", "path")

    def __init__(self, path: Path, is_object: bool) -> None:
        self.path = path
        self.is_object = is_object
        self.key: str | None = None
        self.index = 0


def scan(text: str) -> Marks:
    """Record the position of each value (and object key) in ``text`` under its path."""
    starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def at(offset: int) -> Position:
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    marks = Marks()
    stack: list[_Frame] = []

    def value_path() -> Path:
        if not stack:
            return ()
        top = stack[-1]
        if top.is_object:
            return (*top.path, top.key if top.key is not None else "")
        return (*top.path, top.index)

    for match in _TOKEN.finditer(text):
        string, punct, _atom = match.groups()
        start = match.start()
        if punct in ("{", "["):
            path = value_path()
            marks.values[path] = at(start)
            stack.append(_Frame(path, punct == "{"))
        elif punct in ("}", "]"):
            if stack:
                stack.pop()
        elif punct == ",":
            if stack and stack[-1].is_object:
                stack[-1].key = None
            elif stack:
                stack[-1].index += 1
        elif punct == ":":
            continue
        elif stack and stack[-1].is_object and stack[-1].key is None and string is not None:
            key = _key(string)
            stack[-1].key = key
            marks.keys[(*stack[-1].path, key)] = at(start)
        else:
            marks.values[value_path()] = at(start)
    return marks


def _key(token: str) -> str:
    try:
        key = json.loads(token)
    except ValueError:
        return token[1:-1]
    return key if isinstance(key, str) else token[1:-1]
