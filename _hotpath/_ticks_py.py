"""Tick counter and batch drivers, pure-Python twin of ``_ticks_cy.pyx``.

Theory of operation. A measurement reads a counter, runs a *batch* of calls, and reads the
counter again; ``yawlflow._ticks`` divides by the number of operations. The compiled twin runs
the batch loop in C and reads the CPU's time-stamp counter (``rdtsc``) inline on x86-64. This
twin has no counter of its own (``RDTSC`` is false: the kernels package does no I/O and reads no
clock, so it imports no ``time``): the caller passes a clock, ``time.perf_counter_ns``, which the
drivers call before and after the batch. Its loop is the interpreter's, so a batch costs each
call plus one turn of a Python ``for`` loop.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

__all__ = ("COMPILER", "CYTHON_HEX", "RDTSC", "CallFloor", "rdtsc", "run_each", "run_repeat")

RDTSC = False
"""Whether :func:`rdtsc` reads a time-stamp counter (only the compiled twin, on x86-64)."""

COMPILER = f"none (pure Python; the interpreter was built with {platform.python_compiler()})"
"""The C compiler that built this twin."""

CYTHON_HEX = 0
"""``CYTHON_HEX_VERSION`` of the Cython that generated this twin (0: not generated)."""

Clock = Callable[[], int]


def _need(clock: Clock | None) -> Clock:
    if clock is None:
        raise RuntimeError("the pure-Python tick driver has no counter of its own: pass a clock")
    return clock


def rdtsc() -> int:
    """The CPU's time-stamp counter (compiled twin, x86-64 only).

    Raises:
        RuntimeError: always here: this twin has no counter.
    """
    raise RuntimeError("no time-stamp counter in the pure-Python twin: pass a clock to the drivers instead")


def run_each(fn: Callable[[Any], object], args: tuple[Any, ...], clock: Clock | None = None) -> int:
    """Call ``fn(a)`` for each ``a`` in ``args``; return the clock's difference across the batch.

    Args:
        fn: the operation.
        args: one argument per call.
        clock: an integer counter; ``None`` means the time-stamp counter (compiled twin only).

    Raises:
        RuntimeError: ``clock`` is ``None`` and there is no time-stamp counter.
    """
    if type(args) is not tuple:
        raise TypeError(f"Argument 'args' has incorrect type (expected tuple, got {type(args).__name__})")
    read = _need(clock)
    start = read()
    for a in args:
        fn(a)
    return read() - start


def run_repeat(fn: Callable[[], object], n: int, clock: Clock | None = None) -> int:
    """Call ``fn()`` ``n`` times; return the clock's difference across the batch.

    Raises:
        RuntimeError: ``clock`` is ``None`` and there is no time-stamp counter.
    """
    read = _need(clock)
    start = read()
    for _ in range(n):
        fn()
    return read() - start


class CallFloor:
    """A method that does nothing: what any call into a kernel costs before its work."""

    __slots__ = ()

    def op(self, i: int) -> int:
        """Return 0."""
        return 0
