"""Golden histories: every workflow pattern's recorded case history replays with no difference.

The files in ``tests/golden/`` were recorded by ``tests/golden/make.py`` (seed 1). A change of
the runner's behaviour makes one of them differ, and the failure names the case, the event and
the first differing record.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from yawlflow._events import ItemCompleted
from yawlflow._replay import FORMAT, Difference, ReplayError, ReplayLog, dump_log, load_log, replay

GOLDEN = Path(__file__).parent / "golden"


def _make() -> Any:
    spec = importlib.util.spec_from_file_location("golden_make", GOLDEN / "make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_pattern_has_a_golden_history() -> None:
    assert sorted(p.name for p in GOLDEN.glob("wcp*.json")) == [f"wcp{n:02d}.json" for n in range(1, 44)]


@pytest.mark.parametrize("number", range(1, 44))
def test_the_golden_history_replays_without_a_difference(number: int) -> None:
    log = load_log(GOLDEN / f"wcp{number:02d}.json")
    assert log.cases and all(case.events and case.trace for case in log.cases)
    difference = replay(log)
    assert difference is None, str(difference)


@pytest.mark.parametrize("number", [14, 22, 37])  # instances at run time, recursion, a local OR-join
def test_recording_again_gives_the_same_history(number: int) -> None:
    assert _make().history(number) == (GOLDEN / f"wcp{number:02d}.json").read_bytes()


def _tampered(number: int) -> tuple[ReplayLog, int, int]:
    """The history with the first completed item's output changed; (log, case index, event index)."""
    log = load_log(GOLDEN / f"wcp{number:02d}.json")
    for c, case in enumerate(log.cases):
        for i, event in enumerate(case.events):
            if isinstance(event, ItemCompleted):
                case.events[i] = msgspec.structs.replace(event, output={**event.output, "tampered": 1})
                return log, c, i
    raise AssertionError("no completed item to tamper with")


def test_a_changed_event_is_named_with_its_first_differing_record() -> None:
    log, c, i = _tampered(1)
    difference = replay(log)
    assert isinstance(difference, Difference)
    assert (difference.case, difference.event) == (log.cases[c].case, i)
    assert isinstance(difference.expected, dict) and isinstance(difference.got, dict)
    assert difference.got["data"] == {**difference.expected["data"], "tampered": 1}
    assert "data differ" in str(difference)


def test_a_dropped_event_shows_as_missing_records() -> None:
    log = load_log(GOLDEN / "wcp01.json")
    case = log.cases[0]
    del case.events[-1]
    difference = replay(log)
    assert isinstance(difference, Difference) and difference.got is None
    assert "missing" in str(difference)


def test_an_event_the_runner_refuses_is_named() -> None:
    log = load_log(GOLDEN / "wcp01.json")
    case = log.cases[0]
    case.events.insert(1, ItemCompleted(item=999))
    difference = replay(log)
    assert isinstance(difference, Difference) and difference.event == 1
    assert isinstance(difference.got, str) and "no live item 999" in difference.got


def test_histories_round_trip_through_json(tmp_path: Path) -> None:
    log = load_log(GOLDEN / "wcp04.json")
    path = tmp_path / "h.json"
    path.write_bytes(dump_log(log))
    assert load_log(path) == log


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read the history"),
    (b"{not json", "not JSON"),
    (b'{"format": 1}', "not a yawlflow history"),
    (json.dumps({"format": FORMAT + 1, "spec": {}, "cases": []}).encode(), "newer than this yawlflow reads"),
])
def test_a_bad_history_file_is_a_located_error(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "h.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ReplayError, match=message) as info:
        load_log(path)
    assert str(path) in str(info.value)


def test_a_spec_that_no_longer_loads_is_a_replay_error() -> None:
    log = load_log(GOLDEN / "wcp01.json")
    log.spec["nets"] = {}
    with pytest.raises(ReplayError, match="the recorded spec does not load any more"):
        replay(log)
