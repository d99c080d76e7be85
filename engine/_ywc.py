"""``.ywc`` compiled specs: one file holding a spec and its nets' kernel arrays, read zero-copy.

Theory of operation. ``yawlflow compile`` writes, and :func:`read_ywc` maps back, one file:

=========  ======================================================================================
offset     contents (integers little-endian; every section starts 8-byte aligned)
=========  ======================================================================================
0          header, :data:`HEADER_SIZE` (128) bytes: magic ``b"YWC\\0"``, format version (u16),
           flags (u16, none defined: must be 0), the file's length (u64), SHA-256 of the spec
           section, SHA-256 of everything from the net table to the end, the spec section's
           offset and length, the net table's offset and length (u64 each), the number of nets
           (u32), 12 reserved zero bytes
128        the spec: its canonical JSON (below), UTF-8
table      one 200-byte record per net, in the spec's order: places, tasks (u32 each), then for
           each of the eight arrays of :class:`~yawlflow._hotpath.KernelNet` (``preset_ptr``,
           ``preset_idx``, ``join_code``, ``join_n``, ``cancel_ptr``, ``cancel_idx`` as ``<i4``;
           ``region_places``, ``region_tasks`` as ``<u8`` bitset rows): its offset, rows and
           columns (u64 each; 0 columns: one-dimensional)
arrays     the arrays' bytes, each at its recorded offset
=========  ======================================================================================

The *canonical spec JSON* is msgspec's JSON of the normalised :class:`Spec` with ``source``
blanked and every field equal to its default left out, fields in declaration order, mappings in
the order written. It decodes straight back to the Struct (``msgspec.json.decode(..., type=Spec)``,
which fills the defaults) with no validation pass: the spec was validated when it was compiled,
the hash says these are the bytes that were written, and typed decoding still refuses anything
that is not the model's shape. That is most of why a ``.ywc`` file loads about 20x faster than
its JSON and 50x faster than its YAML (docs/adr/0003-compiled-specs-and-json-decoding.md).

Reading maps the file once (``mmap``, read-only) and never copies it: the spec is decoded from
a memoryview of the map, and each array is ``numpy.frombuffer`` over the map, so it is read-only
and its memory is the page cache's, shared by every process that maps the same file. The arrays
keep the map alive; :func:`~yawlflow._compiled.attach_kernels` hands them to ``compile_spec``,
which uses them as they are. Every check runs before the Spec is returned, and a failed one raises
:class:`SpecError` naming the file, what is wrong, and the command that fixes it.

A changed array layout or compiler numbering must bump :data:`FORMAT_VERSION`: old files then
ask to be recompiled instead of running with arrays that no longer fit.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import struct
from functools import cache
from pathlib import Path as FilePath
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from ._compiled import attach_kernels, compile_spec
from ._errors import Problem, SpecError
from ._hotpath import KernelNet
from ._spec._load import MAX_BYTES, _check_file
from ._spec._model import Spec

__all__ = ("FORMAT_VERSION", "HEADER_SIZE", "MAGIC", "canonical_json", "read_ywc", "write_ywc")

MAGIC: Final = b"YWC\0"
"""The first four bytes of every ``.ywc`` file."""

FORMAT_VERSION: Final = 1
"""The format this yawlflow writes and the newest it reads."""

HEADER_SIZE: Final = 128

_HEADER: Final = struct.Struct("<4sHHQ32s32sQQQQI12x")
_NET: Final = struct.Struct("<II")
_ARRAY: Final = struct.Struct("<QQQ")
_ARRAYS: Final = (
    ("preset_ptr", "<i4"),
    ("preset_idx", "<i4"),
    ("join_code", "<i4"),
    ("join_n", "<i4"),
    ("cancel_ptr", "<i4"),
    ("cancel_idx", "<i4"),
    ("region_places", "<u8"),
    ("region_tasks", "<u8"),
)
_RECORD_SIZE: Final = _NET.size + len(_ARRAYS) * _ARRAY.size
_KNOWN_FLAGS: Final = 0
_ALIGN: Final = 8

_COMPILE_HINT = "compile it with `yawlflow compile SPEC -o X.ywc`"
_RECOMPILE = "the file is corrupted; recompile it with `yawlflow compile SPEC -o X.ywc`"

assert _HEADER.size == HEADER_SIZE  # noqa: S101 - a layout invariant, checked once at import


# -- writing ---------------------------------------------------------------------------------------


def canonical_json(spec: Spec) -> bytes:
    """The canonical JSON of ``spec``: what a ``.ywc`` file stores and its spec hash covers.

    Args:
        spec: a normalised spec.

    Returns:
        msgspec's JSON of the spec's fields in declaration order, leaving out ``source`` and
        every field equal to its default; ``msgspec.json.decode(text, type=Spec)`` gives the
        spec back, with ``source`` at its default.
    """
    return msgspec.json.encode(_compact(msgspec.structs.replace(spec, source="<string>")))


def write_ywc(spec: Spec, path: str | os.PathLike[str]) -> int:
    """Compile ``spec`` and write it, with its nets' kernel arrays, as a ``.ywc`` file at ``path``.

    The file is written next to ``path`` under a temporary name and then renamed over it, so a
    reader never sees half a file, and a process that has the old file mapped keeps reading the
    old bytes instead of faulting.

    Args:
        spec: a validated spec, as :func:`yawlflow.load` returns it.
        path: the file to write (replaced if it exists).

    Returns:
        The number of bytes written.

    Raises:
        SpecError: the spec does not compile (a flow into a missing place...), or the file
            would be larger than :data:`~yawlflow._spec.MAX_BYTES`, so it could not be loaded.
        OSError: the file cannot be written.
    """
    compiled = compile_spec(spec)
    text = canonical_json(spec)
    spec_offset = HEADER_SIZE
    table_offset = _aligned(spec_offset + len(text))
    table_length = _RECORD_SIZE * len(spec.nets)
    blobs: list[tuple[int, bytes]] = []
    records: list[bytes] = []
    cursor = _aligned(table_offset + table_length)
    for net in spec.nets:
        kernel = compiled.net(net.name).kernel
        record = [_NET.pack(kernel.n_places, kernel.n_tasks)]
        for name, dtype in _ARRAYS:
            array = np.ascontiguousarray(getattr(kernel, name), dtype=dtype)
            rows, cols = (array.shape[0], 0) if array.ndim == 1 else array.shape
            record.append(_ARRAY.pack(cursor, rows, cols))
            blobs.append((cursor, array.tobytes()))
            cursor = _aligned(cursor + array.nbytes)
        records.append(b"".join(record))
    size = blobs[-1][0] + len(blobs[-1][1]) if blobs else table_offset + table_length
    if size > MAX_BYTES:
        raise SpecError(
            [
                Problem(
                    source=spec.source,
                    path="$",
                    message=f"compiled, the spec is {size / 2**20:.1f} MiB, over the limit of "
                    f"{MAX_BYTES // 2**20} MiB that loading allows",
                    hint="split a spec this large into several",
                )
            ]
        )
    body = bytearray(size - HEADER_SIZE)
    body[: len(text)] = text
    tables = b"".join(records)
    body[table_offset - HEADER_SIZE : table_offset - HEADER_SIZE + len(tables)] = tables
    for offset, blob in blobs:
        body[offset - HEADER_SIZE : offset - HEADER_SIZE + len(blob)] = blob
    header = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        0,
        size,
        hashlib.sha256(text).digest(),
        hashlib.sha256(memoryview(body)[table_offset - HEADER_SIZE :]).digest(),
        spec_offset,
        len(text),
        table_offset,
        table_length,
        len(spec.nets),
    )
    _replace(FilePath(os.fspath(path)), header, body)
    return size


def _replace(target: FilePath, *chunks: bytes | bytearray) -> None:
    """Write ``chunks`` to a new file beside ``target``, then rename it over ``target``."""
    # os.open with mode 0o666 lets the umask decide the permissions, as for any file written
    # with open(); tempfile.mkstemp would make a private 0o600 file.
    temp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


@cache
def _defaults(kind: type[msgspec.Struct]) -> tuple[tuple[str, str, bool, Any], ...]:
    """Per field of a Struct type: name, encoded name, whether it has a default, the default."""
    out = []
    for field in msgspec.structs.fields(kind):
        if field.default is not msgspec.NODEFAULT:
            out.append((field.name, field.encode_name, True, field.default))
        elif field.default_factory is not msgspec.NODEFAULT:
            out.append((field.name, field.encode_name, True, field.default_factory()))
        else:
            out.append((field.name, field.encode_name, False, None))
    return tuple(out)


def _compact(value: Any) -> Any:
    """A Struct tree as plain data, each field equal to its default (same type, same value) left out."""
    if isinstance(value, msgspec.Struct):
        out: dict[str, Any] = {}
        for name, encoded, has_default, default in _defaults(type(value)):
            field = getattr(value, name)
            if has_default and type(field) is type(default) and field == default:
                continue
            out[encoded] = _compact(field)
        return out
    if isinstance(value, tuple | list):
        return [_compact(v) for v in value]
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    return value


# -- reading ---------------------------------------------------------------------------------------


def read_ywc(path: str | os.PathLike[str]) -> Spec:
    """Read the ``.ywc`` file at ``path``: its spec, with its nets' kernel arrays attached.

    The file is mapped read-only and never copied: the arrays are ``numpy.frombuffer`` views on
    the map (read-only), which :func:`~yawlflow._compiled.compile_spec` then uses as they are.

    Args:
        path: the file, whatever its suffix. Messages name it as given.

    Returns:
        The spec, equal to the one compiled, with ``source`` set to ``path`` as given.

    Raises:
        SpecError: the file is missing, a directory, unreadable or too large; it is empty or not
            a ``.ywc`` file (wrong magic); it was written by a newer yawlflow (format version or
            flags); it is truncated or longer than its header says; a hash does not match (it is
            corrupted); or its sections do not fit each other. The message names the file, what
            is wrong, and the command that fixes it.
    """
    source = os.fspath(path)
    file = FilePath(source)
    _check_file(file, source)
    return _read_file(file, source)


def _read_file(file: FilePath, source: str) -> Spec:
    """Map and read a file that ``_check_file`` accepted."""
    try:
        with file.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                raise _error(source, f"the file is empty, not a .ywc file: {_COMPILE_HINT}")
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise _error(source, f"cannot read the file: {exc.strerror or exc}") from None
    # The map outlives this function only through the arrays' views on it (and closes with them).
    with memoryview(mapped) as view:
        header = _check_header(view, source)
        spec = _decode_spec(view, header, source)
        kernels = _arrays(mapped, view, header, spec, source)
    attach_kernels(spec, kernels)
    return spec


class _Header(msgspec.Struct, frozen=True):
    version: int
    flags: int
    size: int
    spec_hash: bytes
    arrays_hash: bytes
    spec_offset: int
    spec_length: int
    table_offset: int
    table_length: int
    n_nets: int


def _check_header(view: memoryview, source: str) -> _Header:
    size = len(view)
    magic = view[: len(MAGIC)].tobytes()
    if magic != MAGIC:
        raise _error(source, f"not a .ywc file (magic {magic!r}): {_COMPILE_HINT}", _looks_like(magic))
    if size < HEADER_SIZE:
        raise _error(
            source,
            f"truncated: a .ywc header is {HEADER_SIZE} bytes, the file has {size:,}: {_RECOMPILE}",
        )
    fields = _HEADER.unpack_from(view)
    header = _Header(*fields[1:])
    if header.version > FORMAT_VERSION:
        raise _error(
            source,
            f"written by a newer yawlflow: format version {header.version}, and this one reads up to "
            f"{FORMAT_VERSION}: upgrade yawlflow (pip install -U yawlflow), or recompile the spec with "
            "this one: `yawlflow compile SPEC -o X.ywc`",
        )
    if header.version < 1:
        raise _error(source, f"format version {header.version} was never written: {_RECOMPILE}")
    if header.flags & ~_KNOWN_FLAGS:
        raise _error(
            source,
            f"unknown flags 0x{header.flags:04x} (written by a newer yawlflow?): upgrade yawlflow, "
            "or recompile the spec with this one: `yawlflow compile SPEC -o X.ywc`",
        )
    if size < header.size:
        raise _error(
            source,
            f"truncated: the header says the file is {header.size:,} bytes, it has {size:,} "
            "(an interrupted copy or write?): recompile it with `yawlflow compile SPEC -o X.ywc`",
        )
    if size > header.size:
        raise _error(
            source, f"{size - header.size:,} bytes past the end the header gives ({header.size:,}): {_RECOMPILE}"
        )
    spec_end = header.spec_offset + header.spec_length
    table_end = header.table_offset + header.table_length
    layout_ok = (
        header.spec_offset == HEADER_SIZE
        and spec_end <= header.table_offset
        and header.table_offset % _ALIGN == 0
        and header.table_length == header.n_nets * _RECORD_SIZE
        and table_end <= header.size
        and not any(view[spec_end : header.table_offset])  # the padding is zeros
    )
    if not layout_ok:
        raise _error(
            source,
            f"the header's sections do not fit the file (spec {header.spec_offset:,}+{header.spec_length:,}, "
            f"net table {header.table_offset:,}+{header.table_length:,}, file {header.size:,} bytes): {_RECOMPILE}",
        )
    if hashlib.sha256(view[header.spec_offset : spec_end]).digest() != header.spec_hash:
        raise _error(source, f"spec hash mismatch: {_RECOMPILE}")
    if hashlib.sha256(view[header.table_offset :]).digest() != header.arrays_hash:
        raise _error(source, f"array hash mismatch: {_RECOMPILE}")
    return header


def _looks_like(magic: bytes) -> str:
    """A hint for a foreign file that is recognisably something else."""
    text = magic.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text[:1] in (b"{", b"["):
        return "it looks like JSON: name a JSON spec .json"
    if text[:1] == b"<":
        return "it looks like XML: a YAWL spec is .yawl"
    if text and all(32 <= c < 127 or c in b"\t\r\n" for c in magic):
        return "it looks like text: name a YAML spec .yaml"
    return ""


def _decode_spec(view: memoryview, header: _Header, source: str) -> Spec:
    text = view[header.spec_offset : header.spec_offset + header.spec_length]
    try:
        spec = msgspec.json.decode(text, type=Spec)
    except msgspec.DecodeError as exc:  # only a forged hash, or a model this yawlflow lacks, gets here
        raise _error(source, f"the spec section does not decode ({exc}): {_RECOMPILE}") from None
    finally:
        text.release()
    if len(spec.nets) != header.n_nets:
        raise _error(source, f"the spec has {len(spec.nets)} nets, the net table {header.n_nets}: {_RECOMPILE}")
    return msgspec.structs.replace(spec, source=source)


def _arrays(mapped: mmap.mmap, view: memoryview, header: _Header, spec: Spec, source: str) -> dict[str, KernelNet]:
    """Each net's KernelNet, its arrays views on ``mapped``, after checking every size and offset."""
    kernels: dict[str, KernelNet] = {}
    table_end = header.table_offset + header.table_length
    for i, net in enumerate(spec.nets):
        at = header.table_offset + i * _RECORD_SIZE
        n_places, n_tasks = _NET.unpack_from(view, at)
        where = f"net {net.name!r}"
        if n_tasks != len(net.tasks) or n_places < 2:
            raise _error(
                source,
                f"{where}: the net table says {n_tasks} tasks and {n_places} places, the spec has "
                f"{len(net.tasks)} tasks: {_RECOMPILE}",
            )
        arrays: dict[str, npt.NDArray[Any]] = {}
        for j, (name, dtype) in enumerate(_ARRAYS):
            offset, rows, cols = _ARRAY.unpack_from(view, at + _NET.size + j * _ARRAY.size)
            itemsize = np.dtype(dtype).itemsize
            count = rows * max(cols, 1)
            if offset % _ALIGN or offset < table_end or offset + count * itemsize > header.size:
                raise _error(
                    source,
                    f"{where}: array {name} ({count:,} x {itemsize} bytes at offset {offset:,}) does not "
                    f"fit the file of {header.size:,} bytes: {_RECOMPILE}",
                )
            array = np.frombuffer(mapped, dtype=dtype, count=count, offset=offset)
            arrays[name] = array.reshape(rows, cols) if cols else array
        _check_shapes(arrays, n_places, n_tasks, f"{where}", source)
        kernels[net.name] = KernelNet(n_places=n_places, n_tasks=n_tasks, **arrays)
    return kernels


