"""Fixtures for the kernel tests: each kernel test runs over both twins, pure and compiled."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def load_twin(name: str) -> ModuleType:
    """Import ``yawlflow._hotpath._marking_{name}``.

    The compiled twin may be missing (a pure-Python build): then the test is skipped, with the
    reason, unless ``YAWLFLOW_REQUIRE_CYTHON=1`` (CI), which makes it fail.
    """
    try:
        return importlib.import_module(f"yawlflow._hotpath._marking_{name}")
    except ImportError as exc:
        if name == "py" or os.environ.get("YAWLFLOW_REQUIRE_CYTHON") == "1":
            raise
        pytest.skip(
            f"compiled kernels not built ({exc}); testing the pure twin only "
            "(build them with: YAWLFLOW_CYTHON=1 pip install -e .)"
        )


@pytest.fixture(params=["py", "cy"], scope="session")
def kernels(request: pytest.FixtureRequest) -> ModuleType:
    """The marking kernel module, once per twin: ``_marking_py`` and ``_marking_cy``."""
    return load_twin(request.param)


@pytest.fixture(scope="session")
def py() -> ModuleType:
    """The pure-Python twin: the reference the compiled one is compared with."""
    return load_twin("py")


@pytest.fixture(scope="session")
def cy() -> ModuleType:
    """The compiled twin (skipped when not built, unless YAWLFLOW_REQUIRE_CYTHON=1)."""
    return load_twin("cy")
