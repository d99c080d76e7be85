"""``yawlflow replay LOG``: a golden history replays identically (exit 0), a tampered one names
its first differing event (exit 1), an unreadable one is bad input (exit 2); and a history
exported from a store (``export --format history``) replays identically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from kit import NESTED_WITH_EXTERNALS, cli, inc

import yawlflow as yf
from yawlflow.cli import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_FAILED
from yawlflow.testing import FakeClock

GOLDEN = Path(__file__).resolve().parents[1] / "golden"

def events_and_cases(path: Path) -> tuple[int, int]:
    raw = json.loads(path.read_text())
    return sum(len(c["events"]) for c in raw["cases"]), len(raw["cases"])


@pytest.mark.parametrize("name", ["wcp01.json", "wcp22.json"])
def test_a_golden_history_replays_identically(capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = GOLDEN / name
    n_events, n_cases = events_and_cases(path)
    code, out, err = cli(capsys, "replay", str(path))
    assert code == EXIT_COMPLETED and err == ""
    plural = "s" * (n_cases != 1)
    assert out == f"replayed {n_events} event{'s' * (n_events != 1)} of {n_cases} case{plural}: identical\n"
    code, out, _ = cli(capsys, "replay", str(path), "--json")
    assert code == EXIT_COMPLETED
    assert orjson.loads(out) == {"ok": True, "cases": n_cases, "events": n_events, "difference": None}


def tampered(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """wcp01 with the task of its trace's record 4 renamed: the record the replay will differ at."""
    raw = json.loads((GOLDEN / "wcp01.json").read_text())
    record = raw["cases"][0]["trace"][4]
    record["task"] = "renamed & <odd>"
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(raw))
    return path, raw


def test_a_tampered_history_names_its_first_differing_event(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    path, raw = tampered(tmp_path)
    case = raw["cases"][0]["case"]
    code, out, err = cli(capsys, "replay", str(path))
    assert code == EXIT_FAILED
    [line] = out.splitlines()
    assert line.startswith(f"{path}: different: case {case!r}, event ")
    assert "record 4: task differ" in line and "'renamed & <odd>'" in line and "trace seq is 4" in line
    assert "the first difference is named above" in err
    code, out, _ = cli(capsys, "replay", str(path), "--json")
    assert code == EXIT_FAILED
    payload = orjson.loads(out)
    assert payload["ok"] is False
    difference = payload["difference"]
    assert difference["case"] == case and difference["record"] == 4 and difference["seq"] == 4
    assert difference["expected"]["task"] == "renamed & <odd>" and difference["got"]["task"] != "renamed & <odd>"
    assert difference["event_type"] == raw["cases"][0]["events"][difference["event"]]["type"]


def test_an_event_the_runner_refuses_is_a_difference(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    raw = json.loads((GOLDEN / "wcp01.json").read_text())
    events = raw["cases"][0]["events"]
    events.insert(2, dict(events[1]))  # the same item completed twice
    path = tmp_path / "twice.json"
    path.write_text(json.dumps(raw))
    code, out, _ = cli(capsys, "replay", str(path))
    assert code == EXIT_FAILED and "event 2: the runner refused it" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"garbage", "not JSON"),
        (b'{"format": 1, "spec": {}}', "not a yawlflow history"),
        (b'{"format": 99, "spec": {}, "cases": []}', "newer than this yawlflow reads"),
        (b'{"format": 1, "spec": {"yawlflow": 1}, "cases": []}', "the recorded spec does not load any more"),
    ],
)
def test_an_unreadable_history_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes,
                                            message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, out, err = cli(capsys, "replay", str(path))
    assert code == EXIT_BAD_INPUT and out == ""
    assert str(path) in err and message in err


def test_a_missing_history_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "replay", str(tmp_path / "absent.json"))
    assert code == EXIT_BAD_INPUT and "cannot read the history" in err and "absent.json" in err


def test_an_exported_history_replays_identically(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "cases.db"

    async def go() -> tuple[str, list[Any]]:
        async with yf.Engine(store=f"sqlite:///{db}", seed=3, clock=FakeClock(), handlers={"inc": inc}) as engine:
            case = await engine.start(yf.loads(NESTED_WITH_EXTERNALS), {"n": 0})
            await case.idle()
            for task in ("y", "b"):
                [item] = [i for i in case._offered_in_tree() if i.task == task]
                holder = case if item.case == case.id else engine.case(item.case)
                await holder.complete(item.id, {task: 1})
            result = await case.result()
            return case.id, result.trace

    case_id, trace = anyio.run(go)
    history = tmp_path / "history.json"
    code, out, err = cli(capsys, "export", "--format", "history", "--store", f"sqlite:///{db}", "--case", case_id,
                         "-o", str(history))
    assert code == EXIT_COMPLETED and out == ""
    raw = json.loads(history.read_text())
    assert [c["case"] for c in raw["cases"]] == [case_id, f"{case_id}/1"]
    assert raw["spec"]["id"] == "nested"
    for case in raw["cases"]:  # each case's records as the live run produced them
        assert case["trace"] == [r for r in trace if r["case"] == case["case"]]
    n_events = sum(len(c["events"]) for c in raw["cases"])
    assert f"history of case {case_id}: {n_events} events" in err
    code, out, _ = cli(capsys, "replay", str(history))
    assert code == EXIT_COMPLETED and out == f"replayed {n_events} events of 2 cases: identical\n"
    # and a change to what it recorded is found
    raw["cases"][1]["trace"][1]["event"] = "item.offered"
    history.write_text(json.dumps(raw))
    code, out, _ = cli(capsys, "replay", str(history))
    assert code == EXIT_FAILED and f"case '{case_id}/1'" in out and "record 1: event differ" in out
