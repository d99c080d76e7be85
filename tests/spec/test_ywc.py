"""``.ywc`` compiled specs: exact round trips, zero-copy read-only arrays, clear errors, the CLI.

A ``.ywc`` file must give back the very Spec it was compiled from, hand the runner the arrays the
compiler would have built (as views on the file's map, not copies), and run cases to the same
traces. Every way a file can be wrong gives a SpecError naming the file, the fault and the fix.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import random
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import msgspec
import numpy as np
import pytest

import yawlflow as yf
from yawlflow import SpecError
from yawlflow._case import Result
from yawlflow._compiled import (
    _PRECOMPILED,
    CompiledNet,
    CompiledSpec,
    attach_kernels,
    compile_spec,
    precompiled_kernels,
)
from yawlflow._spec import Spec, loads
from yawlflow._ywc import _HEADER, _NET, _RECORD_SIZE, FORMAT_VERSION, HEADER_SIZE, MAGIC, read_ywc, write_ywc
from yawlflow.cli import EXIT_BAD_INPUT, EXIT_COMPLETED, main
from yawlflow.patterns import PATTERNS, run_pattern
from yawlflow.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
ORDERS = ROOT / "examples" / "orders.yaml"
KERNEL_ARRAYS = (
    "preset_ptr",
    "preset_idx",
    "join_code",
    "join_n",
    "cancel_ptr",
    "cancel_idx",
    "region_places",
    "region_tasks",
)
# Everything CompiledNet derives from a spec that the runner reads, besides the kernel arrays.
NET_TABLES = (
    "place_names",
    "task_names",
    "n_places",
    "n_tasks",
    "preset",
    "consumers",
    "producers",
    "join",
    "join_n",
    "split",
    "split_n",
    "kind",
    "cancel_places",
    "cancel_tasks",
    "cancel_case",
    "milestone",
    "mutex_of",
    "mutex_regions",
    "orjoin_regions",
    "region_tasks_of",
    "region_places_of",
    "partial_branches",
)


def corpus() -> list[Any]:
    """Every spec we have: the examples, the test data, and the 43 patterns' catalogue specs."""
    files = sorted([*ROOT.glob("examples/*.yaml"), *DATA.glob("*.yaml")])
    return [
        *(pytest.param(path, id=f"{path.parent.name}/{path.name}") for path in files if path.name != "yawlflow.yaml"),
        *(pytest.param(number, id=f"wcp{number:02d}") for number in PATTERNS),
    ]


def spec_of(which: Path | int) -> Spec:
    return yf.load(which) if isinstance(which, Path) else PATTERNS[which].load()


def compiled(tmp_path: Path, spec: Spec, name: str = "x.ywc") -> Path:
    path = tmp_path / name
    write_ywc(spec, path)
    return path


def mapped_by(array: np.ndarray[Any, Any]) -> object:
    """What an array's memory belongs to, at the end of its ``base`` chain."""
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


@pytest.fixture
def orders() -> Spec:
    return yf.load(ORDERS)


@pytest.fixture
def orders_ywc(tmp_path: Path, orders: Spec) -> Path:
    return compiled(tmp_path, orders, "orders.ywc")


# -- round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", corpus())
def test_round_trip_gives_the_same_spec(tmp_path: Path, which: Path | int) -> None:
    spec = spec_of(which)
    path = compiled(tmp_path, spec)
    loaded = yf.load(path)
    assert loaded.source == str(path)
    assert msgspec.structs.replace(loaded, source=spec.source) == spec
    assert read_ywc(path) == loaded


@pytest.mark.parametrize("which", corpus())
def test_round_trip_gives_the_same_compiled_nets(tmp_path: Path, which: Path | int) -> None:
    spec = spec_of(which)
    fresh = compile_spec(spec)
    from_file = compile_spec(yf.load(compiled(tmp_path, spec)))
    assert list(from_file.nets) == list(fresh.nets)
    for name, net in fresh.nets.items():
        other = from_file.nets[name]
        for attr in NET_TABLES:
            assert getattr(other, attr) == getattr(net, attr), f"net {name}: {attr}"
        for attr in KERNEL_ARRAYS:
            want, got = getattr(net.kernel, attr), getattr(other.kernel, attr)
            assert got.dtype == want.dtype and got.shape == want.shape, f"net {name}: {attr}"
            assert np.array_equal(got, want), f"net {name}: {attr}"
        assert (other.kernel.n_places, other.kernel.n_tasks) == (net.kernel.n_places, net.kernel.n_tasks)


