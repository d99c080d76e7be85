"""``yawlflow cases list|show|resume|cancel`` and ``yawlflow verify`` on a durable store: what they
print, their exit codes, and located errors (never a traceback) for bad URLs, paths and cases."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from kit import cli, sqlite_url

import yawlflow as yf
from yawlflow._sqlite import SqliteStore
from yawlflow.cli import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_FAILED, EXIT_WAITING

ROOT = Path(__file__).resolve().parents[2]
ORDERS_EXTERNAL = str(ROOT / "examples" / "orders_external.yaml")

SPEC = """\
yawlflow: 1
id: durable
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: "cli_handlers:slow", flows: [b]}
      b: {run: "cli_handlers:done", flows: [end]}
"""

HANDLERS = """\
def slow(data, ctx):
    return {"slow": ctx.idempotency_key}


def done(data):
    return {"done": True}
"""


def waiting_case(capsys: pytest.CaptureFixture[str], db: Path) -> str:
    code, out, _ = cli(capsys, "run", ORDERS_EXTERNAL, "--store", sqlite_url(db), "--json")
    assert code == EXIT_WAITING
    return str(orjson.loads(out)["case_id"])


def stuck_case(tmp_path: Path, db: Path) -> str:
    """A case whose auto item ``a`` was running when its engine stopped."""
    entered = anyio.Event()

    async def stuck(data: dict[str, Any]) -> None:
        entered.set()
        await anyio.sleep_forever()

    async def main_() -> str:
        async with yf.Engine(store=sqlite_url(db)) as engine:
            engine.handlers.register("cli_handlers:slow", stuck)
            case = await engine.start(yf.loads(SPEC), {"n": 1})
            await entered.wait()
            return case.id

    return anyio.run(main_)


def test_run_with_a_store_keeps_a_waiting_case(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = cli(capsys, "run", ORDERS_EXTERNAL, "--store", sqlite_url(db))
    assert code == EXIT_WAITING
    assert f"stored: `yawlflow cases resume --store {sqlite_url(db)}` goes on with it later" in out
    code, out, _ = cli(capsys, "cases", "list", "--store", sqlite_url(db))
    assert code == EXIT_COMPLETED
    header, row = out.splitlines()
    assert header.split() == ["CASE", "STATUS", "SPEC", "VERSION", "NET", "TENANT", "PARENT"]
    assert row.split()[1:3] == ["running", "orders_external"]


def test_cases_list_filters_and_json(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    first = waiting_case(capsys, db)
    second = waiting_case(capsys, db)
    assert cli(capsys, "cases", "cancel", first, "--store", sqlite_url(db))[0] == EXIT_COMPLETED
    code, out, _ = cli(capsys, "cases", "list", "--store", sqlite_url(db), "--json")
    rows = orjson.loads(out)
    assert [(r["case"], r["status"]) for r in rows] == [(first, "cancelled"), (second, "running")]
    assert set(rows[0]) == {"case", "status", "spec_id", "version", "net", "tenant", "parent"}
    assert len(rows[0]["version"]) == 12 and rows[0]["version"] == rows[1]["version"]
    code, out, _ = cli(capsys, "cases", "list", "--store", sqlite_url(db), "--status", "running", "--json")
    assert [r["case"] for r in orjson.loads(out)] == [second]
    code, out, _ = cli(capsys, "cases", "list", "--store", sqlite_url(db), "--tenant", "nobody")
    assert code == EXIT_COMPLETED and out.startswith("no cases with tenant nobody in sqlite:///")


def test_cases_show_prints_each_items_lifecycle(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    case = waiting_case(capsys, db)
    code, out, _ = cli(capsys, "cases", "show", case, "--store", sqlite_url(db))
    assert code == EXIT_COMPLETED
    assert out.startswith(f"case {case}: running\nspec: orders_external (version ")
    assert "  item   1  approve: enabled -> offered\n" in out
    assert "  item   2  withdraw: enabled -> offered\n" in out
    assert "    0  case.started" in out
    assert cli(capsys, "cases", "cancel", case, "--store", sqlite_url(db))[0] == EXIT_COMPLETED
    code, out, _ = cli(capsys, "cases", "show", case, "--store", sqlite_url(db), "--json")
    payload = orjson.loads(out)
    assert payload["status"] == "cancelled"
    assert {i["task"]: i["states"] for i in payload["work_items"]} == {
        "receive": ["completed"], "approve": ["enabled", "offered", "cancelled"],
        "withdraw": ["enabled", "offered", "cancelled"],
    }
    assert [e["type"] for e in payload["events"]] == ["case_started", "case_cancel_requested"]
    assert payload["trace"][-1]["event"] == "case.cancelled"


def test_cases_resume_carries_on_and_reruns_the_item_in_flight(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cli_handlers.py").write_text(HANDLERS)
    config = tmp_path / "yawlflow.yaml"
    config.write_text("handlers: {allow: [cli_handlers]}\n")
    case = stuck_case(tmp_path, db)
    monkeypatch.delenv("YAWLFLOW_CONFIG", raising=False)
    code, out, err = cli(capsys, "cases", "resume", "--store", sqlite_url(db), "--config", str(config), "--json")
    assert code == EXIT_COMPLETED, err
    [result] = orjson.loads(out)
    assert result["case_id"] == case and result["status"] == "completed"
    assert result["data"] == {"n": 1, "slow": f"{case}/0", "done": True}  # the key of the item in flight
    code, out, _ = cli(capsys, "cases", "resume", "--store", sqlite_url(db))
    assert (code, out) == (EXIT_COMPLETED, f"nothing to resume: no unfinished case in {sqlite_url(db)}\n")


def test_cases_resume_of_a_waiting_case_exits_3(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    case = waiting_case(capsys, db)
    code, out, _ = cli(capsys, "cases", "resume", "--store", sqlite_url(db))
    assert code == EXIT_WAITING
    assert f"case {case}: waiting for external work" in out
    assert "item 1: approve" in out


def test_cases_cancel(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    case = waiting_case(capsys, db)
    assert cli(capsys, "cases", "cancel", case, "--store", sqlite_url(db)) == (
        EXIT_COMPLETED, f"case {case}: cancelled\n", "")
    code, _, err = cli(capsys, "cases", "cancel", case, "--store", sqlite_url(db))
    assert code == EXIT_BAD_INPUT and "has already ended (cancelled): nothing to cancel" in err
    code, _, err = cli(capsys, "cases", "cancel", "case-nope", "--store", sqlite_url(db))
    assert code == EXIT_BAD_INPUT and "no case 'case-nope'" in err


def test_a_store_in_use_refuses_writers_but_not_readers(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    case = waiting_case(capsys, db)
    with SqliteStore(db):  # another engine holds the store
        code, _, err = cli(capsys, "cases", "cancel", case, "--store", sqlite_url(db))
        assert code == EXIT_FAILED
        assert "in use by another engine" in err and str(db) in err
        code, _, err = cli(capsys, "cases", "resume", "--store", sqlite_url(db))
        assert code == EXIT_FAILED and "in use by another engine" in err
        assert cli(capsys, "cases", "list", "--store", sqlite_url(db))[0] == EXIT_COMPLETED
        assert cli(capsys, "verify", "--store", sqlite_url(db))[0] == EXIT_COMPLETED


def test_verify(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    first = waiting_case(capsys, db)
    second = waiting_case(capsys, db)
    cli(capsys, "cases", "cancel", second, "--store", sqlite_url(db))
    code, out, _ = cli(capsys, "verify", "--store", sqlite_url(db))
    assert (code, out) == (EXIT_COMPLETED, "ok: every chain holds (2 cases, 3 records)\n")
    code, out, _ = cli(capsys, "verify", "--store", sqlite_url(db), first)
    assert (code, out) == (EXIT_COMPLETED, f"ok: every chain holds (case {first}, 1 record)\n")
    with sqlite3.connect(db) as raw:  # a byte changed in a record, as a tamperer would
        raw.execute("DROP TRIGGER events_are_append_only_update")
        raw.execute("UPDATE events SET body = CAST(replace(CAST(body AS TEXT), 'main', 'mbin') AS BLOB) "
                    "WHERE seq = 0 AND case_key = (SELECT key FROM cases WHERE id = ?)", (second,))
    code, out, err = cli(capsys, "verify", "--store", sqlite_url(db))
    assert code == EXIT_FAILED
    assert out.startswith(f"BROKEN case {second!r}, record 0: its content does not match its hash")
    assert "1 broken chain" in err
    code, out, _ = cli(capsys, "verify", "--store", sqlite_url(db), "--json")
    payload = orjson.loads(out)
    assert code == EXIT_FAILED and payload["ok"] is False
    assert [(p["case"], p["seq"]) for p in payload["problems"]] == [(second, 0)]
    assert cli(capsys, "verify", "--store", sqlite_url(db), first)[0] == EXIT_COMPLETED


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "--store", "sqlite:///{tmp}/missing.db"], "missing.db: --store sqlite:///"),
        (["verify", "--store", "memory://"], "the in-memory store lives only inside one engine"),
        (["verify", "--store", "{tmp}/x.db"], "a store is named by a URL: write 'sqlite:///"),
        (["verify", "--store", "sqlite://x.db"], "three slashes"),
        (["verify"], "the following arguments are required: --store"),
        (["cases"], "yawlflow cases: name a command: list, show, why, resume or cancel"),
        (["cases", "list"], "the following arguments are required: --store"),
        (["cases", "show", "case-x", "--store", "sqlite:///{tmp}/missing.db"], "no such store"),
        (["cases", "resume", "--store", "sqlite:///{tmp}/nowhere/x.db"], "no such store"),
        (["run", ORDERS_EXTERNAL, "--store", "sqlite:///{tmp}/nowhere/x.db"], "the folder"),
        (["cases", "list", "--store", "postgresql://nobody@127.0.0.1:1/x"], "cannot connect"),
    ],
)
def test_bad_stores_are_located_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                                          message: str) -> None:
    code, out, err = cli(capsys, *(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert code == EXIT_BAD_INPUT
    assert message in err
    assert out == ""


def test_unknown_cases_are_bad_input(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    waiting_case(capsys, db)
    code, _, err = cli(capsys, "cases", "show", "case-x", "--store", sqlite_url(db))
    assert code == EXIT_BAD_INPUT and "no case 'case-x'" in err and "yawlflow cases list" in err
    code, _, err = cli(capsys, "verify", "--store", sqlite_url(db), "case-x")
    assert code == EXIT_BAD_INPUT and "no case 'case-x'" in err


def test_a_foreign_database_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE t (x)")
    code, _, err = cli(capsys, "cases", "list", "--store", sqlite_url(other))
    assert code == EXIT_BAD_INPUT
    assert "not a yawlflow store" in err and textwrap.shorten(str(other), 200) in err
