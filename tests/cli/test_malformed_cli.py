"""Every malformed spec of tests/spec gives exit 2 from the CLI, its located problems, no traceback."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from yawlflow.cli import main


def _malformed() -> ModuleType:
    path = Path(__file__).parent.parent / "spec" / "test_malformed.py"
    spec = importlib.util.spec_from_file_location("_malformed_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


CASES = _malformed().CASES


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_spec_exits_2_with_located_problems(
    case: object, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(case.text, encoding="utf-8")  # type: ignore[attr-defined]
    code = main([command, str(path)])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    where = f"{path}:{case.line}:" if case.line is not None else f"{path}:"  # type: ignore[attr-defined]
    assert any(line.startswith(where) and case.path in line for line in err.splitlines()), err  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\xff\xfe\x00bad", id="non-utf8"),
        pytest.param(b"a: [" * 5000, id="deep-nesting"),
        pytest.param(
            b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
            b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
            id="alias-bomb",
        ),
        pytest.param(b"", id="empty"),
        pytest.param(b"- just\n- a list\n", id="not-a-mapping"),
    ],
)
def test_hostile_files_exit_2(content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"{path}:"), err
    assert "Traceback" not in err


def test_a_fifty_megabyte_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.write(b"yawlflow: 1\nid: big\n# " + b"x" * (50 * 1024 * 1024) + b"\n")
    assert main(["run", str(path)]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"{path}:") and "Traceback" not in err
