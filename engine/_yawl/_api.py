"""The YAWL entry points: files and bytes in, :class:`YawlImport` or :class:`Spec` out, and back."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._errors import Problem, SpecError
from .._spec._model import Spec
from .._xml import DEFAULT_LIMITS, XmlLimits
from ._overrides import SUFFIX, Overrides
from ._read import read_yawl
from ._types import YawlImport
from ._write import export_yawl as _export

__all__ = ("export_yawl", "import_yawl", "load_yawl", "loads_yawl", "write_yawl")


def import_yawl(
    path: str | os.PathLike[str],
    *,
    overrides: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    limits: XmlLimits = DEFAULT_LIMITS,
) -> YawlImport:
    """Import the YAWL specification file at ``path``.

    Args:
        path: the ``.yawl`` (or YAWL ``.xml``) file; messages name it as given.
        overrides: CEL for expressions the importer cannot translate: the side file's data, or
            its path. Default: ``<path>.cel.yaml`` when that file exists.
        limits: caps on the XML (size, depth, elements).

    Returns:
        The spec, the root net's start data, each atomic task's default output, and the notes
        on what was not carried over.

    Raises:
        SpecError: the file is missing, unreadable, unsafe or malformed XML, not a YAWL
            specification, holds a predicate (or ``netparam`` timer, or MI bound) with no CEL
            translation and no override, or describes an invalid spec; each problem located.
    """
    source = os.fspath(path)
    file = Path(source)
    try:
        size = file.stat().st_size
        if size > limits.max_bytes:
            raise _error(
                source,
                f"the file is {size / 2**20:.1f} MiB, over the limit of {limits.max_bytes / 2**20:.1f} MiB",
                "check that this is the spec you meant",
            )
        data = file.read_bytes()
    except FileNotFoundError:
        raise _error(source, "no such file", f"check the path; relative paths start at {os.getcwd()}") from None
    except IsADirectoryError:
        raise _error(source, "is a directory, not a spec file", "name a .yawl file in it") from None
    except OSError as exc:
        raise _error(source, f"cannot read the file: {exc.strerror or exc}", "check its permissions") from None
    side = file.with_name(file.name + SUFFIX)
    found = _overrides(overrides, side)
    return read_yawl(
        data, source=source, overrides=found, side=str(side) if overrides is None else "the overrides", limits=limits
    )


def loads_yawl(
    data: bytes | str,
    *,
    source: str = "<string>",
    overrides: Mapping[str, Any] | None = None,
    limits: XmlLimits = DEFAULT_LIMITS,
) -> YawlImport:
    """Import YAWL specification XML given as bytes or text.

    Args:
        data: the XML.
        source: the name messages (and ``Spec.source``) give it.
        overrides: CEL overrides, in the side file's shape.
        limits: caps on the XML.

    Returns:
        As :func:`import_yawl`.

    Raises:
        SpecError: as for :func:`import_yawl`.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    found = _overrides(overrides, None)
    return read_yawl(raw, source=source, overrides=found, side="the overrides", limits=limits)


def load_yawl(file: Path, source: str) -> Spec:
    """The ``.yawl`` reader of ``yawlflow.load``: the spec of :func:`import_yawl`.

    Raises:
        SpecError: as for :func:`import_yawl`.
    """
    del file
    return import_yawl(source).spec


def export_yawl(spec: Spec) -> bytes:
    """Write ``spec`` as a YAWL 4.0 specification (UTF-8 XML) that YAWL's schema accepts.

    Raises:
        SpecError: the spec uses something YAWL cannot express (a trigger, a partial join, a
            CEL expression with no XPath form...); every such place is listed.
    """
    return _export(spec)


def write_yawl(spec: Spec, path: str | os.PathLike[str]) -> int:
    """Write ``spec`` as YAWL to ``path``; return the number of bytes written.

    Raises:
        SpecError: as for :func:`export_yawl`.
        OSError: the file cannot be written.
    """
    data = _export(spec)
    Path(path).write_bytes(data)
    return len(data)


def _overrides(given: Mapping[str, Any] | str | os.PathLike[str] | None, side: Path | None) -> Overrides | None:
    if given is None:
        return Overrides.read(side, str(side)) if side is not None else None
    if isinstance(given, Mapping):
        found = Overrides(given)
        if found.problems:
            raise SpecError(found.problems)
        return found
    path = Path(given)
    read = Overrides.read(path, os.fspath(given))
    if read is None:
        raise _error(os.fspath(given), "no such CEL overrides file", "check the path")
    return read


def _error(source: str, message: str, hint: str) -> SpecError:
    return SpecError([Problem(source=source, path="$", message=message, hint=hint)])
