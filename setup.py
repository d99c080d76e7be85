"""Build yawlflow's Cython kernels. Everything else (metadata, packages) is in pyproject.toml.

The environment variable ``YAWLFLOW_CYTHON`` says what to do with the extensions:

* unset: compile them; if Cython or numpy is missing, or a compile fails, warn and build
  without them, so that ``yawlflow._hotpath`` loads the pure-Python twins (PyYAML's model);
* ``1``: compile them; any failure is an error (CI sets this);
* ``0``: build no extensions: a pure-Python build.

Works for ``pip install .``, ``pip wheel .`` and ``pip install -e .`` (PEP 660).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

MODE = os.environ.get("YAWLFLOW_CYTHON", "")
if MODE not in ("", "0", "1"):
    sys.exit(
        f"YAWLFLOW_CYTHON={MODE!r} is not understood: use 1 (compile, fail on error), "
        "0 (pure Python) or leave it unset (compile, fall back to pure Python on failure)"
    )

# (module, source): the pure twin of each sits beside it as <name with _py>.py
KERNELS = [
    ("yawlflow._hotpath._marking_cy", "_hotpath/_marking_cy.pyx"),
    ("yawlflow._hotpath._orjoin_cy", "_hotpath/_orjoin_cy.pyx"),  # the OR-join screen and exact test
    ("yawlflow._hotpath._mi_cy", "_hotpath/_mi_cy.pyx"),  # multiple-instance status
    ("yawlflow._hotpath._ticks_cy", "_hotpath/_ticks_cy.pyx"),  # rdtsc for the tick plugin
]

CYTHON_DIRECTIVES = {
    "language_level": 3,
    "embedsignature": True,
    "boundscheck": False,
    "wraparound": False,
}


# what a failed compile or link raises (ValueError: cythonize found no source)
_BUILD_FAILURES = (CCompilerError, CompileError, LinkError, ExecError, PlatformError, OSError, ValueError)


def _banner(message: str) -> None:
    line = "=" * 78
    print(f"\n{line}\nWARNING: {message}\n{line}\n", file=sys.stderr, flush=True)


class BuildKernels(build_ext):
    """build_ext that cythonizes first and, unless YAWLFLOW_CYTHON=1, survives a failure."""

    def build_extensions(self) -> None:
        self._failed: list[Extension] = []
        try:
            import numpy
            from Cython.Build import cythonize
        except ImportError as exc:
            self._give_up(self.extensions, f"Cython or numpy is not installed ({exc})")
            self.extensions = []
            return
        self._cythonize: Callable[..., list[Extension]] = cythonize
        self._numpy_include: str = numpy.get_include()
        super().build_extensions()
        # a failed optional extension must not be copied in place (pip install -e) or listed
        self.extensions = [ext for ext in self.extensions if ext not in self._failed]

    def build_extension(self, ext: Any) -> None:
        from Cython.Compiler.Errors import CompileError as CythonError

        try:
            self._cythonize_sources(ext)
            super().build_extension(ext)
        except (CythonError, *_BUILD_FAILURES) as exc:
            self._give_up([ext], f"{type(exc).__name__}: {exc}")

    def _cythonize_sources(self, ext: Extension) -> None:
        if not any(str(src).endswith(".pyx") for src in ext.sources):
            return
        if self._numpy_include not in ext.include_dirs:
            ext.include_dirs.append(self._numpy_include)
        (cythonized,) = self._cythonize(
            [Extension(ext.name, list(ext.sources))],
            compiler_directives=CYTHON_DIRECTIVES,
            build_dir=os.path.join(self.build_temp, "cython"),
            force=self.force,
            quiet=True,
        )
        ext.sources = list(cythonized.sources)

    def _give_up(self, exts: list[Extension], why: str) -> None:
        names = ", ".join(ext.name for ext in exts)
        if MODE == "1":
            sys.exit(
                f"YAWLFLOW_CYTHON=1 and the compiled kernels ({names}) could not be built: {why}\n"
                "Fix the build, or unset YAWLFLOW_CYTHON to fall back to the pure-Python twins."
            )
        _banner(
            f"the compiled kernels ({names}) could not be built: {why}\n"
            "yawlflow is installed with the pure-Python twins instead (correct, but slower).\n"
            "Set YAWLFLOW_CYTHON=1 to make this an error."
        )
        self._failed.extend(exts)


def _extensions() -> list[Extension]:
    if MODE == "0":
        return []
    return [
        Extension(
            name,
            [source],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            # a failure of an optional extension is a warning in distutils itself too
            optional=MODE != "1",
        )
        for name, source in KERNELS
    ]


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildKernels})