def test_compile_spec_uses_the_files_arrays(orders_ywc: Path) -> None:
    loaded = yf.load(orders_ywc)
    kernels = precompiled_kernels(loaded)
    assert kernels is not None
    net = compile_spec(loaded).net("main")
    assert net.kernel is kernels["main"]  # used as read, not compiled again
    assert net.kernel.region_places.shape[0] > 0  # orders.yaml has an OR-join: bitsets too
    for attr in KERNEL_ARRAYS:
        assert isinstance(mapped_by(getattr(net.kernel, attr)), mmap.mmap), attr


def test_arrays_are_read_only_views_on_the_map(orders_ywc: Path) -> None:
    kernel = compile_spec(yf.load(orders_ywc)).net("main").kernel
    for attr in KERNEL_ARRAYS:
        array = getattr(kernel, attr)
        assert array.flags.writeable is False, attr
        assert array.flags.c_contiguous, attr
        assert isinstance(mapped_by(array), mmap.mmap), attr
        assert array.ctypes.data % 8 == 0, f"{attr} is not 8-byte aligned"
    with pytest.raises(ValueError, match="read-only"):
        kernel.preset_ptr[0] = 7


def test_same_trace_as_the_yaml(orders: Spec, orders_ywc: Path) -> None:
    want = yf.run(orders, seed=7)
    got = yf.run(yf.load(orders_ywc), seed=7)
    assert want.status == "completed"
    assert (got.status, got.data, got.trace) == (want.status, want.data, want.trace)
    assert yf.run(str(orders_ywc), seed=7).trace == want.trace  # a path works too


def run_with(number: int, spec: Spec, seed: int) -> Result:
    """``run_pattern``, but starting the case of the given spec."""
    pattern = PATTERNS[number]

    async def go() -> Result:
        async with yf.Engine(seed=seed, clock=FakeClock(autojump=True), handlers=pattern.handlers) as engine:
            case = await engine.start(spec, dict(pattern.data))
            if pattern.drive is not None:
                await pattern.drive(case, random.Random(seed))
            return await case._settled()

    return anyio.run(go)


@pytest.mark.parametrize("number", list(PATTERNS), ids=[f"wcp{n:02d}" for n in PATTERNS])
def test_every_pattern_runs_the_same_from_its_ywc(tmp_path: Path, number: int) -> None:
    spec = yf.load(compiled(tmp_path, PATTERNS[number].load()))
    want = run_pattern(number, seed=5)
    got = run_with(number, spec, seed=5)
    assert (got.status, got.data, got.trace) == (want.status, want.data, want.trace)


def test_pure_python_kernels_read_the_mapped_arrays(orders: Spec, orders_ywc: Path) -> None:
    code = (
        "import sys, yawlflow as yf, yawlflow._hotpath as h; "
        "assert h.IMPLEMENTATION == 'python', h.IMPLEMENTATION; "
        "print(yf.run(yf.load(sys.argv[1]), seed=7).trace == yf.run(yf.load(sys.argv[2]), seed=7).trace)"
    )
    env = {**os.environ, "YAWLFLOW_PURE_PYTHON": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(orders_ywc), str(ORDERS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "True"), done.stderr


def test_file_layout(orders: Spec, orders_ywc: Path) -> None:
    raw = orders_ywc.read_bytes()
    assert raw[:4] == MAGIC == b"YWC\0"
    fields = _HEADER.unpack_from(raw)
    version, flags, size, spec_hash, _, spec_offset, spec_length, table_offset, table_length, n_nets = fields[1:]
    assert (version, flags, size, n_nets) == (FORMAT_VERSION, 0, len(raw), 1)
    assert spec_offset == HEADER_SIZE and table_offset % 8 == 0 and table_length == _RECORD_SIZE
    text = raw[spec_offset : spec_offset + spec_length]
    assert hashlib.sha256(text).digest() == spec_hash
    assert msgspec.json.decode(text, type=Spec) == msgspec.structs.replace(orders, source="<string>")
    assert b'"source"' not in text and b'"critical"' not in text  # defaults are left out
    for j in range(8):
        offset, _, _ = struct.unpack_from("<QQQ", raw, table_offset + _NET.size + 24 * j)
        assert offset % 8 == 0


def test_writing_is_deterministic(tmp_path: Path, orders: Spec) -> None:
    assert compiled(tmp_path, orders, "a.ywc").read_bytes() == compiled(tmp_path, orders, "b.ywc").read_bytes()


def test_writing_replaces_atomically(tmp_path: Path, orders: Spec) -> None:
    path = compiled(tmp_path, orders, "orders.ywc")
    old = compile_spec(yf.load(path)).net("main").kernel
    before = old.preset_idx.copy()
    other = loads("yawlflow: 1\nid: tiny\nnets:\n  main: {input: s, output: e, tasks: {t: {flows: [e]}}}\n")
    write_ywc(other, path)  # over a file this process has mapped: the old map keeps its bytes
    assert np.array_equal(old.preset_idx, before)
    assert yf.load(path).id == "tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orders.ywc"]  # no temporary left


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_written_file_follows_the_umask(tmp_path: Path, orders: Spec) -> None:
    old = os.umask(0o027)
    try:
        path = compiled(tmp_path, orders)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640  # like open(): not tempfile's private 0o600


