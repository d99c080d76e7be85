# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False
# cython: initializedcheck=False
"""Tick counter and batch drivers, compiled twin of ``_ticks_py.py``: same names, same results.

The docstrings that matter live on the pure twin (``yawlflow._hotpath._ticks_py``); type
checkers only ever see that one. ``yawlflow._ticks`` picks a twin and turns what they return
into ticks per operation; ``yawlflow.testing`` is the pytest plugin on top.

Theory of operation. A measurement reads a counter, runs a *batch* of calls, reads the counter
again. Here the loop over the batch is C: each call is one vectorcall, with no Python frame and
no interpreter loop between calls, so a batch of ``n`` calls of a compiled method costs ``n``
times the method's own cost plus the protocol that any call from outside its module pays (boxing
the argument, dispatch, unboxing the result). The counter is the CPU's time-stamp counter
(``rdtsc``) on x86-64, read inline; elsewhere ``RDTSC`` is false and the caller passes its own
clock (``time.perf_counter_ns``), which the drivers call before and after the batch.
"""

from cpython.tuple cimport PyTuple_GET_ITEM

__all__ = ("COMPILER", "CYTHON_HEX", "RDTSC", "CallFloor", "rdtsc", "run_each", "run_repeat")


cdef extern from *:
    """
    #if defined(__x86_64__) || defined(_M_X64) || defined(__amd64__)
    #  if defined(_MSC_VER)
    #    include <intrin.h>
    #  else
    #    include <x86intrin.h>
    #  endif
    #  define YF_HAVE_RDTSC 1
    static inline unsigned long long yf_rdtsc(void) { return (unsigned long long)__rdtsc(); }
    #else
    #  define YF_HAVE_RDTSC 0
    static inline unsigned long long yf_rdtsc(void) { return 0ULL; }
    #endif

    #define YF_STR2(x) #x
    #define YF_STR(x) YF_STR2(x)
    #if defined(__clang__)
    #  define YF_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #  define YF_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
    #  define YF_COMPILER "msvc " YF_STR(_MSC_FULL_VER)
    #else
    #  define YF_COMPILER "unknown"
    #endif
    #ifndef CYTHON_HEX_VERSION
    #  define CYTHON_HEX_VERSION 0
    #endif
    """
    unsigned long long yf_rdtsc() nogil
    int YF_HAVE_RDTSC
    const char* YF_COMPILER
    long CYTHON_HEX_VERSION


RDTSC = bool(YF_HAVE_RDTSC)
COMPILER = YF_COMPILER.decode("utf-8", "replace").strip()
CYTHON_HEX = CYTHON_HEX_VERSION


def rdtsc():
    """The CPU's time-stamp counter (x86-64 only); RuntimeError elsewhere."""
    if not YF_HAVE_RDTSC:
        raise RuntimeError("no time-stamp counter on this CPU: pass a clock to the drivers instead")
    return yf_rdtsc()


def run_each(fn, tuple args, clock=None):
    """Call ``fn(a)`` for each ``a`` in ``args``; return the clock's difference across the batch."""
    cdef Py_ssize_t i, n = len(args)
    cdef unsigned long long t0, t1
    if clock is None:
        if not YF_HAVE_RDTSC:
            raise RuntimeError("no time-stamp counter on this CPU: pass a clock")
        t0 = yf_rdtsc()
        for i in range(n):
            fn(<object>PyTuple_GET_ITEM(args, i))
        t1 = yf_rdtsc()
        return t1 - t0
    start = clock()
    for i in range(n):
        fn(<object>PyTuple_GET_ITEM(args, i))
    return clock() - start


def run_repeat(fn, Py_ssize_t n, clock=None):
    """Call ``fn()`` ``n`` times; return the clock's difference across the batch."""
    cdef Py_ssize_t i
    cdef unsigned long long t0, t1
    if clock is None:
        if not YF_HAVE_RDTSC:
            raise RuntimeError("no time-stamp counter on this CPU: pass a clock")
        t0 = yf_rdtsc()
        for i in range(n):
            fn()
        t1 = yf_rdtsc()
        return t1 - t0
    start = clock()
    for i in range(n):
        fn()
    return clock() - start


cdef class CallFloor:
    """A compiled method that does nothing: what any call into a kernel costs before its work."""

    def op(self, Py_ssize_t i):
        """Return 0 (the argument is unboxed, as a kernel's index is)."""
        return 0
