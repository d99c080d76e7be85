"""examples/connector-plugin installs from its folder, is found through its entry point, and passes the kit.

pip installs a copy (so the build leaves nothing in the repository) into a target folder, without
build isolation or dependencies, so the test needs no network; its own tests then run against
that install, the way ``.ci/run`` runs them in the CI venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "connector-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("plugin")
    source = tmp / "src"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--target", str(target), str(source)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 and "No module named pip" in done.stderr:  # pragma: no cover
        pytest.skip("pip is not installed in this interpreter")
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return target


def run(target: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_it_is_discovered_through_its_entry_point(installed: Path) -> None:
    probe = ("import sys; from yawlflow.connectors import registry; assert 'sqlite' in registry.names(); "
             "assert 'yawlflow_sqlite' not in sys.modules; print(registry.connector_class('sqlite').__module__)")
    done = run(installed, "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "yawlflow_sqlite\n"


def test_its_tests_pass_the_kit(installed: Path) -> None:
    done = run(installed, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "tests", cwd=PLUGIN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout and "failed" not in done.stdout
