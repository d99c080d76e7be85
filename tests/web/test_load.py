"""Load: 200 concurrent clients complete work items against a real ``yawlflow serve`` (issue 10).

The server is the command itself, in a subprocess, on a fresh SQLite store, listening on a free
loopback port. Each client is one anyio task with its own ``httpx.AsyncClient`` (at most two
connections) and its own API key (the per-key token bucket is the CLI's default). Until the
workload's time is up (``YAWLFLOW_LOAD_SECONDS``, default 5; CI runs it once with 60) a client
starts a case of ``examples/orders_external.yaml``, starts its ``approve`` item and completes it
with output carrying a fresh token. Every POST has an ``Idempotency-Key``; a connection error, a
timeout, a 429 or a 503 is retried with the same key, so a retry never does the work twice.

Then the server is stopped with SIGTERM and the store is read back independently, twice: its
event log (the store API, read-only) and the trace that ``yawlflow export --with-data`` folds from
it. Every completion the server acknowledged (2xx) is in the store exactly once, in its case and
item; no item is completed twice; unacknowledged attempts may have landed, never twice.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import anyio
import httpx
import orjson
import pytest

from yawlflow._events import ItemCompleted
from yawlflow._store import open_store
from yawlflow.web import hash_key

if TYPE_CHECKING:
    from yawlflow._sqlite import SqliteStore

SECONDS = float(os.environ.get("YAWLFLOW_LOAD_SECONDS", "5"))
"""How long the clients keep completing items (monotonic seconds)."""
CLIENTS = 200
GRACE = 60.0
"""After the workload's time, how long a client still retries its last call before giving it up."""
EXPORT_SAMPLE = 100
"""How many acknowledged completions are also looked up in ``yawlflow export``'s trace."""
MAX_RSS = 2 * 1024**3
"""The server's peak resident memory must stay below this (bytes)."""
SPEC = Path(__file__).parents[2] / "examples" / "orders_external.yaml"
TENANT = "load"
RETRY = (429, 503)
IMPATIENT_EVERY = 8
"""One cycle in 8 (of each client, staggered) is impatient: each of its calls first times out waiting for the
answer (the request sent, the server at work on it), then is retried with the same key."""
IMPATIENT = httpx.Timeout(30.0, connect=10.0, read=0.001)

pytestmark = [pytest.mark.load, pytest.mark.timeout(SECONDS + GRACE + 240)]


# -- the server --------------------------------------------------------------------------------------


