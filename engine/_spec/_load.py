"""Loading specs: files, text and Python data in; a validated, normalised :class:`Spec` out.

Theory of operation: every way in ends in :func:`~._validate.validate`, which walks plain data
and raises one :class:`SpecError` listing every problem. What differs is how plain data is
made, and what can go wrong on the way, each turned into a located problem, never a traceback:

* :func:`load` picks a reader by the file's suffix from :data:`_LOADERS` (later work adds
  ``.yawl`` import and ``.ywc`` compiled specs there). It checks the file before reading a byte:
  that it exists, is a regular file, and is at most :data:`MAX_BYTES` long.
* JSON is read through an ``mmap`` and decoded by ``msgspec.json.decode`` straight from it,
  with no copy of the file. msgspec keeps no positions, so when a JSON spec has problems a
  second scan (``_jsonpos``) locates them; a valid spec never pays for it.
* YAML is composed from parser events (``_yaml``), which records every value's position and
  guards against deep nesting and alias bombs while parsing.
* Plain data from anywhere (JSON, or a caller's :func:`from_data`) is checked for nesting depth
  and size without recursion before it is walked.
"""

from __future__ import annotations

import mmap
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path as FilePath
from typing import Any, Literal

import msgspec

from .._errors import Problem, SpecError
from ._jsonpos import scan
from ._model import Spec
from ._report import LazyMarks, Reporter
from ._validate import validate
from ._yaml import MAX_DEPTH, compose

__all__ = ("MAX_BYTES", "MAX_VALUES", "from_data", "load", "loads")

MAX_BYTES = 16 * 1024 * 1024
"""A spec file or text longer than this (16 MiB) is refused before it is read."""

MAX_VALUES = 2_000_000
"""Plain data with more values than this is refused before it is walked."""

_EMPTY_HINT = "a spec starts with yawlflow: 1, then nets: {...}"
_DEPTH_HINT = "a spec needs about ten levels; flatten the data"

SpecReader = Callable[[FilePath, str], Spec]
"""Reads the spec file at a path; the second argument is its name for messages."""


def load(path: str | os.PathLike[str]) -> Spec:
    """Load, validate and normalise the spec file at ``path``.

    The reader is chosen by the file's suffix: ``.yaml`` / ``.yml``, ``.json``, ``.ywc`` (a
    compiled spec, written by ``yawlflow compile``; see :mod:`yawlflow._ywc`), or ``.yawl`` /
    ``.xml`` (a YAWL specification, imported; see :mod:`yawlflow._yawl`).

    Args:
        path: the spec file. Messages name it as given.

    Returns:
        The normalised spec; its ``source`` is ``path`` as given.

    Raises:
        SpecError: the suffix is not supported; the file is missing, a directory, unreadable,
            or larger than :data:`MAX_BYTES`; it is not UTF-8 or not valid YAML/JSON; or the
            spec is invalid; or a ``.ywc`` file is foreign, truncated, corrupted or from a newer
            yawlflow. ``problems`` lists every problem found, each located.
    """
    source = os.fspath(path)
    file = FilePath(source)
    suffix = file.suffix.lower()
    reader = _LOADERS.get(suffix)
    if reader is None:
        shown = repr(suffix) if suffix else "(none)"
        raise _error(
            source,
            f"unsupported spec file extension {shown}",
            f"use one of: {', '.join(sorted(_LOADERS))}",
        )
    _check_file(file, source)
    return reader(file, source)