def test_a_spec_too_large_to_load_is_not_written(tmp_path: Path, orders: Spec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("yawlflow._ywc.MAX_BYTES", 1024)
    with pytest.raises(SpecError, match=r"compiled, the spec is 0\.0 MiB, over the limit"):
        write_ywc(orders, tmp_path / "x.ywc")
    assert not list(tmp_path.iterdir())


# -- the precompiled-arrays registry --------------------------------------------------------------


def test_registry_forgets_specs_nobody_holds(tmp_path: Path, orders_ywc: Path) -> None:
    kept = yf.load(orders_ywc)
    for _ in range(10):
        yf.load(orders_ywc)  # each dropped at once
    mine = [spec for spec, _ in _PRECOMPILED.values() if spec.source == str(orders_ywc)]
    # `kept`, and the last one loaded (until the next registration drops it)
    assert len(mine) == 2, "specs nobody holds are dropped on the next registration"
    assert any(spec is kept for spec in mine)
    assert precompiled_kernels(kept) is not None


def test_arrays_that_do_not_fit_the_net_are_refused(tmp_path: Path, orders: Spec) -> None:
    tiny = loads("yawlflow: 1\nid: tiny\nnets:\n  main: {input: s, output: e, tasks: {t: {flows: [e]}}}\n")
    attach_kernels(tiny, {"main": compile_spec(orders).net("main").kernel})
    with pytest.raises(
        SpecError,
        match=(
            r"^<string>: \$\.nets\.main: the compiled arrays do not fit the net: 13 places, 8 tasks and "
            r"3 OR-join regions in the file, 2, 1 and 0 in its spec \(recompile it: yawlflow compile"
        ),
    ):
        CompiledSpec(tiny)


def test_arrays_with_other_join_codes_are_refused() -> None:
    text = (
        "yawlflow: 1\nid: j\nnets:\n  main:\n    input: s\n    output: e\n    tasks:\n"
        "      t: {flows: [u, v]}\n      u: {flows: [w]}\n      v: {flows: [w]}\n      w: {join: JOIN, flows: [e]}\n"
    )
    and_join, xor_join = loads(text.replace("JOIN", "and")), loads(text.replace("JOIN", "xor"))
    attach_kernels(xor_join, {"main": compile_spec(and_join).net("main").kernel})
    with pytest.raises(SpecError, match=r"the compiled arrays do not fit the net: the join codes differ"):
        compile_spec(xor_join)


def test_a_spec_without_arrays_still_compiles(orders: Spec) -> None:
    assert precompiled_kernels(orders) is None
    assert isinstance(compile_spec(orders).net("main"), CompiledNet)


# -- broken files ---------------------------------------------------------------------------------


def error_of(path: Path | str) -> str:
    with pytest.raises(SpecError) as info:
        yf.load(path)
    assert len(info.value.problems) == 1
    return str(info.value)


def patched(path: Path, offset: int, data: bytes) -> Path:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))
    return path


def rehashed(path: Path) -> Path:
    """Recompute both hashes, as a forger (or a buggy writer) would."""
    raw = bytearray(path.read_bytes())
    fields = list(_HEADER.unpack_from(raw))
    spec_offset, spec_length, table_offset = fields[6], fields[7], fields[8]
    fields[4] = hashlib.sha256(raw[spec_offset : spec_offset + spec_length]).digest()
    fields[5] = hashlib.sha256(raw[table_offset:]).digest()
    raw[:HEADER_SIZE] = _HEADER.pack(*fields)
    path.write_bytes(bytes(raw))
    return path


def table_offset_of(path: Path) -> int:
    return int(_HEADER.unpack_from(path.read_bytes())[8])


def test_truncated(orders_ywc: Path) -> None:
    size = orders_ywc.stat().st_size
    orders_ywc.write_bytes(orders_ywc.read_bytes()[:1000])
    assert error_of(orders_ywc) == (
        f"{orders_ywc}: $: truncated: the header says the file is {size:,} bytes, it has 1,000 "
        "(an interrupted copy or write?): recompile it with `yawlflow compile SPEC -o X.ywc`"
    )