@dataclass
class Server:
    """A ``yawlflow serve`` subprocess: its port, and its stderr lines as they come."""

    proc: subprocess.Popen[bytes]
    port: int = 0
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def read_stderr(self, stream: IO[bytes]) -> None:
        """Keep every stderr line; note the port once uvicorn says where it listens (or at EOF)."""
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                self.ready.set()
        self.ready.set()  # the server exited: the waiter sees port 0

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> int:
        """SIGTERM the server; its exit status once it has exited and its stderr is all read."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        if self.reader is not None:
            self.reader.join(10)
        return rc

    def peak_rss(self) -> int | None:
        """The server's peak resident memory in bytes (Linux's ``VmHWM``), or ``None`` elsewhere."""
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        return int(found.group(1)) * 1024 if found else None


def write_keys(path: Path) -> list[str]:
    """One operator key per client (each has its own token bucket); the plain keys, by client."""
    plain = [f"load-key-{i:03d}-{uuid.uuid4().hex}" for i in range(CLIENTS)]
    lines = ["keys:"]
    for i, key in enumerate(plain):
        lines += [f"  client{i:03d}:", f"    sha256: {hash_key(key)}", "    role: operator", f"    tenant: {TENANT}"]
    path.write_text("\n".join(lines) + "\n")
    return plain


@contextlib.contextmanager
def serve(tmp_path: Path, url: str, keys: Path) -> Iterator[Server]:
    """Run ``yawlflow serve`` on ``url`` and port 0; yield it once it listens; SIGTERM it on the way out."""
    env = {k: v for k, v in os.environ.items() if k != "YAWLFLOW_CONFIG"}
    access = (tmp_path / "access.log").open("wb")  # uvicorn's access log: a file, so it never blocks the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "yawlflow", "serve", "--store", url, "--keys", str(keys), "--spec", str(SPEC),
         "--host", "127.0.0.1", "--port", "0"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=access, stderr=subprocess.PIPE,
    )
    server = Server(proc)
    assert proc.stderr is not None
    server.reader = threading.Thread(target=server.read_stderr, args=(proc.stderr,), daemon=True)
    server.reader.start()
    try:
        assert server.ready.wait(60), "the server did not say where it listens within 60 s"
        assert server.port, f"the server exited ({proc.poll()}) before listening:\n{server.log}"
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        server.reader.join(10)
        proc.stderr.close()
        access.close()


# -- the clients -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """A completion the server acknowledged."""

    token: str
    case: str
    item: int


@dataclass
class Tally:
    """What the clients saw."""

    acks: list[Ack] = field(default_factory=list)
    cycles: int = 0
    requests: int = 0
    retried: Counter[str] = field(default_factory=Counter)  # cause -> retries
    replayed: int = 0  # answers with Idempotent-Replayed: true
    gave_up: int = 0  # calls still failing GRACE seconds after the workload's end
    errors: list[str] = field(default_factory=list)  # answers that are neither 2xx nor retryable
    latencies: list[float] = field(default_factory=list)  # seconds, per acknowledged completion


async def call(http: httpx.AsyncClient, path: str, body: dict[str, Any], idem: str, tally: Tally,
               give_up_at: float, *, impatient: bool = False) -> dict[str, Any] | None:
    """POST ``body`` to ``path`` with ``Idempotency-Key: idem``, retrying what may be retried with the
    same key; the answer's JSON, or ``None`` (an error, noted; or given up). ``impatient``: the first
    attempt gives up waiting for the answer at once, so the retry races the server still doing it."""
    backoff = 0.05
    while True:
        tally.requests += 1
        timeout = IMPATIENT if impatient else httpx.USE_CLIENT_DEFAULT
        impatient = False
        try:
            r = await http.post(path, json=body, headers={"Idempotency-Key": idem}, timeout=timeout)
        except httpx.TransportError as exc:  # connection refused or reset, a timeout: the same key again
            cause = type(exc).__name__
            if timeout is IMPATIENT:  # at once: the retry races the first attempt, still at work
                tally.retried[cause] += 1
                continue
        else:
            if r.is_success:
                tally.replayed += r.headers.get("idempotent-replayed") == "true"
                return dict(r.json())
            if r.status_code not in RETRY:
                tally.errors.append(f"POST {path} [{idem}]: {r.status_code} {r.text[:300]}")
                return None
            cause = str(r.status_code)
            backoff = min(float(r.headers.get("retry-after") or backoff), 2.0)
        tally.retried[cause] += 1
        if time.monotonic() >= give_up_at:
            tally.gave_up += 1
            return None
        await anyio.sleep(backoff)  # a client's retry policy, not a synchronisation
        backoff = min(backoff * 2, 2.0)


async def client(n: int, key: str, base_url: str, deadline: float, tally: Tally, tls: ssl.SSLContext) -> None:
    """Start a case, start its ``approve`` item, complete it with a fresh token; until ``deadline``."""
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=1)
    timeout = httpx.Timeout(30.0, connect=10.0)
    give_up_at = deadline + GRACE
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, limits=limits,
                                 timeout=timeout, verify=tls) as http:
        cycle = 0
        while time.monotonic() < deadline:
            cycle += 1
            tally.cycles += 1
            tag = f"c{n}-{cycle}-{uuid.uuid4().hex[:8]}"
            impatient = (n + cycle) % IMPATIENT_EVERY == 0
            case = await call(http, "/api/v1/cases", {"spec": "orders_external", "data": {"client": n}},
                              f"start-case-{tag}", tally, give_up_at, impatient=impatient)
            if case is None:
                continue
            offered = [w for w in case["work_items"] if w["task"] == "approve" and w["state"] == "offered"]
            if len(offered) != 1:
                tally.errors.append(f"case {case['id']}: no single offered approve item: {case['work_items']}")
                continue
            base = f"/api/v1/cases/{case['id']}/items/{offered[0]['id']}"
            if await call(http, f"{base}/start", {}, f"start-item-{tag}", tally, give_up_at,
                          impatient=impatient) is None:
                continue
            token = uuid.uuid4().hex
            began = time.monotonic()
            done = await call(http, f"{base}/complete", {"token": token}, f"complete-{tag}", tally, give_up_at,
                              impatient=impatient)
            if done is None:
                continue
            if done["item"] is None or done["item"]["state"] != "completed" or done["item"]["data"] != {"token": token}:
                tally.errors.append(f"complete {base}: acknowledged with {done}")
                continue
            tally.latencies.append(time.monotonic() - began)
            tally.acks.append(Ack(token, case["id"], offered[0]["id"]))


async def workload(port: int, keys: list[str], seconds: float) -> tuple[Tally, float]:
    tally = Tally()
    base_url = f"http://127.0.0.1:{port}"
    tls = ssl.create_default_context()  # shared: each client making its own (httpx's default) costs ~50 ms of CPU
    began = time.monotonic()
    deadline = began + seconds
    async with anyio.create_task_group() as tg:
        for n, key in enumerate(keys):
            tg.start_soon(client, n, key, base_url, deadline, tally, tls)
    return tally, time.monotonic() - began


# -- reading the store back --------------------------------------------------------------------------


def completions_in_log(url: str) -> tuple[dict[str, list[tuple[str, int]]], Counter[tuple[str, int]], dict[str, str],
                                          list[Any]]:
    """From the store's event log, read-only: token -> [(case, item)] of each ``ItemCompleted``
    carrying it; how many ``ItemCompleted`` each (case, item) has; each case's status; the broken chains."""
    tokens: dict[str, list[tuple[str, int]]] = {}
    per_item: Counter[tuple[str, int]] = Counter()
    with contextlib.closing(cast("SqliteStore", open_store(url, readonly=True))) as store:
        problems = store.verify()
        statuses = {r.case: r.status for r in store.records()}
        for case in statuses:
            for event in store.events(case):
                if isinstance(event, ItemCompleted):
                    per_item[(case, event.item)] += 1
                    token = (event.output or {}).get("token")
                    if token is not None:
                        tokens.setdefault(str(token), []).append((case, event.item))
    return tokens, per_item, statuses, problems