def _check_shapes(arrays: dict[str, npt.NDArray[Any]], n_places: int, n_tasks: int, where: str, source: str) -> None:
    """The shapes CompiledNet gives its arrays, and CSR rows that stay in their index arrays."""
    words_p, words_t = max(1, (n_places + 63) // 64), max(1, (n_tasks + 63) // 64)
    wanted: dict[str, tuple[int, ...]] = {
        "join_code": (n_tasks,),
        "join_n": (n_tasks,),
        "region_places": (len(arrays["region_places"]), words_p),
        "region_tasks": (len(arrays["region_places"]), words_t),
    }
    for kind in ("preset", "cancel"):
        ptr = arrays[f"{kind}_ptr"]
        wanted[f"{kind}_ptr"] = (n_tasks + 1,)
        if ptr.shape == (n_tasks + 1,):
            wanted[f"{kind}_idx"] = (int(ptr[-1]),)
            if ptr[0] != 0 or bool(np.any(np.diff(ptr) < 0)):
                raise _error(source, f"{where}: {kind}_ptr is not a CSR row pointer: {_RECOMPILE}")
            idx = arrays[f"{kind}_idx"]
            if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n_places):
                raise _error(source, f"{where}: {kind}_idx names a place past the net's {n_places}: {_RECOMPILE}")
    bad = [
        f"{name} is {arrays[name].shape}, not {shape}" for name, shape in wanted.items() if arrays[name].shape != shape
    ]
    if bad:
        raise _error(source, f"{where}: {'; '.join(bad)}: {_RECOMPILE}")


def _error(source: str, message: str, hint: str = "") -> SpecError:
    return SpecError([Problem(source=source, path="$", message=message, hint=hint)])
