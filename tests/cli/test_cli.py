"""The ``yawlflow`` command: exit codes, the ``run --json`` shape, located problems, speed.

Most tests call ``main([...])`` in this process and read what it printed; a few run the real
command (``python -m yawlflow``) in a subprocess, where a traceback or a slow import would show.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from yawlflow.cli import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_FAILED, EXIT_WAITING, main

ROOT = Path(__file__).resolve().parents[2]
ORDERS = str(ROOT / "examples" / "orders.yaml")
ORDERS_EXTERNAL = str(ROOT / "examples" / "orders_external.yaml")

EVENTS = frozenset(
    {
        "case.started",
        "case.completed",
        "case.cancelled",
        "case.failed",
        "item.enabled",
        "item.offered",
        "item.started",
        "item.completed",
        "item.cancelled",
        "item.failed",
        "item.retried",
        "signal.received",
    }
)
RECORD_KEYS = {"seq", "case", "event", "task", "item", "instance", "net", "data"}

FAILING_SPEC = """\
yawlflow: 1
id: failing
nets:
  main:
    input: start
    output: end
    tasks:
      take: {run: "{module}:take", flows: [charge]}
      charge: {run: "{module}:boom", flows: [end]}
"""

HANDLERS = """\
def take(data):
    return {"taken": True}


def boom(data):
    raise ValueError("the card was declined")
"""

ROUTED_SPEC = """\
yawlflow: 1
id: routed
nets:
  main:
    input: start
    output: end
    tasks:
      route:
        split: xor
        flows:
          - {to: big, when: "amount > 1000", order: 1}
          - {to: small, default: true}
      big: {flows: [end]}
      small: {flows: [end]}
"""


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_main(capsys, "run", *argv, "--json")
    assert "Traceback" not in err
    assert out.count("\n") == 1, f"--json prints exactly one line: {out!r}"
    payload = orjson.loads(out)
    assert isinstance(payload, dict)
    return code, payload


def run_cli(
    *argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yawlflow", *argv],
        cwd=cwd,
        env={**{k: v for k, v in os.environ.items() if k != "YAWLFLOW_CONFIG"}, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def check_trace(trace: list[dict[str, Any]]) -> None:
    """Every record has the §4 keys, an event of the §4 vocabulary, and seq counts from 0."""
    assert trace, "a trace is never empty"
    for record in trace:
        assert set(record) == RECORD_KEYS, record
        assert record["event"] in EVENTS, record
    assert [r["seq"] for r in trace] == list(range(len(trace)))
    assert trace[0]["event"] == "case.started"


@pytest.fixture
def handler_module(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A handler module in ``tmp_path``, with a name unique to the test, removed afterwards."""
    name = "cli_handlers_" + re.sub(r"\W", "_", request.node.name)
    (tmp_path / f"{name}.py").write_text(HANDLERS)
    (tmp_path / "failing.yaml").write_text(FAILING_SPEC.replace("{module}", name))
    yield name
    sys.modules.pop(name, None)


# -- run: completed ------------------------------------------------------------------------------


def test_run_orders_completes_with_a_json_trace(capsys: pytest.CaptureFixture[str]) -> None:
    code, payload = run_json(capsys, ORDERS, "--seed", "7")
    assert code == EXIT_COMPLETED
    assert {"case_id", "status", "data", "trace"} <= set(payload)
    assert payload["status"] == "completed"
    assert payload["data"]["amount"] == 1250
    trace = payload["trace"]
    check_trace(trace)
    assert all(r["case"] == payload["case_id"] for r in trace)
    assert trace[-1]["event"] == "case.completed"
    assert trace[-1]["data"] == payload["data"]
    path = [r["task"] for r in trace if r["event"] == "item.completed"]
    # XOR split took `review` (amount > 1000); the OR split took pack and courier, not wrap.
    assert path[:3] == ["receive", "review", "fulfil"]
    assert sorted(path[3:5]) == ["courier", "pack"]
    assert path[-1] == "ship"
    assert "wrap" not in path and "fast_track" not in path


def test_run_with_a_seed_is_repeatable(capsys: pytest.CaptureFixture[str]) -> None:
    first = run_json(capsys, ORDERS, "--seed", "11")
    second = run_json(capsys, ORDERS, "--seed", "11")
    assert first == second


def test_run_orders_human_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "run", ORDERS)
    assert code == EXIT_COMPLETED
    assert err == ""
    assert re.search(r"^case case-\w+: completed$", out, re.M)
    assert "path: receive -> review -> fulfil -> " in out
    assert '"amount":1250' in out


