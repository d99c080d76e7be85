"""``yawlflow export --format xes``: an IEEE 1849-2016 event log of a store's cases that process
mining tools read (pm4py here), with the trace's events in order, escaped values, time-zone-aware
timestamps; the choice of cases; located errors; and a schema-1 store after its migration."""

from __future__ import annotations

import itertools
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from defusedxml import ElementTree
from kit import AUTO_THEN_EXTERNAL, cli, downgrade_to_schema_1, inc, sqlite_url

import yawlflow as yf
from yawlflow import _sqlite
from yawlflow._xes import lifecycle, timestamp
from yawlflow.cli import EXIT_BAD_INPUT, EXIT_COMPLETED
from yawlflow.testing import FakeClock

XES = "{http://www.xes-standard.org/}"
BASE = 1_795_776_287_123_000_000  # 2026-11-27T10:44:47.123Z
MS = 1_000_000

SPEC = """\
yawlflow: 1
id: review
root: main
nets:
  main:
    input: start
    output: end
    conditions:
      pick: {flows: [approve, reject]}
      decided: {flows: [c]}
    tasks:
      a: {run: inc, split: and, flows: [sub, b, pick]}
      sub: {net: inner, flows: [c]}
      b: {external: true, flows: [c]}
      approve: {external: true, flows: [decided]}
      reject: {external: true, flows: [decided]}
      c: {join: and, run: inc, flows: [end]}
  inner:
    input: s
    output: t
    tasks:
      x: {run: inc, flows: [y]}
      y: {external: true, flows: [z]}
      z: {run: inc, flows: [t]}
"""

