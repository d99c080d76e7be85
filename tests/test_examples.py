"""The examples run, and every snippet in the README and docs/ is a file that runs or a spec that loads.

Conventions in the Markdown:
* a fenced block right after ``<!-- file: PATH -->`` must equal that file, byte for byte;
* every ``python`` block in the README is such a block; one in docs/ that is not is a fragment,
  and must compile (top-level ``await`` allowed);
* a marked Python program under examples/ (not a test file) is run: by a console block that
  shows its output, else by ``test_marked_programs_run`` (exit 0, nothing on stderr);
* a ``yaml`` block holding a whole spec (``yawlflow: 1``) must load;
* in a ``console`` block, ``$ yawlflow ...`` and ``$ python ...`` lines are run from the
  repository root; each following line must appear in what they print (case ids aside), and
  ``[exit N]`` gives the exit code (default 0).
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import yawlflow as yf

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SPECS = sorted(p for p in EXAMPLES.glob("*.yaml") if p.name != "yawlflow.yaml")

_FENCE = re.compile(
    r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.S | re.M
)
_CASE_ID = re.compile(r"case-[0-9a-f]+")


def blocks(path: Path) -> list[tuple[str | None, str, str]]:
    """(marked file, language, body) of each fenced block in ``path``."""
    text = path.read_text(encoding="utf-8")
    return [(m["file"], m["lang"], m["body"]) for m in _FENCE.finditer(text)]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _clean_env() -> dict[str, str]:
    """This process's environment without a configuration of its own (docs run with none)."""
    return {k: v for k, v in os.environ.items() if k != "YAWLFLOW_CONFIG"}


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=60, check=False
    )


# -- the examples ---------------------------------------------------------------------------------