def test_run_orders_as_a_command() -> None:
    done = run_cli("run", "examples/orders.yaml")
    assert done.returncode == EXIT_COMPLETED, done.stderr
    assert done.stderr == ""
    assert ": completed" in done.stdout


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_on_each_backend(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    code, payload = run_json(capsys, ORDERS, "--seed", "3", "--backend", backend)
    assert code == EXIT_COMPLETED
    assert payload["status"] == "completed"


def test_run_data_routes_the_case(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "routed.yaml"
    spec.write_text(ROUTED_SPEC)
    code, payload = run_json(capsys, str(spec), "--data", '{"amount": 5000}')
    assert code == EXIT_COMPLETED
    assert "big" in [r["task"] for r in payload["trace"] if r["event"] == "item.completed"]
    data_file = tmp_path / "order.json"
    data_file.write_text('{"amount": 20}')
    code, payload = run_json(capsys, str(spec), "--data", f"@{data_file}")
    assert code == EXIT_COMPLETED
    assert payload["trace"][0]["data"] == {"amount": 20}
    assert "small" in [r["task"] for r in payload["trace"] if r["event"] == "item.completed"]


# -- run: waiting --------------------------------------------------------------------------------


def test_run_external_waits_and_lists_offers(capsys: pytest.CaptureFixture[str]) -> None:
    code, payload = run_json(capsys, ORDERS_EXTERNAL, "--seed", "1")
    assert code == EXIT_WAITING
    assert payload["status"] == "waiting"
    check_trace(payload["trace"])
    offered = payload["offered"]
    assert sorted(item["task"] for item in offered) == ["approve", "withdraw"]
    assert all(item["state"] == "offered" for item in offered)
    assert all(isinstance(item["id"], int) for item in offered)


def test_run_external_as_a_command_prints_the_offers() -> None:
    done = run_cli("run", "examples/orders_external.yaml")
    assert done.returncode == EXIT_WAITING, done.stderr
    assert "waiting for external work" in done.stdout
    assert re.search(r"^  item \d+: approve ", done.stdout, re.M)
    assert re.search(r"^  item \d+: withdraw ", done.stdout, re.M)


# -- run: failed ---------------------------------------------------------------------------------


def test_failing_handler_fails_the_case_without_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, handler_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "yawlflow.yaml").write_text(f"handlers:\n  allow: [{handler_module}]\n")
    monkeypatch.delenv("YAWLFLOW_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # ./yawlflow.yaml is found, and its folder goes on sys.path
    code, payload = run_json(capsys, "failing.yaml")
    assert code == EXIT_FAILED
    assert payload["status"] == "failed"
    assert "ValueError: the card was declined" in payload["error"]
    check_trace(payload["trace"])
    failed = [r for r in payload["trace"] if r["event"] == "item.failed"]
    assert len(failed) == 1
    assert failed[0]["task"] == "charge"
    assert failed[0]["data"] == {"attempt": 1, "error": "ValueError: the card was declined"}
    assert payload["trace"][-1]["event"] == "case.failed"
    assert payload["data"] == {"taken": True}
    assert str(tmp_path) not in sys.path  # put there for the run only


def test_failing_handler_as_a_command(tmp_path: Path, handler_module: str) -> None:
    config = tmp_path / "conf" / "engine.yaml"
    config.parent.mkdir()
    config.write_text(f"handlers:\n  allow: [{handler_module}]\n")
    (config.parent / f"{handler_module}.py").write_text(HANDLERS)
    done = run_cli("run", str(tmp_path / "failing.yaml"), "--config", str(config))
    assert done.returncode == EXIT_FAILED
    assert "Traceback" not in done.stderr
    assert ": failed" in done.stdout
    assert "error: task 'charge' (item 1) failed: ValueError: the card was declined" in done.stdout


def test_config_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, handler_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "env.yaml"
    config.write_text(f"handlers:\n  allow: [{handler_module}]\nexecution:\n  strategy: inline\n")
    monkeypatch.setenv("YAWLFLOW_CONFIG", str(config))
    code, payload = run_json(capsys, str(tmp_path / "failing.yaml"))
    assert code == EXIT_FAILED
    assert "the card was declined" in payload["error"]


def test_unknown_handler_fails_the_case(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("YAWLFLOW_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "unknown.yaml"
    spec.write_text(FAILING_SPEC.replace("{module}", "not_allowed_module"))
    code, payload = run_json(capsys, str(spec))
    assert code == EXIT_FAILED
    assert "is not allowed" in payload["error"]
    assert [r["task"] for r in payload["trace"] if r["event"] == "item.failed"] == ["take"]


# -- bad input -----------------------------------------------------------------------------------

BAD_SPEC = """\
yawlflow: 1
nets:
  main:
    input: start
    output: end
    tasks:
      a:
        join: andd
        flows: [bb]
      b: {flows: [end]}
"""


def test_bad_spec_prints_every_located_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text(BAD_SPEC)
    code, out, err = run_main(capsys, "run", "bad.yaml")
    assert code == EXIT_BAD_INPUT
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2
    assert re.match(r"^bad\.yaml:8:\d+: \$\.nets\.main\.tasks\.a\.join: unknown join 'andd'", lines[0])
    assert re.match(
        r"^bad\.yaml:9:\d+: \$\.nets\.main\.tasks\.a\.flows\[0\]: no task or condition 'bb'", lines[1]
    )
    assert "did you mean 'b'?" in lines[1]


def test_bad_spec_as_a_command_has_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD_SPEC)
    done = run_cli("run", "bad.yaml", cwd=tmp_path)
    assert done.returncode == EXIT_BAD_INPUT
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("bad.yaml:8:")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"amount": ', r"^--data:1:\d+: invalid JSON: "),
        ("{amount: 1}", r"^--data:1:\d+: invalid JSON: "),
        ("[1, 2]", r"^--data: expected a JSON object, got an array"),
        ("null", r"^--data: expected a JSON object, got null"),
    ],
)
def test_bad_data_json(capsys: pytest.CaptureFixture[str], data: str, message: str) -> None:
    code, out, err = run_main(capsys, "run", ORDERS, "--data", data)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert re.match(message, err), err


def test_bad_data_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "amount": tru\n}')
    code, _, err = run_main(capsys, "run", ORDERS, "--data", f"@{bad}")
    assert code == EXIT_BAD_INPUT
    assert err.startswith(f"{bad}:2:")
    code, _, err = run_main(capsys, "run", ORDERS, "--data", f"@{tmp_path / 'missing.json'}")
    assert code == EXIT_BAD_INPUT
    assert "cannot read the file" in err


