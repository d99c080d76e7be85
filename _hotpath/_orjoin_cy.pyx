# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False
# cython: initializedcheck=False, cdivision=True
"""OR-join kernels, compiled twin of ``_orjoin_py.py``: same names, signatures, results, errors.

The docstrings that matter live on the pure twin (``yawlflow._hotpath._orjoin_py``); type
checkers only ever see that one.

Theory of operation. Both classes take their arrays through the pure twin's ``prepare`` /
``prepare_screen``, which check them (so a malformed net raises the same ``ValueError`` in both
twins) and derive the per-transition tables; the objects here keep those numpy arrays alive and
read them through raw pointers, without bounds checks (every index was checked there).

``Coverability.coverable`` copies the goals into an *arena*: one growable ``malloc`` block of
``int64`` vectors, ``size`` counts each. Every predecessor is computed straight into the next
free arena slot and kept (the slot committed) only if it enters the basis; the basis and the
frontier are growable arrays of arena slot numbers, the frontier a stack, so the search visits
the same vectors in the same order as the pure twin's lists, and the limit bites at the same
insertion. The search runs without the GIL. ``OrJoinScreen.screen`` calls the marking's Python
methods (``get``, ``busy``, ``capacity``, ``region_live``), in the pure twin's order, so it
works with either Marking twin; the loops around them are C.

Differences from the pure twin, on calls the runner never makes: counts in ``current`` and the
goals are 64-bit (``OverflowError`` past that), and the arithmetic on them wraps past 2**63.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from ._orjoin_py import (
    COVERABLE,
    LIMIT_REACHED,
    NOT_COVERABLE,
    SCREEN_EXACT,
    SCREEN_FIRE,
    SCREEN_WAIT,
    prepare,
    prepare_screen,
)

__all__ = (
    "COVERABLE",
    "LIMIT_REACHED",
    "NOT_COVERABLE",
    "SCREEN_EXACT",
    "SCREEN_FIRE",
    "SCREEN_WAIT",
    "Coverability",
    "OrJoinScreen",
)


cdef enum:
    C_NOT_COVERABLE = 0
    C_COVERABLE = 1
    C_LIMIT_REACHED = 2
    C_NO_MEMORY = -1
    C_SCREEN_WAIT = 0
    C_SCREEN_FIRE = 1
    C_SCREEN_EXACT = 2


if (NOT_COVERABLE, COVERABLE, LIMIT_REACHED, SCREEN_WAIT, SCREEN_FIRE, SCREEN_EXACT) != (
    C_NOT_COVERABLE, C_COVERABLE, C_LIMIT_REACHED, C_SCREEN_WAIT, C_SCREEN_FIRE, C_SCREEN_EXACT
):
    raise ImportError(
        "yawlflow._hotpath._orjoin_cy is out of step with _orjoin_py (its codes differ): "
        "rebuild it (pip install -e .)"
    )


cdef inline const int32_t* _p32(const int32_t[::1] mv) noexcept:
    return &mv[0] if mv.shape[0] else NULL


cdef inline const int64_t* _p64(const int64_t[::1] mv) noexcept:
    return &mv[0] if mv.shape[0] else NULL


# -- the exact test ------------------------------------------------------------------------------

cdef struct _Net:
    Py_ssize_t size
    Py_ssize_t n_tr
    const int32_t* pre_ptr
    const int32_t* pre_idx
    const int64_t* pre_cnt
    const int32_t* pre_reset
    const int32_t* post_ptr
    const int32_t* post_idx
    const int64_t* post_cnt
    const int32_t* post_reset
    const int32_t* reset_ptr
    const int32_t* reset_idx
    const int64_t* reset_post
    const int32_t* need_ptr
    const int32_t* need_idx
    const int64_t* need_cnt


cdef struct _Search:
    int64_t* arena  # n_vec vectors of size counts, room for cap_vec
    Py_ssize_t n_vec, cap_vec
    Py_ssize_t* basis  # arena slots
    Py_ssize_t n_basis, cap_basis
    Py_ssize_t* frontier  # arena slots, a stack
    Py_ssize_t n_front, cap_front


cdef inline bint _leq(const int64_t* a, const int64_t* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if a[i] > b[i]:
            return False
    return True


cdef bint _predecessor(const _Net* s, Py_ssize_t t, const int64_t* m, int64_t* out) noexcept nogil:
    """Write the minimal predecessor of ``m`` under transition ``t`` into ``out``; False if none."""
    cdef Py_ssize_t j, i
    cdef int64_t v, k
    cdef bint needed = False
    for j in range(s.need_ptr[t], s.need_ptr[t + 1]):
        if m[s.need_idx[j]] > 0 and s.need_cnt[j] > 0:
            needed = True
            break
    if not needed:
        return False  # the transition adds nothing m needs: its predecessor would be >= m
    for j in range(s.reset_ptr[t], s.reset_ptr[t + 1]):
        if m[s.reset_idx[j]] > s.reset_post[j]:
            return False  # after the reset it holds only what t puts there: m cannot be covered
    memcpy(out, m, <size_t>s.size * sizeof(int64_t))
    for j in range(s.reset_ptr[t], s.reset_ptr[t + 1]):
        out[s.reset_idx[j]] = 0
    for j in range(s.post_ptr[t], s.post_ptr[t + 1]):
        if not s.post_reset[j]:
            i = s.post_idx[j]
            v = out[i] - s.post_cnt[j]
            out[i] = v if v > 0 else 0
    for j in range(s.pre_ptr[t], s.pre_ptr[t + 1]):
        i = s.pre_idx[j]
        k = s.pre_cnt[j]
        if s.pre_reset[j]:
            if k > out[i]:
                out[i] = k
        else:
            out[i] += k
    return True


cdef int _grow(void** block, Py_ssize_t* cap, Py_ssize_t need, size_t item) noexcept nogil:
    """Make room for ``need`` items of ``item`` bytes in ``*block``; -1 when out of memory."""
    cdef Py_ssize_t new_cap
    cdef void* grown
    if need <= cap[0]:
        return 0
    new_cap = cap[0] * 2 if cap[0] else 16
    while new_cap < need:
        new_cap *= 2
    grown = realloc(block[0], <size_t>new_cap * item if new_cap * item else 1)
    if grown == NULL:
        return -1
    block[0] = grown
    cap[0] = new_cap
    return 0


cdef int _search(const _Net* s, const int64_t* now, _Search* w, Py_ssize_t n_goals,
                 int64_t limit) noexcept nogil:
    """The backward search of the pure twin's ``coverable``, over the arena; the goals are in
    its first ``n_goals`` slots. Returns a ``C_*`` code (``C_NO_MEMORY`` when out of memory)."""
    cdef Py_ssize_t size = s.size, vec = size if size else 1
    cdef Py_ssize_t mi, t, j, k, slot
    cdef int64_t inserted = 0
    cdef int64_t* m
    cdef int64_t* out
    cdef bint covered
    for j in range(n_goals):
        w.basis[j] = j
        w.frontier[j] = j
    w.n_basis = w.n_front = n_goals
    while w.n_front:
        w.n_front -= 1
        mi = w.frontier[w.n_front]
        if _leq(w.arena + mi * vec, now, size):
            return C_COVERABLE
        for t in range(s.n_tr):
            if _grow(<void**>&w.arena, &w.cap_vec, w.n_vec + 1, <size_t>vec * sizeof(int64_t)) < 0:
                return C_NO_MEMORY
            m = w.arena + mi * vec
            slot = w.n_vec
            out = w.arena + slot * vec
            if not _predecessor(s, t, m, out):
                continue
            covered = False
            for j in range(w.n_basis):
                if _leq(w.arena + w.basis[j] * vec, out, size):
                    covered = True
                    break
            if covered:
                continue
            if _leq(out, now, size):
                return C_COVERABLE
            k = 0
            for j in range(w.n_basis):
                if not _leq(out, w.arena + w.basis[j] * vec, size):
                    w.basis[k] = w.basis[j]
                    k += 1
            w.n_basis = k
            if (_grow(<void**>&w.basis, &w.cap_basis, k + 1, sizeof(Py_ssize_t)) < 0
                    or _grow(<void**>&w.frontier, &w.cap_front, w.n_front + 1, sizeof(Py_ssize_t)) < 0):
                return C_NO_MEMORY
            w.basis[w.n_basis] = slot
            w.n_basis += 1
            w.frontier[w.n_front] = slot
            w.n_front += 1
            w.n_vec += 1
            inserted += 1
            if inserted > limit:
                return C_LIMIT_REACHED
    return C_NOT_COVERABLE


cdef int _fill(int64_t* out, object values, Py_ssize_t size, str what) except -1:
    cdef list vec = [int(x) for x in values]
    cdef Py_ssize_t i
    if len(vec) != size:
        raise ValueError(f"{what} has {len(vec)} entries; the vector has {size}")
    for i in range(size):
        out[i] = vec[i]
    return 0


@cython.final
@cython.auto_pickle(False)
cdef class Coverability:
    """Backward coverability on one restricted reset net (one OR-join's).

    The compiled twin of ``yawlflow._hotpath._orjoin_py.Coverability``; see its docstrings.
    """

    cdef _Net _s
    cdef readonly Py_ssize_t size
    cdef readonly Py_ssize_t n_transitions
    cdef Py_ssize_t _n_places, _n_tasks
    cdef const int32_t* _places
    cdef const int32_t* _tasks
    cdef object _keep  # the arrays the pointers point into

    def __init__(self, *, places, tasks, pre_ptr, pre_idx, pre_cnt, post_ptr, post_idx, post_cnt,
                 reset_ptr, reset_idx):
        a = prepare(places=places, tasks=tasks, pre_ptr=pre_ptr, pre_idx=pre_idx, pre_cnt=pre_cnt,
                    post_ptr=post_ptr, post_idx=post_idx, post_cnt=post_cnt, reset_ptr=reset_ptr,
                    reset_idx=reset_idx)
        self._keep = a
        self.size = a.size
        self.n_transitions = a.n_transitions
        self._n_places = a.n_places
        self._n_tasks = a.n_tasks
        self._places = _p32(a.places)
        self._tasks = _p32(a.tasks)
        self._s.size = a.size
        self._s.n_tr = a.n_transitions
        self._s.pre_ptr = _p32(a.pre_ptr)
        self._s.pre_idx = _p32(a.pre_idx)
        self._s.pre_cnt = _p64(a.pre_cnt)
        self._s.pre_reset = _p32(a.pre_reset)
        self._s.post_ptr = _p32(a.post_ptr)
        self._s.post_idx = _p32(a.post_idx)
        self._s.post_cnt = _p64(a.post_cnt)
        self._s.post_reset = _p32(a.post_reset)
        self._s.reset_ptr = _p32(a.reset_ptr)
        self._s.reset_idx = _p32(a.reset_idx)
        self._s.reset_post = _p64(a.reset_post)
        self._s.need_ptr = _p32(a.need_ptr)
        self._s.need_idx = _p32(a.need_idx)
        self._s.need_cnt = _p64(a.need_cnt)

    def vector(self, marking):
        """The marking as a vector: ``marking.get`` of each place, then ``marking.busy`` of each task."""
        if self._keep is None:
            raise TypeError("Coverability.__init__ was not called")
        cdef list vec = []
        cdef Py_ssize_t i
        get = marking.get
        busy = marking.busy
        for i in range(self._n_places):
            vec.append(get(self._places[i]))
        for i in range(self._n_tasks):
            vec.append(busy(self._tasks[i]))
        return vec

    def coverable(self, current, goals, limit):
        """Whether some marking reachable from ``current`` covers one of ``goals``: 1 (coverable),
        0 (not), or 2 once more than ``limit`` predecessors have entered the basis."""
        if self._keep is None:
            raise TypeError("Coverability.__init__ was not called")
        cdef Py_ssize_t size = self.size, vec = size if size else 1
        cdef Py_ssize_t j, n_goals
        cdef int64_t lim
        cdef int code
        cdef _Search w
        cdef int64_t* now = <int64_t*>malloc(<size_t>vec * sizeof(int64_t))
        if now == NULL:
            raise MemoryError()
        w.arena = NULL
        w.basis = NULL
        w.frontier = NULL
        w.n_vec = w.cap_vec = w.n_basis = w.cap_basis = w.n_front = w.cap_front = 0
        try:
            _fill(now, current, size, "current")
            goal_list = list(goals)
            n_goals = len(goal_list)
            if (_grow(<void**>&w.arena, &w.cap_vec, n_goals + 1, <size_t>vec * sizeof(int64_t)) < 0
                    or _grow(<void**>&w.basis, &w.cap_basis, n_goals + 1, sizeof(Py_ssize_t)) < 0
                    or _grow(<void**>&w.frontier, &w.cap_front, n_goals + 1, sizeof(Py_ssize_t)) < 0):
                raise MemoryError()
            for j in range(n_goals):
                _fill(w.arena + j * vec, goal_list[j], size, f"goals[{j}]")
            w.n_vec = n_goals
            limit = int(limit)
            if limit > 0x7FFFFFFFFFFFFFFF:
                lim = 0x7FFFFFFFFFFFFFFF
            elif limit < -0x7FFFFFFFFFFFFFFF:
                lim = -0x7FFFFFFFFFFFFFFF
            else:
                lim = limit
            with nogil:
                code = _search(&self._s, now, &w, n_goals, lim)
            if code == C_NO_MEMORY:
                raise MemoryError()
            return code
        finally:
            free(now)
            free(w.arena)
            free(w.basis)
            free(w.frontier)


# -- the quick tests -----------------------------------------------------------------------------

@cython.final
@cython.auto_pickle(False)
cdef class OrJoinScreen:
    """The quick tests of one OR-join, over the marking's own methods.

    The compiled twin of ``yawlflow._hotpath._orjoin_py.OrJoinScreen``; see its docstrings.
    """

    cdef readonly Py_ssize_t n_inputs
    cdef const int32_t* _inputs
    cdef const int32_t* _regions
    cdef const int32_t* _cand_ptr
    cdef const int32_t* _cand_task
    cdef const int32_t* _takes_ptr
    cdef const int32_t* _takes_slot
    cdef const int32_t* _spoils_ptr
    cdef const int32_t* _spoils_slot
    cdef tuple _input_objs, _region_objs, _cand_objs  # the ids as Python ints, made once
    cdef object _keep

    def __init__(self, *, inputs, regions, cand_ptr, cand_task, takes_ptr, takes_slot, spoils_ptr,
                 spoils_slot):
        a = prepare_screen(inputs=inputs, regions=regions, cand_ptr=cand_ptr, cand_task=cand_task,
                           takes_ptr=takes_ptr, takes_slot=takes_slot, spoils_ptr=spoils_ptr,
                           spoils_slot=spoils_slot)
        self._keep = a
        self.n_inputs = a.n_inputs
        self._inputs = _p32(a.inputs)
        self._regions = _p32(a.regions)
        self._cand_ptr = _p32(a.cand_ptr)
        self._cand_task = _p32(a.cand_task)
        self._takes_ptr = _p32(a.takes_ptr)
        self._takes_slot = _p32(a.takes_slot)
        self._spoils_ptr = _p32(a.spoils_ptr)
        self._spoils_slot = _p32(a.spoils_slot)
        self._input_objs = tuple(a.inputs.tolist())
        self._region_objs = tuple(a.regions.tolist())
        self._cand_objs = tuple(a.cand_task.tolist())

    def screen(self, marking):
        """``SCREEN_WAIT``, ``SCREEN_FIRE``, or ``SCREEN_EXACT`` when the quick tests cannot tell."""
        if self._keep is None:
            raise TypeError("OrJoinScreen.__init__ was not called")
        cdef Py_ssize_t n = self.n_inputs
        cdef unsigned char small[64]
        cdef unsigned char* marked = small
        if n > 64:
            marked = <unsigned char*>malloc(<size_t>n)
            if marked == NULL:
                raise MemoryError()
        try:
            return self._screen(marking, marked)
        finally:
            if marked != small:
                free(marked)

    cdef int _screen(self, marking, unsigned char* marked) except -1:
        cdef Py_ssize_t n = self.n_inputs, j, c, s, n_marked = 0
        cdef bint hit, live
        get = marking.get
        for j in range(n):
            marked[j] = 1 if get(self._input_objs[j]) else 0
            n_marked += marked[j]
        if n_marked == 0:
            return C_SCREEN_WAIT
        if n_marked == n:
            return C_SCREEN_FIRE
        region_live = marking.region_live
        live = False
        for j in range(n):
            if not marked[j] and region_live(self._region_objs[j]):
                live = True
                break
        if not live:
            return C_SCREEN_FIRE  # structural: no token or busy item upstream of an empty input
        busy = marking.busy
        capacity = marking.capacity
        for j in range(n):
            if marked[j]:
                continue
            for c in range(self._cand_ptr[j], self._cand_ptr[j + 1]):
                u = self._cand_objs[c]
                b = busy(u)
                if not (b or capacity(u)):
                    continue
                if not b:
                    hit = False
                    for s in range(self._takes_ptr[c], self._takes_ptr[c + 1]):
                        if marked[self._takes_slot[s]]:
                            hit = True
                            break
                    if hit:
                        continue  # firing u could take a token the join counts on
                hit = False
                for s in range(self._spoils_ptr[c], self._spoils_ptr[c + 1]):
                    if marked[self._spoils_slot[s]]:
                        hit = True
                        break
                if not hit:
                    return C_SCREEN_WAIT  # one step away: u feeds an empty input
        return C_SCREEN_EXACT
