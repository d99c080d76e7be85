"""How fast specs load: .yaml vs .json vs .ywc, and msgspec vs orjson decoding JSON from an mmap.

The numbers in docs/adr/0003-compiled-specs-and-json-decoding.md come from this script::

    python benches/ywc_load.py                 # a 20,000-task spec; about a minute
    python benches/ywc_load.py --tasks 2000    # quicker

Every memory figure comes from a fresh interpreter (one per measurement), so that one
measurement's garbage and allocator pools do not blur the next. ``transient`` is tracemalloc's
peak minus what the decoded value still holds: memory the decoder allocated and let go, i.e. a
copy of the input (or scratch space). ``RSS`` is the growth of the process's peak resident set
(VmHWM), which also sees memory that tracemalloc does not (allocators outside ``PyMem``).
Times are the best and the median of several runs in one process, each after a ``gc.collect()``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

DECODERS = ("msgspec-mmap", "msgspec-bytes", "orjson-mmap", "orjson-bytes")

_PROBE = r"""
import gc, mmap, sys, time, tracemalloc
import msgspec, orjson

def hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0

path, how = sys.argv[1], sys.argv[2]
handle = open(path, "rb")
mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
view = memoryview(mapped)
view[::4096].tobytes()  # fault the file's pages in first: they are the page cache's, not ours
gc.disable()
before = hwm_kib()
tracemalloc.start()
if how == "msgspec-mmap":
    out = msgspec.json.decode(view)
elif how == "orjson-mmap":
    out = orjson.loads(view)
elif how == "msgspec-bytes":
    out = msgspec.json.decode(handle.read())
elif how == "orjson-bytes":
    out = orjson.loads(handle.read())
retained, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(retained, peak, hwm_kib() - before)
"""


def spec_document(n_tasks: int) -> dict[str, Any]:
    """A valid spec of about ``n_tasks`` tasks: a long sequence with handlers, XOR splits with
    predicates, cancellation sets and, every 1,000 tasks, an OR split and OR-join."""
    names = [f"t{i}" for i in range(n_tasks)]
    tasks: dict[str, Any] = {}
    for i, name in enumerate(names):
        nxt = names[i + 1] if i + 1 < n_tasks else "end"
        task: dict[str, Any] = {"flows": [nxt]}
        if i % 3 == 0:
            task["run"] = "noop"
        if i % 1000 == 500 and i + 3 < n_tasks:  # OR split into two branches, OR-join at t(i+3)
            task = {"split": "or", "flows": [names[i + 1], {"to": names[i + 2], "when": "x > 1"}]}
            tasks[name] = task
            continue
        if i % 1000 in (501, 502) and i + 2 < n_tasks:
            target = names[i + 2] if i % 1000 == 501 else names[i + 1]
            task["flows"] = [target]
        if i % 1000 == 503:
            task["join"] = "or"
        if i % 50 == 10 and i + 2 < n_tasks:
            task["split"] = "xor"
            task["flows"] = [{"to": nxt, "when": "x > 1", "order": 1}, {"to": names[i + 2], "default": True}]
        if i % 500 == 250:
            task["cancels"] = [names[i - 1]]
        tasks[name] = task
    return {"yawlflow": 1, "id": "big", "nets": {"main": {"input": "start", "output": "end", "tasks": tasks}}}


def timed_ms(fn: Callable[[], object], repeat: int) -> str:
    """``"best (median)"`` of ``repeat`` runs in ms: the best is the least disturbed by other load."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    best, median = min(times), statistics.median(times)
    return f"{best:.1f} ({median:.1f})" if best < 100 else f"{best:.0f} ({median:.0f})"


