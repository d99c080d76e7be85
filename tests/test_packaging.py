"""Packaging: the wheel holds every package and nothing else; ``import yawlflow`` stays light."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS: dict[str, Any] = PYPROJECT["tool"]["setuptools"]

# what a copy of the source tree leaves behind: version control, builds, caches, environments
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    "build",
    "dist",
    "*.egg-info",
    ".venv*",
    "__pycache__",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".benchmarks",
    "*.so",
    "*.pyd",
    "*.c",
)


def source_packages() -> dict[str, str]:
    """Every package in the source tree, by import name: each folder with an ``__init__.py``
    under a folder that pyproject.toml maps to a package, at any depth."""
    found: dict[str, str] = {}
    for package, folder in SETUPTOOLS["package-dir"].items():
        root = REPO / folder
        for init in sorted(root.rglob("__init__.py")):
            rel = init.parent.relative_to(root)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            found[".".join((package, *rel.parts))] = init.parent.relative_to(REPO).as_posix()
    return found


def test_every_source_package_is_listed_in_pyproject() -> None:
    listed = set(SETUPTOOLS["packages"])
    missing = {name: folder for name, folder in source_packages().items() if name not in listed}
    assert not missing, (
        "packages that the wheel would leave out; add to [tool.setuptools] packages: "
        + ", ".join(f'"{name}" (folder {folder}/)' for name, folder in sorted(missing.items()))
    )


def test_the_mapped_folders_exist() -> None:
    for package, folder in SETUPTOOLS["package-dir"].items():
        assert (REPO / folder / "__init__.py").is_file(), (
            f"{package} maps to {folder}/, which has no __init__.py"
        )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """A wheel built from a clean copy of the source tree, without the compiled kernels.

    Offline and fast: no build isolation (the dev extra installs setuptools and wheel) and
    YAWLFLOW_CYTHON=0. The copy keeps stale build/ folders of this checkout out of the wheel.
    """
    try:
        setuptools = version("setuptools")
    except PackageNotFoundError:
        setuptools = "0 (not installed)"
    if int(setuptools.split(".")[0]) < 70:
        pytest.fail(
            f"setuptools {setuptools} cannot build yawlflow (it needs >= 70): pip install -e '.[dev]'"
        )
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=_NOT_SOURCE)
    env = {**os.environ, "YAWLFLOW_CYTHON": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        str(src),
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp / "dist"),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    (path,) = (tmp / "dist").glob("yawlflow-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_every_package(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for package, folder in sorted(source_packages().items()):
        init = package.replace(".", "/") + "/__init__.py"
        assert init in names, (
            f"{folder}/ ({package}) is missing from the wheel: add it to [tool.setuptools] packages"
        )


def test_the_wheel_holds_the_package_data(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "yawlflow/py.typed" in names
    assert "yawlflow/_hotpath/_marking_cy.pyx" in names
    assert "yawlflow/_hotpath/_marking_py.py" in names
    compiled = [n for n in names if n.endswith((".c", ".so", ".pyd"))]
    assert not compiled, f"YAWLFLOW_CYTHON=0 builds no extension, yet the wheel holds {compiled}"


def test_the_wheel_holds_nothing_else(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert tops == {"yawlflow", "yawlflow-0.1.0.dist-info"}
    for name in wheel.namelist():
        parts = name.split("/")
        assert not {"tests", "benches", "examples", "docs", "__pycache__"} & set(parts), name


def test_a_pure_build_is_a_pure_wheel(wheel: zipfile.ZipFile) -> None:
    assert Path(str(wheel.filename)).name == "yawlflow-0.1.0-py3-none-any.whl"


def test_the_wheel_metadata(wheel: zipfile.ZipFile) -> None:
    entry_points = wheel.read("yawlflow-0.1.0.dist-info/entry_points.txt").decode()
    assert re.search(r"^\[console_scripts\]\nyawlflow = yawlflow\.cli:main$", entry_points, re.M)
    assert re.search(r"^\[pytest11\]\nyawlflow = yawlflow\.testing$", entry_points, re.M)
    metadata = wheel.read("yawlflow-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Python: >=3.11" in metadata
    assert 'Requires-Dist: uvloop; sys_platform != "win32"' in metadata
    assert "Provides-Extra: dev" in metadata


# -- import cost ---------------------------------------------------------------------------------

IMPORT_BUDGET_US = 150_000
_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)\s*$")


def _import_yawlflow() -> tuple[int, list[str]]:
    """Import yawlflow in a fresh interpreter: its cumulative import time (us), every module."""
    unset = ("PYTHONPROFILEIMPORTTIME", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import yawlflow"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    cumulative, modules = None, []
    for line in done.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            modules.append(match[4])
            if match[4] == "yawlflow":
                cumulative = int(match[2])
    assert cumulative is not None, f"no import of yawlflow in:\n{done.stderr}"
    return cumulative, modules


@pytest.mark.skipif(
    not (REPO / "engine" / "__init__.py").exists(), reason="engine/__init__.py is not written yet"
)
def test_import_yawlflow_is_light() -> None:
    """``import yawlflow`` does not import CEL (a spec with expressions does) and stays fast.

    Best of three, so that compiling the .pyc files on the first run does not count.
    """
    runs = [_import_yawlflow() for _ in range(3)]
    best = min(cumulative for cumulative, _ in runs)
    modules = runs[0][1]
    assert not [m for m in modules if m == "cel" or m.startswith("cel.")], "import yawlflow imports cel"
    assert best < IMPORT_BUDGET_US, (
        f"import yawlflow takes {best / 1000:.1f} ms (budget {IMPORT_BUDGET_US / 1000:.0f} ms); "
        "see python -X importtime -c 'import yawlflow'"
    )