def loads(
    text: str | bytes,
    *,
    source: str = "<string>",
    format: Literal["yaml", "json"] = "yaml",
) -> Spec:
    """Load, validate and normalise a spec from its text.

    Args:
        text: the YAML or JSON text (``bytes`` must be UTF-8).
        source: the name messages give it.
        format: ``"yaml"`` (the default) or ``"json"``.

    Returns:
        The normalised spec.

    Raises:
        SpecError: the text is longer than :data:`MAX_BYTES`, not UTF-8, not valid YAML/JSON,
            or the spec is invalid; ``problems`` lists every problem found, each located.
        ValueError: ``format`` is neither ``"yaml"`` nor ``"json"``.
    """
    if format not in ("yaml", "json"):
        raise ValueError(f"format must be 'yaml' or 'json', not {format!r}")
    if len(text) > MAX_BYTES:
        raise _too_big(source, len(text))
    if isinstance(text, bytes):
        return _from_json(text, source) if format == "json" else _from_yaml(_decode(text, source), source)
    encoded = _encode(text, source)
    return _from_json(encoded, source) if format == "json" else _from_yaml(text, source)


def from_data(data: Mapping[str, Any], *, source: str = "<string>") -> Spec:
    """Validate and normalise a spec given as plain data (the decoded YAML/JSON document).

    Args:
        data: mappings, lists, strings, numbers and booleans, in the file format's shape.
        source: the name messages give it.

    Returns:
        The normalised spec.

    Raises:
        SpecError: the data nests deeper than the spec format allows, is too large, or the
            spec is invalid; ``problems`` lists every problem found.
    """
    _check_nesting(data, source)
    return validate(data, Reporter(source))


# -- files ----------------------------------------------------------------------------------------


def _error(
    source: str, message: str, hint: str = "", line: int | None = None, column: int | None = None
) -> SpecError:
    return SpecError([Problem(source=source, path="$", message=message, hint=hint, line=line, column=column)])


def _too_big(source: str, size: int) -> SpecError:
    return _error(
        source,
        f"the spec is {size / 2**20:.1f} MiB, over the limit of {MAX_BYTES // 2**20} MiB",
        "check that this is the spec you meant; split a spec this large into several",
    )