def test_embed_example_runs() -> None:
    done = run([sys.executable, "examples/embed.py"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "completed {'qty': 30, 'amount': 1200, 'credit_ok': True, 'approved_by': 'ana'}\n"
    assert done.stderr == ""


def test_embed_example_is_short() -> None:
    assert len((EXAMPLES / "embed.py").read_text().splitlines()) <= 40


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_example_specs_load(spec: Path) -> None:
    assert yf.load(spec).nets


def test_orders_completes_without_handlers() -> None:
    result = yf.run(EXAMPLES / "orders.yaml", seed=1)
    assert result.status == "completed"
    path = [r["task"] for r in result.trace if r["event"] == "item.completed"]
    assert path[0] == "receive" and path[-1] == "ship"


def test_orders_external_waits_for_the_approval() -> None:
    result = yf.run(EXAMPLES / "orders_external.yaml", seed=1)
    assert result.status == "waiting"
    assert sorted(item.task for item in result.offered) == ["approve", "withdraw"]


# -- the README and docs/ -------------------------------------------------------------------------


def test_readme_python_blocks_are_example_files() -> None:
    python = [(marked, body) for marked, lang, body in blocks(ROOT / "README.md") if lang == "python"]
    assert python, "the README shows an embedding example"
    for marked, body in python:
        assert marked is not None, "mark each python block of the README with <!-- file: examples/... -->"
        assert body == (ROOT / marked).read_text(encoding="utf-8"), f"the README's copy of {marked} differs"
    assert ("examples/embed.py", (EXAMPLES / "embed.py").read_text()) in python


MARKED = [(rel(md), marked, body) for md in MARKDOWN for marked, _, body in blocks(md) if marked is not None]


@pytest.mark.parametrize(("doc", "marked", "body"), MARKED, ids=[f"{d}:{m}" for d, m, _ in MARKED])
def test_marked_blocks_equal_their_files(doc: str, marked: str, body: str) -> None:
    assert body == (ROOT / marked).read_text(encoding="utf-8"), (
        f"{doc}: its copy of {marked} differs from the file"
    )


FRAGMENTS = [
    (rel(md), i, body)
    for md in MARKDOWN
    for i, (marked, lang, body) in enumerate(blocks(md))
    if lang == "python" and marked is None
]


@pytest.mark.parametrize(("doc", "index", "body"), FRAGMENTS, ids=[f"{d}#{i}" for d, i, _ in FRAGMENTS])
def test_python_fragments_compile(doc: str, index: int, body: str) -> None:
    try:
        compile(body, f"{doc}#{index}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except SyntaxError as exc:
        pytest.fail(f"{doc}: python block #{index} does not compile: {exc}")


def _is_program(marked: str) -> bool:
    path = Path(marked)
    return path.suffix == ".py" and path.parts[0] == "examples" and not path.name.startswith(("test_", "conftest"))


PROGRAMS = sorted({marked for _, marked, _ in MARKED if _is_program(marked)})


def test_docs_show_example_programs() -> None:
    assert {"examples/embed.py", "examples/embed_asyncio.py", "examples/embed_trio.py"} <= set(PROGRAMS)


SPEC_BLOCKS = [
    (rel(md), i, body)
    for md in MARKDOWN
    for i, (_, lang, body) in enumerate(blocks(md))
    if lang in ("yaml", "json") and re.search(r'^"?yawlflow"?: 1', body, re.M)
]


@pytest.mark.parametrize(("doc", "index", "body"), SPEC_BLOCKS, ids=[f"{d}#{i}" for d, i, _ in SPEC_BLOCKS])
def test_spec_snippets_load(doc: str, index: int, body: str) -> None:
    yf.loads(body, source=f"{doc}#{index}")


def console_runs() -> list[tuple[str, str, int, list[str]]]:
    """(doc, command, expected exit code, expected output lines) of each console command."""
    found: list[tuple[str, str, int, list[str]]] = []
    for md in MARKDOWN:
        for _, lang, body in blocks(md):
            if lang != "console":
                continue
            for chunk in re.split(r"^(?=\$ )", body, flags=re.M):
                if not chunk.startswith("$ "):
                    continue
                command, *lines = chunk.splitlines()
                code = 0
                for line in lines:
                    if match := re.fullmatch(r"\[exit (\d+)\]", line):
                        code = int(match[1])
                found.append((rel(md), command[2:], code, [ln for ln in lines if not ln.startswith("[exit")]))
    return found


CONSOLE = console_runs()


def test_docs_have_console_examples() -> None:
    assert len(CONSOLE) >= 5


@pytest.mark.parametrize(
    ("doc", "command", "code", "lines"), CONSOLE, ids=[f"{d}: {c}" for d, c, _, _ in CONSOLE]
)
def test_console_examples(doc: str, command: str, code: int, lines: list[str]) -> None:
    argv = shlex.split(command)
    if argv[0] == "yawlflow":
        argv = [sys.executable, "-m", "yawlflow", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    else:
        pytest.fail(f"{doc}: a console example runs yawlflow or python, not {argv[0]!r}")
    done = run(argv)
    assert done.returncode == code, f"{doc}: `{command}` exited {done.returncode}: {done.stderr}"
    assert "Traceback" not in done.stderr
    printed = _CASE_ID.sub("case-ID", done.stdout + done.stderr).splitlines()
    for line in lines:
        assert _CASE_ID.sub("case-ID", line) in printed, f"{doc}: `{command}` did not print {line!r}"


_SHOWN = {shlex.split(command)[1] for _, command, _, _ in CONSOLE if command.startswith("python ")}


def test_marked_programs_run() -> None:
    """A marked program no console block runs is run here (today every one is shown with its output)."""
    for program in (p for p in PROGRAMS if p not in _SHOWN):
        done = run([sys.executable, program])
        assert done.returncode == 0, f"{program} exited {done.returncode}: {done.stderr}"
        assert done.stderr == "", f"{program} wrote to stderr: {done.stderr}"


def test_shown_programs_are_marked() -> None:
    """A program a console block runs is shown in the docs too (so what it prints matches what it is)."""
    shown = {p for p in _SHOWN if p.startswith("examples/")}
    assert shown <= set(PROGRAMS) | {"examples/embed.py"}, shown - set(PROGRAMS)
