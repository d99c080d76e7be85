# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False
"""Multiple-instance status kernel, compiled twin of ``_mi_py.py``: same names, signatures,
results, errors.

The docstrings that matter live on the pure twin (``yawlflow._hotpath._mi_py``); type checkers
only ever see that one.

Theory of operation. An :class:`MIPolicy` holds the task's fixed parameters as C fields (a flag
for each of "has an int threshold", "has a max"); each status method takes the group's counters
as 64-bit ints and answers with a few comparisons. The constructor checks its arguments in the
pure twin's order and raises its errors; ``count_ok`` takes any number (a CEL count may be huge).

Differences from the pure twin, on calls the runner never makes: the counters passed to
``join_status`` and ``add_status`` are 64-bit (``OverflowError`` past that; the pure twin
compares Python ints of any size).
"""

cimport cython
from libc.stdint cimport int64_t

from ._mi_py import (
    ADD_AT_MAX,
    ADD_OK,
    ADD_STATIC,
    CEL_UNKNOWN,
    MI_ALL_ENDED,
    MI_ASK,
    MI_IDLE,
    MI_JOIN_ALL,
    MI_JOIN_NONE,
    MI_JOIN_THRESHOLD,
    MI_RUNNING,
    MI_THRESHOLD,
    MI_THRESHOLD_CANCEL,
)
from ._mi_py import MIPolicy as _PurePolicy

__all__ = (
    "ADD_AT_MAX",
    "ADD_OK",
    "ADD_STATIC",
    "CEL_UNKNOWN",
    "MI_ALL_ENDED",
    "MI_ASK",
    "MI_IDLE",
    "MI_JOIN_ALL",
    "MI_JOIN_NONE",
    "MI_JOIN_THRESHOLD",
    "MI_RUNNING",
    "MI_THRESHOLD",
    "MI_THRESHOLD_CANCEL",
    "MIPolicy",
)


cdef enum:
    C_JOIN_ALL = 0
    C_JOIN_THRESHOLD = 1
    C_JOIN_NONE = 2
    C_RUNNING = 0
    C_THRESHOLD = 1
    C_THRESHOLD_CANCEL = 2
    C_ALL_ENDED = 3
    C_IDLE = 4
    C_ASK = 5
    C_ADD_OK = 0
    C_ADD_STATIC = 1
    C_ADD_AT_MAX = 2


if (MI_JOIN_ALL, MI_JOIN_THRESHOLD, MI_JOIN_NONE, MI_RUNNING, MI_THRESHOLD, MI_THRESHOLD_CANCEL, MI_ALL_ENDED,
        MI_IDLE, MI_ASK, ADD_OK, ADD_STATIC, ADD_AT_MAX, CEL_UNKNOWN) != (
        C_JOIN_ALL, C_JOIN_THRESHOLD, C_JOIN_NONE, C_RUNNING, C_THRESHOLD, C_THRESHOLD_CANCEL, C_ALL_ENDED,
        C_IDLE, C_ASK, C_ADD_OK, C_ADD_STATIC, C_ADD_AT_MAX, -1):
    raise ImportError(
        "yawlflow._hotpath._mi_cy is out of step with _mi_py (its codes differ): rebuild it (pip install -e .)"
    )


@cython.final
@cython.freelist(16)
@cython.auto_pickle(False)
cdef class MIPolicy:
    """The fixed parameters of one multiple-instance task.

    The compiled twin of ``yawlflow._hotpath._mi_py.MIPolicy``; see its docstrings.
    """

    cdef int _join
    cdef bint _has_threshold, _cel, _has_max, _dynamic, _cancel_rest
    cdef int64_t _threshold, _min, _max

    def __init__(self, *, join, threshold=None, threshold_cel=False, min=0, max=None, dynamic=False,
                 cancel_rest=False):
        # the pure twin checks the arguments: the same errors, in the same order
        p = _PurePolicy(join=join, threshold=threshold, threshold_cel=threshold_cel, min=min, max=max,
                        dynamic=dynamic, cancel_rest=cancel_rest)
        self._join = p.join
        self._has_threshold = p.threshold is not None
        self._threshold = p.threshold if p.threshold is not None else 0
        self._cel = p.threshold_cel
        self._min = p.min
        self._has_max = p.max is not None
        self._max = p.max if p.max is not None else 0
        self._dynamic = p.dynamic
        self._cancel_rest = p.cancel_rest

    @property
    def join(self):
        return self._join

    @property
    def threshold(self):
        return self._threshold if self._has_threshold else None

    @property
    def threshold_cel(self):
        return self._cel

    @property
    def min(self):
        return self._min

    @property
    def max(self):
        return self._max if self._has_max else None

    @property
    def dynamic(self):
        return self._dynamic

    @property
    def cancel_rest(self):
        return self._cancel_rest

    def join_status(self, int64_t created, int64_t finished, int64_t completed, int64_t live, bint done,
                    int64_t cel=-1):
        """What the join says of a group: one of the ``MI_*`` status codes."""
        cdef bint met
        if done or self._join == C_JOIN_NONE:
            return C_IDLE
        if self._has_threshold:
            met = completed >= self._threshold
        elif self._cel:
            if cel < 0:
                return C_ASK
            met = cel > 0
        else:
            met = False
        if met:
            return C_THRESHOLD_CANCEL if self._cancel_rest else C_THRESHOLD
        if finished >= created and live == 0:
            return C_ALL_ENDED
        return C_RUNNING

    def add_status(self, int64_t created):
        """Whether an instance may be added to a running group of ``created`` instances."""
        if not self._dynamic:
            return C_ADD_STATIC
        if self._has_max and created >= self._max:
            return C_ADD_AT_MAX
        return C_ADD_OK

    def count_ok(self, n):
        """Whether ``n`` instances lie within ``[min, max]``."""
        cdef int64_t k
        try:
            k = n
        except (OverflowError, TypeError):  # past 64 bits, or not an int: compare as Python does
            return not (n < self.min or (self._has_max and n > self.max))
        return not (k < self._min or (self._has_max and k > self._max))

    def __repr__(self):
        return (f"MIPolicy(join={self.join}, threshold={self.threshold}, threshold_cel={self.threshold_cel}, "
                f"min={self.min}, max={self.max}, dynamic={self.dynamic}, cancel_rest={self.cancel_rest})")