def _check_file(file: FilePath, source: str) -> None:
    """Refuse a missing, special or oversized file before reading it."""
    try:
        info = file.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise _error(
            source, "no such file", f"check the path; relative paths start at {os.getcwd()}"
        ) from None
    except PermissionError:
        raise _error(source, "cannot read the file: permission denied", "check its permissions") from None
    except OSError as exc:
        raise _error(source, f"cannot read the file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise _error(source, "is a directory, not a spec file", "name a .yaml or .json file in it")
    if not stat.S_ISREG(info.st_mode):
        raise _error(source, "not a regular file", "name a .yaml or .json file")
    if info.st_size > MAX_BYTES:
        raise _too_big(source, info.st_size)


def _read(file: FilePath, source: str) -> bytes:
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _error(source, f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:  # it grew since it was checked
        raise _too_big(source, len(raw))
    return raw


def _load_yaml(file: FilePath, source: str) -> Spec:
    return _from_yaml(_decode(_read(file, source), source), source)


def _load_json(file: FilePath, source: str) -> Spec:
    try:
        with file.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_BYTES:
                raise _too_big(source, size)
            if size == 0:
                raise _error(source, "the spec is empty", _EMPTY_HINT)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return _from_json(mapped, source)
    except OSError as exc:
        raise _error(source, f"cannot read the file: {exc.strerror or exc}") from None


def _load_ywc(file: FilePath, source: str) -> Spec:
    from .._ywc import _read_file  # numpy and the compiler load only when a .ywc file is read

    return _read_file(file, source)


def _load_yawl(file: FilePath, source: str) -> Spec:
    from .._yawl import load_yawl  # the XML reader loads only when a YAWL file is read

    return load_yawl(file, source)


_LOADERS: dict[str, SpecReader] = {
    ".json": _load_json,
    ".yaml": _load_yaml,
    ".yml": _load_yaml,
    ".ywc": _load_ywc,
    ".yawl": _load_yawl,
    ".xml": _load_yawl,  # YAWL Beta editors saved specifications as .xml
}
"""Spec readers by lower-case file suffix: the extension point for ``.yawl`` and ``.ywc``."""


# -- text -----------------------------------------------------------------------------------------


def _decode(raw: bytes | memoryview, source: str) -> str:
    """UTF-8 bytes (a byte-order mark is dropped) to text, or a problem at the first bad byte."""
    try:
        return bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        data = bytes(raw)
        offset = exc.start
        line = data.count(b"\n", 0, offset) + 1
        column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        raise _error(
            source,
            f"not UTF-8: byte 0x{data[offset]:02x} at offset {offset} ({exc.reason})",
            "save the file as UTF-8",
            line,
            column,
        ) from None


def _encode(text: str, source: str) -> bytes:
    """Text to UTF-8, or a problem at a character that has no UTF-8 form (a lone surrogate)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        offset = exc.start
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise _error(
            source,
            f"the text holds {text[offset]!r} at character {offset}, which is not valid Unicode",
            "decode the file as UTF-8 without surrogateescape",
            line,
            column,
        ) from None


def _from_yaml(text: str, source: str) -> Spec:
    data, marks, problems = compose(text, source)
    report = Reporter(source, marks)
    report.problems.extend(problems)
    if data is None:
        report.error((), "the spec is empty", _EMPTY_HINT)
        raise SpecError(report.sorted_problems())
    return validate(data, report)


_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")
_MSGSPEC_PATH = re.compile(r" - at `[^`]*`")


def _from_json(buffer: bytes | mmap.mmap, source: str) -> Spec:
    with memoryview(buffer) as whole:
        view = whole[3:] if whole[:3].tobytes() == b"\xef\xbb\xbf" else whole
        try:
            return _from_json_view(view, source)
        finally:
            view.release()


def _from_json_view(view: memoryview, source: str) -> Spec:
    try:
        data = msgspec.json.decode(view)
    except RecursionError:
        raise _error(source, f"nesting deeper than {MAX_DEPTH} levels", _DEPTH_HINT) from None
    except UnicodeDecodeError:
        _decode(view, source)  # raises, located at the first bad byte
        raise  # pragma: no cover - _decode found nothing wrong after all
    except msgspec.DecodeError as exc:
        raw = bytes(view)
        if not raw.strip():
            raise _error(source, "the spec is empty", _EMPTY_HINT) from None
        found = _BYTE_OFFSET.search(str(exc))
        offset = int(found.group(1)) if found else len(raw.rstrip())
        line = raw.count(b"\n", 0, offset) + 1
        column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
        reason = str(exc).removeprefix("JSON is malformed: ")
        reason = _MSGSPEC_PATH.sub("", _BYTE_OFFSET.sub("", reason)).strip()
        if reason == "Input data was truncated":
            reason = "the JSON ends too early"
        raise _error(
            source, f"JSON syntax error: {reason}", "check the brackets and commas near here", line, column
        ) from None
    if data is None:
        raise _error(source, "the spec is empty", _EMPTY_HINT)
    _check_nesting(data, source)
    report = Reporter(source, LazyMarks(lambda: scan(bytes(view).decode("utf-8", "replace"))))
    return validate(data, report)


def _check_nesting(data: Any, source: str) -> None:
    """Refuse data nested deeper than the YAML reader allows, or too large, without recursing."""
    if not _is_container(data):
        return
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen = 1
    while stack:
        value, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise _error(source, f"nesting deeper than {MAX_DEPTH} levels", _DEPTH_HINT)
        children = value.values() if isinstance(value, Mapping) else value
        seen += len(children)
        if seen > MAX_VALUES:
            raise _error(
                source, f"more than {MAX_VALUES:,} values", "a spec this large is not a spec; check the data"
            )
        stack.extend((child, depth + 1) for child in children if _is_container(child))


def _is_container(value: Any) -> bool:
    if isinstance(value, dict | list | tuple):  # the fast, common case: no ABC check
        return True
    return (
        not isinstance(value, str | int | float | bytes) and value is not None and isinstance(value, Mapping)
    )