def completions_in_export(tmp_path: Path, url: str, cases: list[str]) -> dict[str, list[tuple[str, str]]]:
    """From ``yawlflow export --with-data --case ...`` (the trace folded from the store, XES) of
    ``cases``: token -> [(case, task)] of each ``item.completed`` record whose data carries it."""
    out = tmp_path / "cases.xes"
    chosen = [arg for case in cases for arg in ("--case", case)]
    done = subprocess.run([sys.executable, "-m", "yawlflow", "export", "--store", url, "--with-data", *chosen,
                           "-o", str(out)], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    tokens: dict[str, list[tuple[str, str]]] = {}
    for trace in ET.parse(out).getroot().iterfind("{*}trace"):  # noqa: S314 - the file yawlflow just wrote
        case = next((a.get("value") for a in trace.findall("{*}string") if a.get("key") == "concept:name"), "")
        for event in trace.iterfind("{*}event"):
            attrs = {a.get("key"): a.get("value") for a in event if a.get("key") is not None}
            if attrs.get("yawlflow:event") != "item.completed" or not attrs.get("yawlflow:data"):
                continue
            data = orjson.loads(str(attrs["yawlflow:data"]))
            if isinstance(data, dict) and "token" in data:
                tokens.setdefault(str(data["token"]), []).append((str(case), str(attrs.get("concept:name"))))
    return tokens


# -- the test ----------------------------------------------------------------------------------------


def test_concurrent_clients_lose_no_acknowledged_completion(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    keys = write_keys(tmp_path / "keys.yaml")
    with serve(tmp_path, url, tmp_path / "keys.yaml") as server:
        tally, took = anyio.run(workload, server.port, keys, SECONDS)
        rss = server.peak_rss()
        rc = server.stop()
    # uvicorn shuts down gracefully, then re-raises the signal it caught: exit -SIGTERM (older ones: 0)
    assert rc in (0, -signal.SIGTERM), f"the server exited {rc} on SIGTERM:\n{server.log[-4000:]}"
    assert "Application shutdown complete." in server.log, server.log[-4000:]  # the engine was left: drained
    assert not [line for line in server.lines if "Traceback" in line or line.startswith("ERROR")], server.log[-4000:]

    acks = tally.acks
    rate = len(acks) / took
    latencies = sorted(tally.latencies) or [0.0]
    print(f"\nload: {CLIENTS} clients, {SECONDS:g} s (took {took:.1f} s): {len(acks)} completions acknowledged, "
          f"{rate:.1f} completions/s; {tally.requests} requests ({tally.requests / took:.0f}/s), "
          f"retries {dict(tally.retried)}, replayed {tally.replayed}, given up {tally.gave_up}, "
          f"errors {len(tally.errors)}; completion latency p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms; "
          f"server peak RSS {'?' if rss is None else f'{rss / 2**20:.0f} MiB'}")
    assert not tally.errors, "\n".join(tally.errors[:20])
    assert not [cause for cause in tally.retried if cause.startswith("5")], tally.retried  # a 503: the store failed
    assert tally.gave_up == 0
    assert rate > 0
    assert len({a.token for a in acks}) == len(acks)
    if rss is not None:
        assert rss < MAX_RSS, f"the server's peak RSS is {rss / 2**20:.0f} MiB"

    tokens, per_item, statuses, problems = completions_in_log(url)
    assert not problems, problems[:5]
    twice = {k: n for k, n in per_item.items() if n > 1}
    assert not twice, f"items completed more than once: {list(twice.items())[:10]}"
    per_case = Counter(case for case, _ in per_item.elements())
    assert max(per_case.values(), default=0) <= 1, per_case.most_common(5)  # approve xor withdraw, once
    for ack in acks:
        assert tokens.get(ack.token) == [(ack.case, ack.item)], (ack, tokens.get(ack.token))
        assert statuses[ack.case] == "completed", (ack, statuses[ack.case])
    assert all(len(places) == 1 for places in tokens.values())
    assert len(tokens) >= len(acks)

    # the trace the CLI folds from the log, for a sample (the export reads every case's record per case)
    sample = random.Random(0).sample(acks, min(len(acks), EXPORT_SAMPLE))
    traced = completions_in_export(tmp_path, url, [a.case for a in sample])
    for ack in sample:
        assert traced.get(ack.token) == [(ack.case, "approve")], (ack, traced.get(ack.token))
    assert len(traced) == len(sample)
