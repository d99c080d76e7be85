"""The pattern catalogue (yawlflow.patterns): every one of the 43 patterns runs its spec, under
many seeds and on asyncio and trio, and every property that defines it holds; the same seed gives
the same trace on both backends; the registry, the CLI and docs/patterns.md agree with it.

Runs are cached per (pattern, seed, backend), so the determinism and property tests share them.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

import yawlflow as yf
from yawlflow.cli import EXIT_BAD_INPUT, EXIT_COMPLETED, EXIT_FAILED, main
from yawlflow.patterns import (
    PATTERN_TABLE,
    PATTERNS,
    Pattern,
    Verdict,
    check,
    get,
    render_markdown,
    run_pattern,
)

ROOT = Path(__file__).resolve().parents[2]
SEEDS = range(10)
BACKENDS = ("asyncio", "trio")

# Names as in Russell, ter Hofstede, van der Aalst & Mulyar (2006), per shared/PATTERNS.md: an
# independent list, so a renamed or renumbered catalogue entry fails here.
PAPER = {
    1: "Sequence",
    2: "Parallel Split",
    3: "Synchronization",
    4: "Exclusive Choice",
    5: "Simple Merge",
    6: "Multi-Choice",
    7: "Structured Synchronizing Merge",
    8: "Multi-Merge",
    9: "Structured Discriminator",
    10: "Arbitrary Cycles",
    11: "Implicit Termination",
    12: "Multiple Instances without Synchronization",
    13: "Multiple Instances with a priori Design-Time Knowledge",
    14: "Multiple Instances with a priori Run-Time Knowledge",
    15: "Multiple Instances without a priori Run-Time Knowledge",
    16: "Deferred Choice",
    17: "Interleaved Parallel Routing",
    18: "Milestone",
    19: "Cancel Task",
    20: "Cancel Case",
    21: "Structured Loop",
    22: "Recursion",
    23: "Transient Trigger",
    24: "Persistent Trigger",
    25: "Cancel Region",
    26: "Cancel Multiple Instance Activity",
    27: "Complete Multiple Instance Activity",
    28: "Blocking Discriminator",
    29: "Cancelling Discriminator",
    30: "Structured Partial Join",
    31: "Blocking Partial Join",
    32: "Cancelling Partial Join",
    33: "Generalised AND-Join",
    34: "Static Partial Join for Multiple Instances",
    35: "Cancelling Partial Join for Multiple Instances",
    36: "Dynamic Partial Join for Multiple Instances",
    37: "Local Synchronizing Merge",
    38: "General Synchronizing Merge",
    39: "Critical Section",
    40: "Interleaved Routing",
    41: "Thread Merge",
    42: "Thread Split",
    43: "Explicit Termination",
}


@functools.cache
def _run(number: int, seed: int, backend: str) -> yf.Result:
    return run_pattern(number, seed=seed, backend=backend)


ALL = [pytest.param(n, id=PATTERNS[n].slug) for n in range(1, 44)]


@pytest.mark.parametrize("number", ALL)
def test_every_property_holds_for_every_seed_and_backend(number: int) -> None:
    failures = [
        f"seed {seed} on {backend}: {v.name}: {v.message} "
        f"(reproduce: yawlflow patterns run {number} --seed {seed} --backend {backend})"
        for seed in SEEDS
        for backend in BACKENDS
        for v in check(number, _run(number, seed, backend))
        if not v.ok
    ]
    assert not failures, f"{get(number).title}:\n" + "\n".join(failures)


@pytest.mark.parametrize("number", ALL)
def test_the_same_seed_gives_the_same_trace_on_both_backends(number: int) -> None:
    for seed in SEEDS:
        on_asyncio, on_trio = (_run(number, seed, backend) for backend in BACKENDS)
        assert on_asyncio.trace == on_trio.trace, f"{get(number).title}, seed {seed}: asyncio and trio differ"
        assert on_asyncio.status == on_trio.status and on_asyncio.data == on_trio.data


@pytest.mark.parametrize("number", ALL)
def test_seeds_explore_different_runs(number: int) -> None:
    """A drive or a handler order that varies with the seed must vary the trace somewhere."""
    pattern = get(number)
    traces = {repr(_run(number, seed, "asyncio").trace) for seed in SEEDS}
    if pattern.drive is not None or any(tag in pattern.spec for tag in ("split: and", "split: {threads", "instances:")):
        assert len(traces) > 1, f"{pattern.title}: all {len(SEEDS)} seeds gave the same trace"


def test_the_registry_holds_exactly_the_43_patterns_of_the_paper() -> None:
    assert list(PATTERNS) == list(range(1, 44))
    assert {n: p.name for n, p in PATTERNS.items()} == PAPER
    assert len({p.name for p in PATTERNS.values()}) == 43
    for number, pattern in PATTERNS.items():
        assert isinstance(pattern, Pattern)
        assert pattern.number == number
        assert get(number) is pattern
        assert pattern.slug == f"wcp{number:02d}_" + re.sub(r"[^a-z0-9]+", "_", PAPER[number].lower())
        assert pattern.properties and pattern.definition.endswith(".") and pattern.construct


@pytest.mark.parametrize("bad", [0, 44, -1, True])
def test_a_bad_number_is_a_clear_error(bad: int) -> None:
    with pytest.raises(KeyError, match=r"no workflow control-flow pattern numbered .*: use a number from 1 to 43"):
        get(bad)


def test_a_bad_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"backend 'curio': use one of asyncio, trio"):
        run_pattern(1, seed=0, backend="curio")


@pytest.mark.parametrize("number", ALL)
def test_each_spec_loads_validates_and_compiles(number: int) -> None:
    from yawlflow._compiled import compile_spec

    pattern = get(number)
    spec = yf.loads(pattern.spec, source=f"{pattern.slug}.yaml")
    compile_spec(spec)
    assert spec.id == pattern.slug
    handlers = {t.run.handler for net in spec.nets for t in net.tasks if t.run is not None}
    assert handlers <= set(pattern.handlers), f"handlers missing from the pattern: {handlers - set(pattern.handlers)}"


def test_the_table_is_derived_from_the_catalogue() -> None:
    rows = tuple((p.number, p.name, p.construct) for p in PATTERNS.values())
    assert rows == PATTERN_TABLE


def test_cli_lists_43_patterns_all_supported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["patterns"]) == EXIT_COMPLETED
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"^\s*\d+\s", line)]
    assert [int(row.split()[0]) for row in rows] == list(range(1, 44))
    for row, pattern in zip(rows, PATTERNS.values(), strict=True):
        assert pattern.name in row and "yes/direct" in row and pattern.construct in row


def test_cli_runs_pattern_17_and_prints_its_trace() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "yawlflow", "patterns", "run", "17", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "WCP-17 Interleaved Parallel Routing (seed 3, asyncio)" in done.stdout
    assert re.search(r"^\s+\d+\s+item\.started pack", done.stdout, re.M), done.stdout
    assert done.returncode == EXIT_COMPLETED, done.stdout + done.stderr


def test_cli_runs_a_pattern_and_prints_its_trace_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["patterns", "run", "16", "--seed", "3"]) == EXIT_COMPLETED
    out = capsys.readouterr().out
    assert out.startswith("WCP-16 Deferred Choice (seed 3, asyncio): case case-")
    assert re.search(r"^\s+\d+\s+item\.offered approve \(item \d+\)", out, re.M)
    assert re.search(r"^  ok    exactly one alternative starts$", out, re.M)
    assert out.rstrip().endswith("4 of 4 properties hold")


def test_cli_exit_1_when_a_property_fails(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import yawlflow.patterns as catalogue

    def failing(number: int, result: yf.Result) -> tuple[Verdict, ...]:
        return (Verdict(name="holds", ok=True), Verdict(name="broken", ok=False, message="it broke"))

    monkeypatch.setattr(catalogue, "check", failing)
    assert main(["patterns", "run", "1"]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert re.search(r"^  FAIL  broken: it broke$", out, re.M) and out.rstrip().endswith("1 of 2 properties hold")


def test_cli_json_and_trio(capsys: pytest.CaptureFixture[str]) -> None:
    import orjson

    assert main(["patterns", "run", "3", "--seed", "2", "--json", "--backend", "trio"]) == EXIT_COMPLETED
    payload = orjson.loads(capsys.readouterr().out)
    assert payload["number"] == 3 and payload["name"] == "Synchronization" and payload["backend"] == "trio"
    assert payload["status"] == "completed" and payload["ok"] is True
    assert payload["trace"] == _run(3, 2, "trio").trace
    assert [p["name"] for p in payload["properties"]] == [name for name, _ in get(3).properties]


@pytest.mark.parametrize("argv", [["patterns", "run", "44"], ["patterns", "run", "0"], ["patterns", "run", "x"]])
def test_cli_bad_number_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "1 to 43" in err or "invalid int value" in err


def test_docs_patterns_md_is_up_to_date() -> None:
    path = ROOT / "docs" / "patterns.md"
    assert path.read_text(encoding="utf-8") == render_markdown(), (
        "docs/patterns.md is stale: regenerate it with: python docs/_gen_patterns.py"
    )


def test_docs_matrix_has_one_row_per_pattern_with_cited_peers() -> None:
    text = render_markdown()
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert [int(r.split("|")[1]) for r in rows] == list(range(1, 44))
    yawl = [r.split("|")[4].strip() for r in rows]
    dash = "\N{EN DASH}"
    assert yawl.count("+") == 31 and yawl.count(f"+/{dash}") == 3  # Russell & ter Hofstede (2010), Table 2.5
    assert [n for n, r in zip(range(1, 44), yawl, strict=True) if r == dash] == [11, 23, 24, 28, 30, 31, 32, 41, 42]
    assert "Table 2.5" in text and "workflowpatterns.com" in text and "doc/core/patterns.rst" in text
    for pattern in PATTERNS.values():
        assert f"```yaml\n{pattern.spec.rstrip()}\n```" in text