def test_missing_spec_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, err = run_main(capsys, "run", str(missing))
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert err.startswith(f"{missing}: $: no such file")


def test_missing_spec_file_as_a_command() -> None:
    done = run_cli("run", "examples/does-not-exist.yaml")
    assert done.returncode == EXIT_BAD_INPUT
    assert "no such file" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run"], "the following arguments are required: SPEC"),
        (["run", ORDERS, "--strategy", "warp"], "invalid choice: 'warp'"),
        (["run", ORDERS, "--backend", "curio"], "invalid choice: 'curio'"),
        (["run", ORDERS, "--seed", "x"], "invalid int value: 'x'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "usage: yawlflow"),
    ],
)
def test_bad_arguments(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert message in err


@pytest.mark.parametrize("strategy", ["inline", "thread", "process", "ray"])
def test_known_strategies_are_accepted(capsys: pytest.CaptureFixture[str], strategy: str) -> None:
    code, payload = run_json(capsys, ORDERS, "--strategy", strategy)
    assert code == EXIT_COMPLETED
    assert payload["status"] == "completed"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://localhost/cases?snapshot_every=x", "snapshot_every must be a whole number"),
        ("redis://x", "unknown store URL"),
    ],
)
def test_unsupported_store(capsys: pytest.CaptureFixture[str], url: str, message: str) -> None:
    code, out, err = run_main(capsys, "run", ORDERS, "--store", url)
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert message in err