def probe(path: Path, how: str) -> tuple[float, float, float]:
    """(retained MB, transient MB, RSS growth MB) of one decode, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), how], capture_output=True, text=True, check=True
    ).stdout.split()
    retained, peak, hwm = int(out[0]), int(out[1]), int(out[2])
    return retained / 1e6, (peak - retained) / 1e6, hwm * 1024 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks in the spec (default: 20,000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (default: 5)")
    parser.add_argument("--big-json-mb", type=int, default=50, help="size of the plain JSON document (default: 50)")
    args = parser.parse_args()

    import mmap

    import msgspec
    import orjson
    import yaml

    import yawlflow as yf
    from yawlflow._compiled import compile_spec
    from yawlflow._spec import Spec, from_data, to_builtins
    from yawlflow._ywc import canonical_json, write_ywc

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = from_data(spec_document(args.tasks), source="big")
        doc = to_builtins(spec)
        files = {
            ".yaml": folder / "big.yaml",
            ".json": folder / "big.json",
            ".ywc": folder / "big.ywc",
        }
        files[".yaml"].write_text(yaml.safe_dump(doc, sort_keys=False))
        files[".json"].write_bytes(msgspec.json.encode(doc))
        write_ywc(spec, files[".ywc"])
        plain = folder / "plain.json"
        line = "x" * 1000
        plain.write_text(json.dumps([line + str(i) for i in range(args.big_json_mb * 1000)]))

        print(
            f"# yawlflow spec load, {args.tasks:,} tasks ({sys.version.split()[0]}, "
            f"msgspec {msgspec.__version__}, orjson {orjson.__version__})\n"
        )
        print("| format | file size | load, ms | compile after load, ms | load + compile, ms |")
        print("|---|---:|---:|---:|---:|")
        for suffix, path in files.items():
            repeat = max(1, args.repeat // 2) if suffix == ".yaml" else args.repeat
            load_ms = timed_ms(partial(yf.load, path), repeat)
            compile_ms = timed_ms(partial(compile_spec, yf.load(path)), repeat)
            both_ms = timed_ms(partial(_load_and_compile, path), repeat)
            size = path.stat().st_size
            print(f"| {suffix} | {size / 1e6:.2f} MB | {load_ms} | {compile_ms} | {both_ms} |")

        text = canonical_json(spec)
        plain_doc = msgspec.json.encode(doc)
        print("\n# The .ywc spec section: decoding it typed vs validating plain data again\n")
        print("| what | bytes | time, ms |")
        print("|---|---:|---:|")
        rows = (
            ("canonical JSON, msgspec.json.decode(type=Spec)", text, partial(msgspec.json.decode, text, type=Spec)),
            ("all fields (no defaults left out), typed", msgspec.json.encode(spec), None),
            ("plain spec JSON, decode + from_data (validation)", plain_doc, partial(_validate_again, plain_doc)),
            ("canonical JSON as msgpack, typed", msgspec.msgpack.encode(msgspec.json.decode(text)), None),
            ("SHA-256 of the whole .ywc file", files[".ywc"].read_bytes(), None),
        )
        for what, data, fn in rows:
            if fn is None and what.startswith("all fields"):
                fn = partial(msgspec.json.decode, data, type=Spec)
            elif fn is None and "msgpack" in what:
                fn = partial(msgspec.msgpack.decode, data, type=Spec)
            elif fn is None:
                fn = partial(hashlib.sha256, data)
            print(f"| {what} | {len(data):,} | {timed_ms(fn, args.repeat)} |")

        print("\n# JSON decoding: time (median) and memory (fresh interpreter each)\n")
        print("| input | decoder | time, ms | retained | transient (tracemalloc) | peak RSS growth |")
        print("|---|---|---:|---:|---:|---:|")
        for label, path in (("spec JSON", files[".json"]), (f"{args.big_json_mb} MB JSON", plain)):
            with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                view = memoryview(mapped)
                timed: dict[str, Callable[[], object]] = {
                    "msgspec-mmap": partial(msgspec.json.decode, view),
                    "msgspec-bytes": partial(_read_then, msgspec.json.decode, path),
                    "orjson-mmap": partial(orjson.loads, view),
                    "orjson-bytes": partial(_read_then, orjson.loads, path),
                }
                for how in DECODERS:
                    ms = timed_ms(timed[how], args.repeat)
                    retained, transient, rss = probe(path, how)
                    print(
                        f"| {label} ({path.stat().st_size / 1e6:.1f} MB) | {how} | {ms} | "
                        f"{retained:.1f} MB | {transient:.1f} MB | {rss:.1f} MB |"
                    )
                del timed
                view.release()


def _load_and_compile(path: Path) -> object:
    from yawlflow import load
    from yawlflow._compiled import compile_spec

    return compile_spec(load(path))


def _validate_again(text: bytes) -> object:
    import msgspec

    from yawlflow._spec import from_data

    return from_data(msgspec.json.decode(text))


def _read_then(decode: Callable[[bytes], object], path: Path) -> object:
    return decode(path.read_bytes())


if __name__ == "__main__":
    main()