def test_truncated_inside_the_header(orders_ywc: Path) -> None:
    orders_ywc.write_bytes(orders_ywc.read_bytes()[:100])
    assert re.fullmatch(
        rf"{re.escape(str(orders_ywc))}: \$: truncated: a \.ywc header is 128 bytes, the file has 100: "
        r"the file is corrupted; recompile it with `yawlflow compile SPEC -o X\.ywc`",
        error_of(orders_ywc),
    )


def test_longer_than_the_header_says(orders_ywc: Path) -> None:
    with orders_ywc.open("ab") as handle:
        handle.write(b"\0" * 16)
    assert re.search(
        r": \$: 16 bytes past the end the header gives \([\d,]+\): the file is corrupted", error_of(orders_ywc)
    )


def test_flipped_byte_in_the_spec(orders_ywc: Path) -> None:
    raw = orders_ywc.read_bytes()
    at = raw.index(b'"receive"') + 2
    patched(orders_ywc, at, bytes([raw[at] ^ 0x01]))
    assert error_of(orders_ywc) == (
        f"{orders_ywc}: $: spec hash mismatch: the file is corrupted; recompile it with "
        "`yawlflow compile SPEC -o X.ywc`"
    )


def test_flipped_byte_in_the_arrays(orders_ywc: Path) -> None:
    size = orders_ywc.stat().st_size
    patched(orders_ywc, size - 3, b"\x55")
    assert "array hash mismatch: the file is corrupted; recompile it" in error_of(orders_ywc)


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "archive.ywc"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    assert error_of(path) == (
        f"{path}: $: not a .ywc file (magic b'PK\\x03\\x04'): compile it with `yawlflow compile SPEC -o X.ywc`"
    )


def test_a_json_spec_named_ywc(tmp_path: Path) -> None:
    path = tmp_path / "spec.ywc"
    path.write_text('{"yawlflow": 1}')
    assert error_of(path).endswith(
        "not a .ywc file (magic b'{\"ya'): compile it with `yawlflow compile SPEC -o X.ywc` "
        "(it looks like JSON: name a JSON spec .json)"
    )


def test_a_yaml_spec_named_ywc(tmp_path: Path) -> None:
    path = tmp_path / "spec.ywc"
    shutil.copy(ORDERS, path)
    assert error_of(path).endswith("(it looks like text: name a YAML spec .yaml)")


def test_newer_format_version(orders_ywc: Path) -> None:
    patched(orders_ywc, 4, struct.pack("<H", FORMAT_VERSION + 1))
    assert error_of(orders_ywc) == (
        f"{orders_ywc}: $: written by a newer yawlflow: format version {FORMAT_VERSION + 1}, and this one reads "
        f"up to {FORMAT_VERSION}: upgrade yawlflow (pip install -U yawlflow), or recompile the spec with this "
        "one: `yawlflow compile SPEC -o X.ywc`"
    )


def test_format_version_zero(orders_ywc: Path) -> None:
    patched(orders_ywc, 4, struct.pack("<H", 0))
    assert "format version 0 was never written: the file is corrupted" in error_of(orders_ywc)


def test_unknown_flags(orders_ywc: Path) -> None:
    patched(orders_ywc, 6, struct.pack("<H", 4))
    assert "unknown flags 0x0004 (written by a newer yawlflow?)" in error_of(orders_ywc)


def test_sections_that_do_not_fit(orders_ywc: Path) -> None:
    patched(orders_ywc, 64 + 16 + 8, struct.pack("<Q", 10**9))  # the spec's length
    assert re.search(r": \$: the header's sections do not fit the file \(spec 128\+1,000,000,000", error_of(orders_ywc))


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.ywc"
    path.write_bytes(b"")
    assert (
        error_of(path)
        == f"{path}: $: the file is empty, not a .ywc file: compile it with `yawlflow compile SPEC -o X.ywc`"
    )


def test_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "specs.ywc"
    path.mkdir()
    assert error_of(path).startswith(f"{path}: $: is a directory, not a spec file")
    with pytest.raises(SpecError, match=r"is a directory, not a spec file"):
        read_ywc(path)