@pytest.fixture(autouse=True)
def wall(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The store's wall clock ticks 1 ms per reading from BASE (so timestamps are known)."""
    ticks = itertools.count(BASE, MS)
    monkeypatch.setattr(_sqlite, "_wall_ns", lambda: next(ticks))
    yield


async def offered(engine: yf.Engine, case: yf.Case, task: str) -> tuple[yf.Case, int]:
    """The case (of ``case``'s tree) holding the offered item of ``task``, and the item's id."""
    await case.idle()
    for item in case._offered_in_tree():
        if item.task == task:
            return (case if item.case == case.id else engine.case(item.case)), item.id
    raise AssertionError(f"no offered {task!r} in {case.id}")


def run_review(db: Path, data: dict[str, Any] | None = None, tenant: str | None = None) -> tuple[str, list[Any]]:
    """Run a case of SPEC to its end on the store, the clock moving 1 s between calls; its id and trace."""

    async def go() -> tuple[str, list[Any]]:
        clock = FakeClock()
        async with yf.Engine(store=sqlite_url(db), seed=7, clock=clock, handlers={"inc": inc}) as engine:
            case = await engine.start(yf.loads(SPEC), data or {"n": 0}, tenant=tenant)
            await clock.advance(1)
            holder, b = await offered(engine, case, "b")
            await holder.start_item(b)
            await clock.advance(1)
            await holder.complete(b, {"b": 1})
            await clock.advance(1)
            holder, y = await offered(engine, case, "y")
            await holder.complete(y, {"y": 1})
            await clock.advance(1)
            holder, approve = await offered(engine, case, "approve")
            await holder.complete(approve, {"ok": True})
            result = await case.result()
            assert result.status == "completed"
            return case.id, result.trace

    return anyio.run(go)


def stored_trace(db: Path, case_id: str) -> list[Any]:
    """The case's trace as an engine reads it back from the store (``Case.trace`` of a stored case)."""

    async def go() -> list[Any]:
        async with yf.Engine(store=sqlite_url(db), handlers={"inc": inc}) as engine:
            return engine.case(case_id).trace

    return anyio.run(go)


def own(trace: list[Any], case: str) -> list[Any]:
    return [r for r in trace if r["case"] == case]


def waiting_case(db: Path) -> str:
    async def go() -> str:
        async with yf.Engine(store=sqlite_url(db), seed=1, clock=FakeClock(), handlers={"inc": inc}) as engine:
            case = await engine.start(yf.loads(AUTO_THEN_EXTERNAL), {"n": 0})
            await case.idle()
            return case.id

    return anyio.run(go)


def attrs(element: Any) -> dict[str, str]:
    """An XES element's attributes: key -> value."""
    return {child.get("key"): child.get("value") for child in element if child.get("key") is not None}


def read(path: Path) -> Any:
    return ElementTree.parse(path).getroot()


def test_an_xes_export_of_a_finished_case_has_its_trace_in_order(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    case_id, live = run_review(db)
    trace = stored_trace(db, case_id)
    out = tmp_path / "cases.xes"
    code, stdout, err = cli(capsys, "export", "--store", sqlite_url(db), "-o", str(out))
    assert code == EXIT_COMPLETED and stdout == ""
    assert f"wrote {out}: 1 trace, {len(trace)} events" in err
    log = read(out)
    assert log.tag == f"{XES}log" and log.get("xes.version") == "1849-2016"
    extensions = {e.get("prefix"): (e.get("name"), e.get("uri")) for e in log.findall(f"{XES}extension")}
    assert extensions["concept"] == ("Concept", "http://www.xes-standard.org/concept.xesext")
    assert extensions["lifecycle"] == ("Lifecycle", "http://www.xes-standard.org/lifecycle.xesext")
    assert extensions["time"] == ("Time", "http://www.xes-standard.org/time.xesext")
    assert "yawlflow" in extensions
    scopes = {g.get("scope"): attrs(g) for g in log.findall(f"{XES}global")}
    assert set(scopes["event"]) >= {"concept:name", "lifecycle:transition", "time:timestamp", "yawlflow:seq"}
    assert {c.get("name"): c.get("keys") for c in log.findall(f"{XES}classifier")}["Activity"] == "concept:name"
    assert attrs(log)["lifecycle:model"] == "standard"

    [xtrace] = log.findall(f"{XES}trace")
    head = attrs(xtrace)
    assert head["concept:name"] == case_id and head["yawlflow:status"] == "completed"
    assert head["yawlflow:spec"] == "review" and head["yawlflow:net"] == "main"
    events = [attrs(e) for e in xtrace.findall(f"{XES}event")]
    # one event per trace record, in the order of the stored case's trace, the sub-case's included
    assert [(e["yawlflow:case"], int(e["yawlflow:seq"]), e["yawlflow:event"]) for e in events] == [
        (r["case"], r["seq"], r["event"]) for r in trace]
    assert [e["concept:name"] for e in events] == [r["task"] or r["event"] for r in trace]
    cases = {r["case"] for r in live}
    assert len(cases) == 2 and {e["yawlflow:case"] for e in events} == cases
    for case in cases:  # each case's own records exactly as the live run gave them
        assert own(trace, case) == own(live, case)
    # the lifecycle of each kind of item
    def transitions(task: str) -> list[str]:
        return [e["lifecycle:transition"] for e in events if e["concept:name"] == task]

    assert transitions("b") == ["schedule", "assign", "start", "complete"]
    assert transitions("a") == ["schedule", "start", "complete"]
    assert transitions("reject") == ["schedule", "assign", "withdraw"]
    assert transitions("case.started") == ["start", "start"] and transitions("case.completed") == ["complete"] * 2
    assert all(("yawlflow:item" in e) == e["yawlflow:event"].startswith("item.") for e in events)
    # wall-clock timestamps, in order, with their offset
    stamps = [e["time:timestamp"] for e in events]
    assert all(re.fullmatch(r"2026-11-27T10:44:\d\d\.\d{3}\+00:00", s) for s in stamps), stamps
    assert stamps == sorted(stamps)
    assert stamps[0] == "2026-11-27T10:44:47.124+00:00"  # the store's creation read the clock first


def test_pm4py_reads_one_trace_with_the_right_events_in_order(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    pm4py = pytest.importorskip("pm4py", reason="pm4py (the dev extra) reads the XES log")
    case_id, _ = run_review(db)
    trace = stored_trace(db, case_id)
    out = tmp_path / "cases.xes"
    assert cli(capsys, "export", "--store", sqlite_url(db), "-o", str(out))[0] == EXIT_COMPLETED
    frame = pm4py.read_xes(str(out), variant="chunk_regex")  # pm4py's default importer, named: no warning
    assert frame["case:concept:name"].unique().tolist() == [case_id]
    assert frame["concept:name"].tolist() == [r["task"] or r["event"] for r in trace]
    assert frame["yawlflow:event"].tolist() == [r["event"] for r in trace]
    assert frame["lifecycle:transition"].tolist()[:4] == ["start", "schedule", "start", "complete"]  # case, a
    stamps = frame["time:timestamp"]
    assert str(stamps.dt.tz) == "UTC" and stamps.is_monotonic_increasing
    assert stamps.iloc[0].isoformat() == "2026-11-27T10:44:47.124000+00:00"
    legacy = pm4py.read_xes(str(out), variant="iterparse", return_legacy_log_object=True)  # an XML parser
    assert len(legacy) == 1 and [e["concept:name"] for e in legacy[0]] == [r["task"] or r["event"] for r in trace]
    assert legacy[0].attributes["yawlflow:status"] == "completed"
    assert [e["yawlflow:seq"] for e in legacy[0]] == [r["seq"] for r in trace]


@pytest.fixture
def india(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local time zone is UTC+05:30 (a POSIX TZ string: no zoneinfo needed)."""
    monkeypatch.setenv("TZ", "IST-5:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_values_are_escaped_and_timestamps_carry_the_local_offset(
    capsys: pytest.CaptureFixture[str], db: Path, india: None
) -> None:
    tenant = 'acme & <co> "q" \x07 \U0001d11e'
    data = {"n": 0, "note": "a < b & c > 'd' \"e\" é"}
    _, trace = run_review(db, data, tenant=tenant)
    code, out, _ = cli(capsys, "export", "--store", sqlite_url(db), "--timezone", "local", "--with-data")
    assert code == EXIT_COMPLETED
    assert "&amp; &lt;co&gt; &quot;q&quot;" in out and "\x07" not in out
    log = ElementTree.fromstring(out.encode())
    [xtrace] = log.findall(f"{XES}trace")
    # what XML 1.0 cannot carry (a control character) is written as \\uXXXX; the rest comes back as it was
    assert attrs(xtrace)["yawlflow:tenant"] == 'acme & <co> "q" \\u0007 \U0001d11e'
    events = [attrs(e) for e in xtrace.findall(f"{XES}event")]
    assert msgspec.json.decode(events[0]["yawlflow:data"]) == data
    assert all(e["time:timestamp"].endswith("+05:30") for e in events)
    assert events[0]["time:timestamp"] == "2026-11-27T16:14:47.124+05:30"
    assert len(events) == len(trace)


def test_which_cases_are_exported(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    finished, _ = run_review(db)
    waiting = waiting_case(db)
    code, out, _ = cli(capsys, "export", "--store", sqlite_url(db))  # default: every finished root case, to stdout
    assert code == EXIT_COMPLETED
    names = [attrs(t)["concept:name"] for t in ElementTree.fromstring(out.encode()).findall(f"{XES}trace")]
    assert names == [finished]  # its sub-case is part of its trace, not a trace of its own
    code, out, _ = cli(capsys, "export", "--store", sqlite_url(db), "--status", "running")
    [xtrace] = ElementTree.fromstring(out.encode()).findall(f"{XES}trace")
    assert attrs(xtrace)["concept:name"] == waiting and attrs(xtrace)["yawlflow:status"] == "running"
    assert [attrs(e)["yawlflow:event"] for e in xtrace.findall(f"{XES}event")][-1] == "item.offered"
    code, out, _ = cli(capsys, "export", "--store", sqlite_url(db), "--case", waiting, finished)
    assert [attrs(t)["concept:name"] for t in ElementTree.fromstring(out.encode()).findall(f"{XES}trace")] == [
        waiting, finished]
    code, out, err = cli(capsys, "export", "--store", sqlite_url(db), "--status", "failed")
    assert code == EXIT_COMPLETED and ElementTree.fromstring(out.encode()).findall(f"{XES}trace") == []
    assert "no root case with status failed" in err


def test_bad_input_is_located(capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path) -> None:
    finished, _ = run_review(db)
    code, _, err = cli(capsys, "export", "--store", sqlite_url(db), "--case", finished, "nope")
    assert code == EXIT_BAD_INPUT and "--case nope: no such case in sqlite:///" in err and "cases list" in err
    missing = tmp_path / "no" / "out.xes"
    code, _, err = cli(capsys, "export", "--store", sqlite_url(db), "-o", str(missing))
    assert code == EXIT_BAD_INPUT and f"{missing}: -o: cannot write it" in err and not missing.exists()
    code, _, err = cli(capsys, "export", "--store", sqlite_url(db), "-o", str(tmp_path))
    assert code == EXIT_BAD_INPUT and "is a directory" in err
    code, _, err = cli(capsys, "export", "--store", "memory://")
    assert code == EXIT_BAD_INPUT and "give a durable store" in err
    code, _, err = cli(capsys, "export", "--store", sqlite_url(tmp_path / "absent.db"))
    assert code == EXIT_BAD_INPUT and "no such store" in err
    code, _, err = cli(capsys, "export", "--store", sqlite_url(db), "--format", "history")
    assert code == EXIT_BAD_INPUT and "name exactly one root case with --case ID" in err
    code, _, err = cli(capsys, "export", "--store", sqlite_url(db), "--format", "csv")
    assert code == EXIT_BAD_INPUT and "invalid choice: 'csv'" in err


def test_a_schema_1_store_migrates_its_cases_finish_and_export(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    case_id = waiting_case(db)
    downgrade_to_schema_1(db)
    code, _, err = cli(capsys, "export", "--store", sqlite_url(db))
    assert code == EXIT_BAD_INPUT and "its schema is version 1" in err and "open it for writing once" in err

    async def finish() -> str:
        async with yf.Engine(store=sqlite_url(db), seed=1, clock=FakeClock(), handlers={"inc": inc}) as engine:
            [case] = await engine.resume()
            [item] = case.work_items("offered")
            await case.complete(item.id, {"done": True})
            return (await case.result()).status

    assert anyio.run(finish) == "completed"
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "3"
    walls = [w for (w,) in conn.execute("SELECT wall_ns FROM events ORDER BY seq")]
    conn.close()
    assert walls[0] is None and walls[-1] is not None  # old records kept as they were
    assert cli(capsys, "verify", "--store", sqlite_url(db))[0] == EXIT_COMPLETED  # the chain holds across both
    out = tmp_path / "old.xes"
    assert cli(capsys, "export", "--store", sqlite_url(db), "-o", str(out))[0] == EXIT_COMPLETED
    [xtrace] = read(out).findall(f"{XES}trace")
    events = [attrs(e) for e in xtrace.findall(f"{XES}event")]
    assert attrs(xtrace)["concept:name"] == case_id
    assert [e["concept:name"] for e in events][-3:] == ["b", "b", "case.completed"]
    stamps = [e["time:timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert stamps[0] == timestamp(BASE)  # derived: the case's creation (its engine clock did not move)


def test_the_lifecycle_mapping() -> None:
    assert [lifecycle(e) for e in ("item.enabled", "item.offered", "item.started", "item.completed")] == [
        "schedule", "assign", "start", "complete"]
    assert lifecycle("item.cancelled") == "withdraw" and lifecycle("item.cancelled", started=True) == "ate_abort"
    assert lifecycle("item.failed") == "ate_abort" and lifecycle("case.cancelled") == "pi_abort"
    assert lifecycle("item.retried") == "unknown" and lifecycle("something.new") == "unknown"
    assert timestamp(BASE + 456_789) == "2026-11-27T10:44:47.123+00:00"