def test_memory_store(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_json(capsys, ORDERS, "--store", "memory://")
    assert code == EXIT_COMPLETED


def test_bad_config_is_located(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "yawlflow.yaml"
    config.write_text("handlers:\n  alow: [x]\nexecution:\n  strategy: warp\nlogging: {}\n")
    code, out, err = run_main(capsys, "run", ORDERS, "--config", str(config))
    assert code == EXIT_BAD_INPUT
    assert out == ""
    lines = err.splitlines()
    assert lines == [
        f"{config}:2:3: $.handlers.alow: unknown key 'alow' (did you mean 'allow'?)",
        f"{config}:4:13: $.execution.strategy: unknown strategy 'warp' "
        "(use one of: inline, thread, process, ray)",
        f"{config}:5:1: $.logging: unknown key 'logging' (use one of: handlers, connectors, execution, limits)",
    ]


def test_config_yaml_syntax_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("handlers: {allow: [x]\n")
    code, _, err = run_main(capsys, "run", ORDERS, "--config", str(config))
    assert code == EXIT_BAD_INPUT
    assert err.startswith(f"{config}:")
    assert "YAML syntax error" in err


def test_missing_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_main(capsys, "run", ORDERS, "--config", str(tmp_path / "none.yaml"))
    assert code == EXIT_BAD_INPUT
    assert "--config: no such file" in err
    monkeypatch.setenv("YAWLFLOW_CONFIG", str(tmp_path / "gone.yaml"))
    code, _, err = run_main(capsys, "run", ORDERS)
    assert code == EXIT_BAD_INPUT
    assert "$YAWLFLOW_CONFIG: no such file" in err


# -- validate ------------------------------------------------------------------------------------


def test_validate_good_specs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "validate", ORDERS, ORDERS_EXTERNAL)
    assert code == EXIT_COMPLETED
    assert err == ""
    assert f"{ORDERS}: ok" in out
    assert f"{ORDERS_EXTERNAL}: ok" in out


def test_validate_lists_every_problem_of_every_spec(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text(BAD_SPEC)
    Path("worse.json").write_text(
        '{"yawlflow": 1, "nets": {"main": {"input": "s", "output": "e", '
        '"tasks": {"a": {"split": "xor", "flows": ["e"], "retry": {"attempts": 0}}}}}}'
    )
    code, out, err = run_main(capsys, "validate", "bad.yaml", ORDERS, "worse.json")
    assert code == EXIT_BAD_INPUT
    assert f"{ORDERS}: ok" in out
    problems = [line for line in err.splitlines() if not line.startswith("yawlflow:")]
    assert sum(line.startswith("bad.yaml:") for line in problems) == 2
    assert any(line.startswith("worse.json:1:") for line in problems)
    assert all(re.match(r"^\S+?(:\d+){0,2}: \$[.\[]?", line) for line in problems), problems
    assert err.splitlines()[-1] == "yawlflow: 2 of 3 specs invalid"


# -- show ----------------------------------------------------------------------------------------


def test_show_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "show", ORDERS, "--format", "mermaid")
    assert code == EXIT_COMPLETED
    assert err == ""
    assert out.startswith("flowchart LR\n")
    assert 't_receive["receive<br/>split: xor"]' in out


def test_show_dot(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "show", ORDERS_EXTERNAL, "--format", "dot", "--net", "main")
    assert code == EXIT_COMPLETED
    assert out.startswith('digraph "orders_external" {')
    assert out.rstrip().endswith("}")


def test_show_unknown_net(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "show", ORDERS, "--net", "nope")
    assert code == EXIT_BAD_INPUT
    assert out == ""
    assert "has no net 'nope' (its nets: main)" in err


def test_show_svg(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "show", ORDERS, "--format", "svg")
    if shutil.which("dot") is None:
        assert code == EXIT_BAD_INPUT
        assert "needs Graphviz's `dot` program" in err
    else:
        assert code == EXIT_COMPLETED
        assert "<svg" in out


# -- patterns, help ------------------------------------------------------------------------------


def test_patterns_lists_all_43(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "patterns")
    assert code == EXIT_COMPLETED
    rows = [line for line in out.splitlines() if re.match(r"^\s*\d+\s", line)]
    assert len(rows) == 43
    assert [int(row.split()[0]) for row in rows] == list(range(1, 44))
    assert all(re.search(r"\syes/direct\s", row) for row in rows)
    assert re.search(
        r"^ 16  Deferred Choice\s+yes/direct  a condition whose postset holds several offered", out, re.M
    )
    assert re.search(r"^ 43  Explicit Termination\s", out, re.M)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--version")
    assert code == EXIT_COMPLETED
    assert re.match(r"^yawlflow \d+\.\d+", out)


def test_help_imports_no_heavy_module() -> None:
    probe = (
        "import sys; from yawlflow.cli import main; code = main(['--help']); "
        "heavy = sorted(m for m in ('anyio', 'numpy', 'yaml', 'cel', 'orjson', 'yawlflow._engine') "
        "if m in sys.modules); print(code, heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout + done.stderr