def test_missing_file(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope.ywc").startswith(f"{tmp_path / 'nope.ywc'}: $: no such file")


def test_forged_net_table(orders_ywc: Path) -> None:
    table = table_offset_of(orders_ywc)
    rehashed(patched(orders_ywc, table + 4, struct.pack("<I", 99)))  # tasks
    assert "net 'main': the net table says 99 tasks and 13 places, the spec has 8 tasks" in error_of(orders_ywc)


def test_forged_place_index(orders_ywc: Path) -> None:
    table = table_offset_of(orders_ywc)
    offset, _, _ = struct.unpack_from("<QQQ", orders_ywc.read_bytes(), table + _NET.size + 24)  # preset_idx
    rehashed(patched(orders_ywc, offset, struct.pack("<i", 4000)))
    assert "net 'main': preset_idx names a place past the net's 13" in error_of(orders_ywc)


def test_forged_array_offset(orders_ywc: Path) -> None:
    table = table_offset_of(orders_ywc)
    rehashed(patched(orders_ywc, table + _NET.size, struct.pack("<Q", 3)))  # preset_ptr, misaligned
    assert "net 'main': array preset_ptr (9 x 4 bytes at offset 3) does not fit the file" in error_of(orders_ywc)


def test_forged_spec_section(orders_ywc: Path) -> None:
    raw = orders_ywc.read_bytes()
    at = raw.index(b'"nets"')
    rehashed(patched(orders_ywc, at, b'"nots"'))
    assert "the spec section does not decode (" in error_of(orders_ywc)


def test_suffix_is_case_insensitive(tmp_path: Path, orders: Spec) -> None:
    assert yf.load(compiled(tmp_path, orders, "ORDERS.YWC")).id == "orders"


# -- the command line -----------------------------------------------------------------------------


def test_cli_compile_default_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "orders.yaml"
    shutil.copy(ORDERS, spec)
    assert main(["compile", str(spec)]) == EXIT_COMPLETED
    out = tmp_path / "orders.ywc"
    size = out.stat().st_size
    assert capsys.readouterr().out == (
        f"wrote {out}: {size:,} bytes (spec 'orders': 1 net, 8 tasks; .ywc format version {FORMAT_VERSION})\n"
    )
    assert msgspec.structs.replace(yf.load(out), source=str(spec)) == yf.load(spec)


def test_cli_compile_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "compiled.ywc"
    assert main(["compile", str(ORDERS), "-o", str(out)]) == EXIT_COMPLETED
    assert capsys.readouterr().out.startswith(f"wrote {out}: ")
    assert yf.load(out).id == "orders"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compiled.ywc"]


def test_cli_compile_bad_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "yawlflow: 1\nid: bad\nnets:\n  main:\n    input: s\n    output: e\n    tasks:\n      t: {join: andd}\n"
    )
    assert main(["compile", str(spec), "-o", str(tmp_path / "bad.ywc")]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.search(
        rf"^{re.escape(str(spec))}:8:17: \$\.nets\.main\.tasks\.t\.join: unknown join 'andd'", captured.err, re.M
    )
    assert not (tmp_path / "bad.ywc").exists()


def test_cli_compile_missing_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(tmp_path / "nope.yaml")]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'nope.yaml'}: $: no such file")


def test_cli_compile_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "missing" / "x.ywc"
    assert main(["compile", str(ORDERS), "-o", str(out)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"{out}: cannot write the compiled spec: No such file or directory\n"
    assert main(["compile", str(ORDERS), "-o", str(tmp_path)]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith(f"{tmp_path}: -o: is a directory")


def test_cli_compile_needs_a_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile"]) == EXIT_BAD_INPUT
    assert "the following arguments are required: SPEC" in capsys.readouterr().err


def test_cli_validate_and_run_read_ywc(tmp_path: Path, orders_ywc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.ywc"
    broken.write_bytes(orders_ywc.read_bytes()[:500])
    assert main(["validate", str(orders_ywc), str(ORDERS)]) == EXIT_COMPLETED
    assert capsys.readouterr().out.splitlines() == [
        f"{orders_ywc}: ok (spec 'orders': 1 net, 8 tasks)",
        f"{ORDERS}: ok (spec 'orders': 1 net, 8 tasks)",
    ]
    assert main(["validate", str(orders_ywc), str(broken)]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.out == f"{orders_ywc}: ok (spec 'orders': 1 net, 8 tasks)\n"
    assert captured.err.startswith(f"{broken}: $: truncated: the header says the file is ")
    assert main(["run", str(orders_ywc), "--seed", "7"]) == EXIT_COMPLETED
    assert "path: receive -> review -> fulfil" in capsys.readouterr().out


def test_cli_compile_help_lists_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == EXIT_COMPLETED
    assert "compile" in capsys.readouterr().out
