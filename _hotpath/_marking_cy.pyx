# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False
# cython: initializedcheck=False, cdivision=False
"""Marking kernel, compiled twin of ``_marking_py.py``: same names, signatures, results, errors.

The docstrings that matter live on the pure twin (``yawlflow._hotpath._marking_py``); type
checkers only ever see that one.

Theory of operation. The static part of a net is read once, into a :class:`_NetView` that
every copy of a marking shares: raw pointers into C-contiguous ``int32`` CSR arrays and
``uint64`` region rows, validated up front, because the methods below do no bounds checks on
them (indices from the caller are checked; indices from the net were checked here). The
dynamic part is one ``PyMem`` block per :class:`Marking`::

    [tokens: n_places x int64][0][busy: n_tasks x int64][marked: wp x uint64][busy bits: wt x uint64]

(the ``0`` is a slot that never holds a token: the enabled-set kernel pads every task's inputs
to four with it, so that checking a task needs no branch), so ``copy()`` is one allocation and one ``memcpy``, and the marked/busy bitsets are kept in
step with the counts on every change, as in the pure twin, which makes ``region_live`` a few
word ANDs. Methods that can fail apply their changes in the same order as the pure twin, so a
failure part-way (an AND-join listing one place twice, say) leaves the same state in both.

Differences from the pure twin, all on calls the runner never makes: an index outside the net
(negative ones included) raises ``IndexError`` (the pure twin wraps some negative indices the
way lists do), counts are 64-bit (``OverflowError`` past that), and a malformed
:class:`KernelNet` (a CSR pointer or place index out of range) raises ``ValueError`` at
construction instead of a later ``IndexError``.
"""

cimport cython
from cpython.dict cimport PyDict_Copy, PyDict_SetItem
from cpython.list cimport PyList_Append, PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

import numpy as np
from cpython cimport array

import array as _array_module

cdef array.array _INT_ARRAY = _array_module.array("i")

from ._marking_py import (
    FIRE_BUDGET,
    FIRE_EMPTY,
    FIRE_END,
    FIRE_HANDOFF,
    JOIN_AND,
    JOIN_OR,
    JOIN_PARTIAL,
    JOIN_THREADS,
    JOIN_XOR,
    KernelNet,
    _check_simple,
)

__all__ = (
    "FIRE_BUDGET",
    "FIRE_EMPTY",
    "FIRE_END",
    "FIRE_HANDOFF",
    "JOIN_AND",
    "JOIN_OR",
    "JOIN_PARTIAL",
    "JOIN_THREADS",
    "JOIN_XOR",
    "KernelNet",
    "Marking",
    "RoutingProgram",
    "Worklist",
    "completed_records",
)


cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <intrin.h>
    static __inline int yf_ctz64(unsigned __int64 x) { unsigned long i; _BitScanForward64(&i, x); return (int)i; }
    static __inline int yf_popcount64(unsigned __int64 x) { return (int)__popcnt64(x); }
    #else
    static inline int yf_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    static inline int yf_popcount64(unsigned long long x) { return __builtin_popcountll(x); }
    #endif
    """
    int yf_ctz64(uint64_t x) nogil
    int yf_popcount64(uint64_t x) nogil


cdef enum:
    C_FIRE_EMPTY = 0
    C_FIRE_HANDOFF = 1
    C_FIRE_END = 2
    C_FIRE_BUDGET = 3


cdef enum:
    C_JOIN_AND = 0
    C_JOIN_XOR = 1
    C_JOIN_OR = 2
    C_JOIN_THREADS = 3
    C_JOIN_PARTIAL = 4


if (JOIN_AND, JOIN_XOR, JOIN_OR, JOIN_THREADS, JOIN_PARTIAL, FIRE_EMPTY, FIRE_HANDOFF, FIRE_END, FIRE_BUDGET) != (
    C_JOIN_AND, C_JOIN_XOR, C_JOIN_OR, C_JOIN_THREADS, C_JOIN_PARTIAL,
    C_FIRE_EMPTY, C_FIRE_HANDOFF, C_FIRE_END, C_FIRE_BUDGET,
):
    raise ImportError(
        "yawlflow._hotpath._marking_cy is out of step with _marking_py (JOIN_* or FIRE_* codes differ): "
        "rebuild it (pip install -e .)"
    )


cdef enum:
    _G_ONE = 0  # one input (any join but a thread merge): (task, place)
    _G_AND2 = 1  # AND of two inputs: (task, p, q)
    _G_ANY2 = 2  # XOR/OR/partial of two: (task, p, q)
    _G_AND3 = 3  # (task, p, q, r)
    _G_ANY3 = 4
    _G_THR = 5  # thread merge of up to 3 inputs, N >= 1: (task, N, p, q, r), padded with the zero slot
    _G_SLOW = 6  # 4 inputs or more: (task,)
    _N_GROUPS = 7


cdef inline Py_ssize_t _words(Py_ssize_t n) noexcept nogil:
    return (n + 63) >> 6


cdef inline uint64_t _bit(Py_ssize_t i) noexcept nogil:
    return (<uint64_t>1) << (i & 63)


cdef int _out_of_range(str what, Py_ssize_t i, Py_ssize_t n) except -1:
    raise IndexError(f"{what} {i} is out of range (the net has {n})")


cdef object _as_i32(object arr, str name, Py_ssize_t min_len):
    a = np.ascontiguousarray(arr, dtype=np.int32)
    if a.ndim != 1 or a.shape[0] < min_len:
        raise ValueError(f"KernelNet.{name}: expected a 1-D array of at least {min_len} entries, "
                         f"got shape {a.shape}")
    return a


cdef object _as_rows(object arr, str name):
    a = np.ascontiguousarray(arr, dtype=np.uint64)
    if a.ndim == 1 and a.shape[0] == 0:
        a = a.reshape(0, 0)
    if a.ndim != 2:
        raise ValueError(f"KernelNet.{name}: expected a 2-D array of bitset rows, got shape {a.shape}")
    return a


cdef inline const int32_t* _p32(const int32_t[::1] mv) noexcept:
    return &mv[0] if mv.shape[0] else NULL


cdef inline const uint64_t* _p64(const uint64_t[:, ::1] mv) noexcept:
    return &mv[0, 0] if mv.shape[0] and mv.shape[1] else NULL


@cython.final
@cython.auto_pickle(False)
cdef class _NetView:
    """The static arrays of a KernelNet as validated C pointers; shared by a marking's copies."""

    cdef Py_ssize_t n_places, n_tasks, wp, wt
    cdef Py_ssize_t n_rp, n_rt, rpw, rtw  # region rows, words per row
    cdef const int32_t* pre_ptr
    cdef const int32_t* pre_idx
    cdef const int32_t* can_ptr
    cdef const int32_t* can_idx
    cdef const int32_t* join_code
    cdef const int32_t* join_n
    cdef const uint64_t* rp
    cdef const uint64_t* rt
    cdef const int32_t* grp  # the enabled-set kernel's task groups (see _groups)
    cdef Py_ssize_t gstart[_N_GROUPS + 1]  # offsets of the groups in ``grp``
    cdef tuple _keep  # the arrays the pointers point into

    def __init__(self, net):
        cdef Py_ssize_t n_places = net.n_places
        cdef Py_ssize_t n_tasks = net.n_tasks
        if n_places < 0 or n_tasks < 0:
            raise ValueError("tokens/busy length does not match the net")
        pre_ptr = _as_i32(net.preset_ptr, "preset_ptr", n_tasks + 1)
        pre_idx = _as_i32(net.preset_idx, "preset_idx", 0)
        can_ptr = _as_i32(net.cancel_ptr, "cancel_ptr", n_tasks + 1)
        can_idx = _as_i32(net.cancel_idx, "cancel_idx", 0)
        join_code = _as_i32(net.join_code, "join_code", n_tasks)
        join_n = _as_i32(net.join_n, "join_n", n_tasks)
        rp = _as_rows(net.region_places, "region_places")
        rt = _as_rows(net.region_tasks, "region_tasks")
        self._keep = (pre_ptr, pre_idx, can_ptr, can_idx, join_code, join_n, rp, rt)
        self.n_places = n_places
        self.n_tasks = n_tasks
        self.wp = _words(n_places)
        self.wt = _words(n_tasks)
        self.pre_ptr = _p32(pre_ptr)
        self.pre_idx = _p32(pre_idx)
        self.can_ptr = _p32(can_ptr)
        self.can_idx = _p32(can_idx)
        self.join_code = _p32(join_code)
        self.join_n = _p32(join_n)
        self.n_rp, self.rpw = rp.shape[0], rp.shape[1]
        self.n_rt, self.rtw = rt.shape[0], rt.shape[1]
        self.rp = _p64(rp)
        self.rt = _p64(rt)
        _check_csr(self.pre_ptr, n_tasks, self.pre_idx, pre_idx.shape[0], n_places, "preset")
        _check_csr(self.can_ptr, n_tasks, self.can_idx, can_idx.shape[0], n_places, "cancel")
        grp = _groups(self.pre_ptr, self.pre_idx, self.join_code, self.join_n, n_tasks, n_places, self.gstart)
        self._keep += (grp,)
        self.grp = _p32(grp)


cdef object _groups(const int32_t* pre_ptr, const int32_t* pre_idx, const int32_t* join_code,
                    const int32_t* join_n, Py_ssize_t n_tasks, Py_ssize_t n_places, Py_ssize_t* gstart):
    """Sort the tasks into groups of one shape (inputs, join), each checked by a loop of its own
    without a branch: records ``(task, inputs...)``, ascending by task within a group. A task with
    no input, or a thread merge with N < 1, is in none (it is never enabled)."""
    rows = [[] for _ in range(_N_GROUPS)]
    cdef Py_ssize_t t, a, b, g
    cdef int32_t code
    for t in range(n_tasks):
        a = pre_ptr[t]
        b = pre_ptr[t + 1]
        code = join_code[t]
        if a == b or (code == C_JOIN_THREADS and join_n[t] < 1):
            continue
        if b - a > 3:
            g = _G_SLOW
        elif code == C_JOIN_THREADS:
            rows[_G_THR].extend([t, join_n[t]] + [pre_idx[i] for i in range(a, b)] + [n_places] * (3 - (b - a)))
            continue
        elif b - a == 1:
            g = _G_ONE
        elif b - a == 2:
            g = _G_AND2 if code == C_JOIN_AND else _G_ANY2
        else:
            g = _G_AND3 if code == C_JOIN_AND else _G_ANY3
        rows[g].append(t)
        if g != _G_SLOW:
            rows[g].extend([pre_idx[i] for i in range(a, b)])
    gstart[0] = 0
    for g in range(_N_GROUPS):
        gstart[g + 1] = gstart[g] + len(rows[g])
    return np.array([x for row in rows for x in row], dtype=np.int32)


cdef int _check_csr(const int32_t* ptr, Py_ssize_t n_rows, const int32_t* idx, Py_ssize_t n_idx,
                    Py_ssize_t n_places, str name) except -1:
    cdef Py_ssize_t t, i
    if ptr[0] < 0:
        raise ValueError(f"KernelNet.{name}_ptr[0] is {ptr[0]}, which is negative")
    for t in range(n_rows):
        if ptr[t + 1] < ptr[t]:
            raise ValueError(f"KernelNet.{name}_ptr decreases at task {t}")
    if ptr[n_rows] > n_idx:
        raise ValueError(f"KernelNet.{name}_ptr[{n_rows}] is {ptr[n_rows]}, past the end of "
                         f"{name}_idx ({n_idx} entries)")
    for i in range(ptr[0], ptr[n_rows]):
        if idx[i] < 0 or idx[i] >= n_places:
            raise ValueError(f"KernelNet.{name}_idx[{i}] is {idx[i]}, not a place of a net of "
                             f"{n_places} places")
    return 0


cdef inline bint _wide_enabled(const int32_t* pre_ptr, const int32_t* pre_idx, const int32_t* join_code,
                              const int32_t* join_n, const int64_t* tok, Py_ssize_t t) noexcept nogil:
    """The slow check, for a task of more than 4 inputs."""
    cdef Py_ssize_t i
    cdef int32_t code = join_code[t]
    cdef int64_t acc = 0
    if code == C_JOIN_AND:
        for i in range(pre_ptr[t], pre_ptr[t + 1]):
            if tok[pre_idx[i]] <= 0:
                return False
        return True
    if code == C_JOIN_THREADS:
        for i in range(pre_ptr[t], pre_ptr[t + 1]):
            acc += tok[pre_idx[i]]
        return join_n[t] > 0 and acc >= join_n[t]
    for i in range(pre_ptr[t], pre_ptr[t + 1]):
        if tok[pre_idx[i]]:
            return True
    return False


cdef inline void _put(uint64_t* bits, uint64_t* acc, Py_ssize_t* word, Py_ssize_t t, uint64_t ok) noexcept nogil:
    # Tasks come ascending within a group: gather a word's bits in a register, store it when the
    # word changes (a store per task would chain every check through memory).
    cdef Py_ssize_t w = t >> 6
    if w != word[0]:
        bits[word[0]] |= acc[0]
        acc[0] = 0
        word[0] = w
    acc[0] |= ok << (t & 63)


cdef Py_ssize_t _enabled_into(_NetView v, const int64_t* tok, int32_t* out, uint64_t* bits) noexcept nogil:
    """Write the tasks with capacity > 0 into ``out``, ascending; return how many (the
    enabled-set kernel). ``bits`` is scratch of ``wt`` words.

    Each group of tasks of one shape is checked by its own loop, without a branch, into a bitset;
    the bitset is then read out in task order.
    """
    cdef const int32_t* g = v.grp
    cdef const int32_t* r
    cdef Py_ssize_t i, w, word = 0, count = 0
    cdef uint64_t acc = 0, x
    memset(bits, 0, <size_t>v.wt * 8)
    for i in range(v.gstart[_G_ONE], v.gstart[_G_ONE + 1], 2):
        _put(bits, &acc, &word, g[i], tok[g[i + 1]] > 0)
    for i in range(v.gstart[_G_AND2], v.gstart[_G_AND2 + 1], 3):
        r = g + i
        _put(bits, &acc, &word, r[0], (tok[r[1]] > 0) & (tok[r[2]] > 0))
    for i in range(v.gstart[_G_ANY2], v.gstart[_G_ANY2 + 1], 3):
        r = g + i
        _put(bits, &acc, &word, r[0], (tok[r[1]] | tok[r[2]]) != 0)
    for i in range(v.gstart[_G_AND3], v.gstart[_G_AND3 + 1], 4):
        r = g + i
        _put(bits, &acc, &word, r[0], (tok[r[1]] > 0) & (tok[r[2]] > 0) & (tok[r[3]] > 0))
    for i in range(v.gstart[_G_ANY3], v.gstart[_G_ANY3 + 1], 4):
        r = g + i
        _put(bits, &acc, &word, r[0], (tok[r[1]] | tok[r[2]] | tok[r[3]]) != 0)
    for i in range(v.gstart[_G_THR], v.gstart[_G_THR + 1], 5):
        r = g + i
        _put(bits, &acc, &word, r[0], tok[r[2]] + tok[r[3]] + tok[r[4]] >= r[1])
    for i in range(v.gstart[_G_SLOW], v.gstart[_G_SLOW + 1]):
        _put(bits, &acc, &word, g[i], _wide_enabled(v.pre_ptr, v.pre_idx, v.join_code, v.join_n, tok, g[i]))
    if v.wt:
        bits[word] |= acc
    for w in range(v.wt):
        x = bits[w]
        while x:
            out[count] = <int32_t>((w << 6) + yf_ctz64(x))
            count += 1
            x &= x - 1
    return count


cdef _NetView _view(object net):
    """The net's validated view, built once per KernelNet and kept in its ``cache`` slot."""
    cached = getattr(net, "cache", None)
    if isinstance(cached, _NetView):
        return <_NetView>cached
    cdef _NetView v = _NetView(net)
    try:
        net.cache = v
    except AttributeError:  # a stand-in without the slot: build the view each time
        pass
    return v


@cython.final
@cython.auto_pickle(False)
cdef class Worklist:
    """The runner's FIFO of tasks to look at again, each queued at most once (a ring buffer of
    ``n_tasks`` slots: a task is in it at most once, so it never overflows)."""

    cdef Py_ssize_t _n, _head, _size
    cdef int32_t* _ring
    cdef uint8_t* _queued

    def __cinit__(self, Py_ssize_t n_tasks):
        if n_tasks < 0:
            raise ValueError("a worklist needs n_tasks >= 0")
        self._n = n_tasks
        self._ring = <int32_t*>PyMem_Malloc(<size_t>(n_tasks * 5 + 8))
        if self._ring == NULL:
            raise MemoryError()
        self._queued = <uint8_t*>(self._ring + n_tasks)
        memset(self._queued, 0, <size_t>n_tasks)

    def __dealloc__(self):
        PyMem_Free(self._ring)

    cdef inline void _touch(self, Py_ssize_t t) noexcept nogil:
        cdef Py_ssize_t at
        if not self._queued[t]:
            self._queued[t] = 1
            at = self._head + self._size
            if at >= self._n:
                at -= self._n
            self._ring[at] = <int32_t>t
            self._size += 1

    cdef inline Py_ssize_t _pop(self) noexcept nogil:
        cdef Py_ssize_t t
        if not self._size:
            return -1
        t = self._ring[self._head]
        self._head += 1
        if self._head == self._n:
            self._head = 0
        self._size -= 1
        self._queued[t] = 0
        return t

    def touch(self, Py_ssize_t task):
        """Queue ``task`` unless it is queued already."""
        if <size_t>task >= <size_t>self._n:
            _out_of_range("task", task, self._n)
        self._touch(task)

    def pop(self):
        """The task at the head, removed; -1 if the worklist is empty."""
        return self._pop()

    def clear(self):
        """Empty the worklist."""
        self._head = 0
        self._size = 0
        memset(self._queued, 0, <size_t>self._n)

    def __len__(self):
        return self._size

    def tasks(self):
        """The queued tasks, head first."""
        cdef Py_ssize_t i, at
        out = []
        for i in range(self._size):
            at = self._head + i
            if at >= self._n:
                at -= self._n
            out.append(self._ring[at])
        return out


@cython.final
@cython.auto_pickle(False)
cdef class RoutingProgram:
    """What ``Marking.fire_routing`` needs besides the marking; see the pure twin."""

    cdef readonly Py_ssize_t n_tasks, n_places, end_place
    cdef const uint8_t* simple
    cdef const int32_t* post_ptr
    cdef const int32_t* post_idx
    cdef const int64_t* post_n
    cdef const int32_t* watch_ptr
    cdef const int32_t* watch_idx
    cdef tuple _keep

    def __init__(self, net, *, simple, post_ptr, post_idx, post_n, watch_ptr, watch_idx, end_place=-1):
        cdef Py_ssize_t n_tasks = net.n_tasks, n_places = net.n_places
        s = np.ascontiguousarray(np.asarray(simple, dtype=bool), dtype=np.uint8)
        pp = np.ascontiguousarray(post_ptr, dtype=np.int32)
        pi = np.ascontiguousarray(post_idx, dtype=np.int32)
        pn = np.ascontiguousarray(post_n, dtype=np.int64)
        wp = np.ascontiguousarray(watch_ptr, dtype=np.int32)
        wi = np.ascontiguousarray(watch_idx, dtype=np.int32)
        if s.shape[0] != n_tasks or pp.shape[0] != n_tasks + 1 or wp.shape[0] != n_places + 1:
            raise ValueError("RoutingProgram: simple, post_ptr or watch_ptr does not fit the net")
        if pi.shape[0] != pn.shape[0] or pp[n_tasks] > pi.shape[0] or wp[n_places] > wi.shape[0]:
            raise ValueError("RoutingProgram: post_idx/post_n/watch_idx are shorter than their pointers say")
        if (pi.shape[0] and (pi.min() < 0 or pi.max() >= n_places)) or (
            wi.shape[0] and (wi.min() < 0 or wi.max() >= n_tasks)
        ):
            raise ValueError("RoutingProgram: a place or task index is outside the net")
        if pn.shape[0] and pn.min() < 0:
            raise ValueError("RoutingProgram: post_n holds a negative count")
        if not -1 <= end_place < n_places:
            raise ValueError(f"RoutingProgram: end_place {end_place} is not a place of the net, nor -1")
        if pp[0] < 0 or (n_tasks and np.any(np.diff(pp) < 0)) or wp[0] < 0 or (n_places and np.any(np.diff(wp) < 0)):
            raise ValueError("RoutingProgram: a CSR pointer array decreases or starts below 0")
        _check_simple(net, simple)
        self._keep = (s, pp, pi, pn, wp, wi)
        self.n_tasks, self.n_places, self.end_place = n_tasks, n_places, end_place
        self.simple = <const uint8_t*>(<Py_ssize_t>s.ctypes.data)
        self.post_ptr = _p32(pp)
        self.post_idx = _p32(pi)
        self.post_n = <const int64_t*>(<Py_ssize_t>pn.ctypes.data)
        self.watch_ptr = _p32(wp)
        self.watch_idx = _p32(wi)


cdef inline void _watchers(RoutingProgram prog, Worklist wl, Py_ssize_t p) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(prog.watch_ptr[p], prog.watch_ptr[p + 1]):
        wl._touch(prog.watch_idx[i])


def completed_records(list out, fired, names, str case, str net, Py_ssize_t seq, Py_ssize_t item):
    """Append one ``item.completed`` trace record per fired task to ``out``; see the pure twin."""
    cdef dict template = {"seq": None, "case": case, "event": "item.completed", "task": None, "item": None,
                          "instance": None, "net": net, "data": None}
    cdef Py_ssize_t k = 0
    cdef dict record
    cdef tuple named = tuple(names)
    for t in fired:
        record = PyDict_Copy(template)
        PyDict_SetItem(record, "seq", seq + k)
        PyDict_SetItem(record, "task", named[t])
        PyDict_SetItem(record, "item", item + k)
        PyList_Append(out, record)
        k += 1


@cython.final
@cython.freelist(32)
@cython.auto_pickle(False)
cdef class Marking:
    """Tokens per place and busy items per task of one case, over a :class:`KernelNet`.

    The compiled twin of ``yawlflow._hotpath._marking_py.Marking``; see its docstrings.
    """

    cdef _NetView _v
    cdef Py_ssize_t _np, _nt, _wp, _wt, _n_rp, _n_rt  # copied from _v: 0 until __init__ ran
    cdef int64_t* _tok
    cdef int64_t* _busy
    cdef uint64_t* _mb  # marked places
    cdef uint64_t* _bb  # busy tasks

    def __init__(self, net, tokens=None, busy=None):
        cdef _NetView v = _view(net)
        cdef Py_ssize_t i
        toks = None if tokens is None else [int(x) for x in tokens]
        counts = None if busy is None else [int(x) for x in busy]
        if (toks is not None and len(toks) != v.n_places) or (
            counts is not None and len(counts) != v.n_tasks
        ):
            raise ValueError("tokens/busy length does not match the net")
        if min(toks or (0,)) < 0 or min(counts or (0,)) < 0:
            raise ValueError("negative token or busy count")
        self._alloc(v)
        if toks is not None:
            for i in range(v.n_places):
                self._tok[i] = toks[i]
                if self._tok[i]:
                    self._mb[i >> 6] |= _bit(i)
        if counts is not None:
            for i in range(v.n_tasks):
                self._busy[i] = counts[i]
                if self._busy[i]:
                    self._bb[i >> 6] |= _bit(i)

    cdef int _alloc(self, _NetView v) except -1:
        cdef size_t n = <size_t>(v.n_places + 1 + v.n_tasks + v.wp + v.wt)
        cdef void* block = PyMem_Malloc(n * 8 if n else 8)
        if block == NULL:
            raise MemoryError()
        memset(block, 0, n * 8)
        if self._tok != NULL:  # __init__ called again
            PyMem_Free(self._tok)
        self._v = v
        self._np, self._nt, self._wp, self._wt = v.n_places, v.n_tasks, v.wp, v.wt
        self._n_rp, self._n_rt = v.n_rp, v.n_rt
        self._tok = <int64_t*>block
        self._busy = self._tok + v.n_places + 1  # tok[n_places] is the zero slot
        self._mb = <uint64_t*>(self._busy + v.n_tasks)
        self._bb = self._mb + v.wp
        return 0

    def __dealloc__(self):
        if self._tok != NULL:
            PyMem_Free(self._tok)
            self._tok = NULL

    # -- helpers (no Python objects) ----------------------------------------------------------
    cdef inline int _take(self, Py_ssize_t p, int64_t n) except -1:
        cdef int64_t have = self._tok[p]
        if n < 0 or have < n:
            raise ValueError(f"place {p} holds {have} tokens, cannot take {n}")
        have -= n
        self._tok[p] = have
        if have == 0:
            self._mb[p >> 6] &= ~_bit(p)
        return 0

    cdef inline int64_t _clear(self, Py_ssize_t p) noexcept:
        cdef int64_t have = self._tok[p]
        if have:
            self._tok[p] = 0
            self._mb[p >> 6] &= ~_bit(p)
        return have

    # -- tokens -------------------------------------------------------------------------------
    def get(self, Py_ssize_t place):
        """Tokens in ``place``."""
        if <size_t>place >= <size_t>self._np:
            _out_of_range("place", place, self._np)
        return self._tok[place]

    def add(self, Py_ssize_t place, int64_t n=1):
        """Put ``n`` tokens in ``place``."""
        if n <= 0:
            if n < 0:
                raise ValueError("cannot add a negative number of tokens")
            return
        if <size_t>place >= <size_t>self._np:
            _out_of_range("place", place, self._np)
        self._tok[place] += n
        self._mb[place >> 6] |= _bit(place)

    def take(self, Py_ssize_t place, int64_t n=1):
        """Remove ``n`` tokens from ``place``; ValueError if it holds fewer."""
        if <size_t>place >= <size_t>self._np:
            _out_of_range("place", place, self._np)
        self._take(place, n)

    def clear(self, Py_ssize_t place):
        """Empty ``place``; return how many tokens it held."""
        if <size_t>place >= <size_t>self._np:
            _out_of_range("place", place, self._np)
        return self._clear(place)

    def tokens(self):
        """Tokens per place, as a new list."""
        return _int_list(self._tok, self._np)

    def marked(self):
        """The marked places, ascending."""
        cdef list out = []
        cdef Py_ssize_t w
        cdef uint64_t word
        for w in range(self._wp):
            word = self._mb[w]
            while word:
                out.append((w << 6) + yf_ctz64(word))
                word &= word - 1
        return out

    def total(self):
        """Tokens in all places."""
        cdef int64_t s = 0
        cdef Py_ssize_t i
        for i in range(self._np):
            s += self._tok[i]
        return s

    # -- busy items ---------------------------------------------------------------------------
    def busy(self, Py_ssize_t task):
        """Busy (started, unfinished) items of ``task``."""
        if <size_t>task >= <size_t>self._nt:
            _out_of_range("task", task, self._nt)
        return self._busy[task]

    def busy_add(self, Py_ssize_t task, int64_t n):
        """Change the busy count of ``task`` by ``n``; ValueError if it would become negative."""
        if <size_t>task >= <size_t>self._nt:
            _out_of_range("task", task, self._nt)
        cdef int64_t value = self._busy[task] + n
        if value < 0:
            raise ValueError(f"task {task} would have {value} busy items")
        self._busy[task] = value
        if value:
            self._bb[task >> 6] |= _bit(task)
        else:
            self._bb[task >> 6] &= ~_bit(task)

    def busy_counts(self):
        """Busy items per task, as a new list."""
        return _int_list(self._busy, self._nt)

    # -- joins --------------------------------------------------------------------------------
    def capacity(self, Py_ssize_t task):
        """How many times ``task``'s join could fire now, by its tokens alone."""
        if <size_t>task >= <size_t>self._nt:
            _out_of_range("task", task, self._nt)
        cdef _NetView v = self._v
        cdef const int32_t* idx = v.pre_idx
        cdef const int64_t* tok = self._tok
        cdef Py_ssize_t i, a = v.pre_ptr[task], b = v.pre_ptr[task + 1]
        cdef int32_t code = v.join_code[task]
        cdef int64_t acc, x
        if code == C_JOIN_AND:
            if a == b:
                return 0
            acc = tok[idx[a]]
            for i in range(a + 1, b):
                x = tok[idx[i]]
                if x < acc:
                    acc = x
            return acc
        if code == C_JOIN_XOR or code == C_JOIN_THREADS:
            acc = 0
            for i in range(a, b):
                acc += tok[idx[i]]
            if code == C_JOIN_XOR:
                return acc
            return acc // (<int64_t>v.join_n[task])  # Python semantics: ZeroDivisionError on 0
        for i in range(a, b):
            if tok[idx[i]]:
                return 1
        return 0

    def enabled(self):
        """The tasks whose join could fire now by their tokens alone, ascending, as an
        ``array('i')`` (one call checks every task: the loop runs in C, without the GIL)."""
        cdef _NetView v = self._v
        cdef Py_ssize_t n = self._nt
        cdef Py_ssize_t start = (n + 1) & ~(<Py_ssize_t>1)  # the scratch bitset, 8-byte aligned, after
        cdef array.array out = array.clone(_INT_ARRAY, start + 2 * v.wt, zero=False)  # the result
        cdef Py_ssize_t count
        with nogil:
            count = _enabled_into(v, self._tok, <int32_t*>out.data.as_ints, <uint64_t*>(out.data.as_ints + start))
        array.resize(out, count)
        return out

    def marked_inputs(self, Py_ssize_t task):
        """How many of ``task``'s input places hold a token."""
        if <size_t>task >= <size_t>self._nt:
            _out_of_range("task", task, self._nt)
        cdef _NetView v = self._v
        cdef Py_ssize_t i, n = 0
        for i in range(v.pre_ptr[task], v.pre_ptr[task + 1]):
            if self._tok[v.pre_idx[i]]:
                n += 1
        return n

    def consume(self, Py_ssize_t task):
        """Consume the tokens of one firing of ``task``; return the places that changed."""
        if <size_t>task >= <size_t>self._nt:
            _out_of_range("task", task, self._nt)
        cdef _NetView v = self._v
        cdef const int32_t* idx = v.pre_idx
        cdef Py_ssize_t i, p, a = v.pre_ptr[task], b = v.pre_ptr[task + 1]
        cdef int32_t code = v.join_code[task]
        cdef int64_t need, k, acc
        cdef list changed = []
        if code == C_JOIN_AND:
            if a == b:
                raise ValueError(f"task {task}: AND-join not enabled")
            for i in range(a, b):
                if self._tok[idx[i]] < 1:
                    raise ValueError(f"task {task}: AND-join not enabled")
            for i in range(a, b):
                self._take(idx[i], 1)
            return [idx[i] for i in range(a, b)]
        if code == C_JOIN_XOR:
            for i in range(a, b):
                p = idx[i]
                if self._tok[p]:
                    self._take(p, 1)
                    return [p]
            raise ValueError(f"task {task}: XOR-join not enabled")
        if code == C_JOIN_THREADS:
            need = v.join_n[task]
            acc = 0
            for i in range(a, b):
                acc += self._tok[idx[i]]
            if acc < need:
                raise ValueError(f"task {task}: thread merge not enabled")
            for i in range(a, b):
                if not need:
                    break
                p = idx[i]
                k = self._tok[p]
                if need < k:
                    k = need
                if k:
                    self._take(p, k)
                    need -= k
                    changed.append(p)
            return changed
        for i in range(a, b):
            p = idx[i]
            if self._tok[p]:
                self._take(p, 1)
                changed.append(p)
        if not changed:
            raise ValueError(f"task {task}: join not enabled")
        return changed

    def clear_inputs(self, Py_ssize_t task):
        """Empty every input place of ``task``; return those that held tokens."""
        if <size_t>task >= <size_t>self._nt:
            _out_of_range("task", task, self._nt)
        cdef _NetView v = self._v
        cdef Py_ssize_t i, p
        cdef list out = []
        for i in range(v.pre_ptr[task], v.pre_ptr[task + 1]):
            p = v.pre_idx[i]
            if self._clear(p):
                out.append(p)
        return out

    def cancel(self, Py_ssize_t task):
        """Empty the places of ``task``'s cancellation set; return those that held tokens."""
        if <size_t>task >= <size_t>self._nt:
            _out_of_range("task", task, self._nt)
        cdef _NetView v = self._v
        cdef Py_ssize_t i, p
        cdef list out = []
        for i in range(v.can_ptr[task], v.can_ptr[task + 1]):
            p = v.can_idx[i]
            if self._clear(p):
                out.append(p)
        return out

    # -- the batch: a run of routing firings in one call ---------------------------------------------
    cdef inline bint _can_fire(self, Py_ssize_t t) noexcept nogil:
        cdef const int32_t* idx = self._v.pre_idx
        cdef Py_ssize_t i, a = self._v.pre_ptr[t], b = self._v.pre_ptr[t + 1]
        cdef int32_t code = self._v.join_code[t]
        cdef int64_t acc = 0
        if a == b:
            return False
        if code == C_JOIN_AND:
            for i in range(a, b):
                if self._tok[idx[i]] <= 0:
                    return False
            return True
        for i in range(a, b):
            acc += self._tok[idx[i]]
        if code == C_JOIN_XOR:
            return acc > 0
        return acc >= self._v.join_n[t]  # a thread merge (RoutingProgram checked N >= 1)

    cdef inline void _fire_simple(self, RoutingProgram prog, Worklist wl, Py_ssize_t t) noexcept nogil:
        """Consume one firing of simple task ``t`` (enabled: _can_fire) and queue the watchers."""
        cdef const int32_t* idx = self._v.pre_idx
        cdef Py_ssize_t i, p, a = self._v.pre_ptr[t], b = self._v.pre_ptr[t + 1]
        cdef int32_t code = self._v.join_code[t]
        cdef int64_t need, k
        if code == C_JOIN_AND:
            for i in range(a, b):
                p = idx[i]
                self._tok[p] -= 1
                if not self._tok[p]:
                    self._mb[p >> 6] &= ~_bit(p)
            for i in range(a, b):
                _watchers(prog, wl, idx[i])
            return
        if code == C_JOIN_XOR:
            for i in range(a, b):
                p = idx[i]
                if self._tok[p]:
                    self._tok[p] -= 1
                    if not self._tok[p]:
                        self._mb[p >> 6] &= ~_bit(p)
                    _watchers(prog, wl, p)
                    return
            return
        need = self._v.join_n[t]
        for i in range(a, b):
            if not need:
                break
            p = idx[i]
            k = self._tok[p]
            if need < k:
                k = need
            if k:
                self._tok[p] -= k
                if not self._tok[p]:
                    self._mb[p >> 6] &= ~_bit(p)
                need -= k
                _watchers(prog, wl, p)

    cdef int _fire_loop(self, RoutingProgram prog, Worklist wl, int64_t budget, int32_t** buf, Py_ssize_t* cap,
                        Py_ssize_t* count, Py_ssize_t* task) noexcept nogil:
        """The batch: returns a FIRE_* code (-1: out of memory); the fired tasks go to ``buf``."""
        cdef Py_ssize_t t, i, p, end = prog.end_place
        cdef bint ended
        cdef int64_t n
        cdef int32_t* grown
        while True:
            t = wl._pop()
            task[0] = t
            if t < 0:
                return C_FIRE_EMPTY
            if not prog.simple[t]:
                return C_FIRE_HANDOFF
            ended = False
            while self._can_fire(t):
                if budget <= 0:
                    return C_FIRE_BUDGET  # no budget left for this firing
                budget -= 1
                self._fire_simple(prog, wl, t)
                if count[0] == cap[0]:
                    grown = <int32_t*>realloc(buf[0], <size_t>cap[0] * 8)
                    if grown == NULL:
                        return -1
                    buf[0] = grown
                    cap[0] *= 2
                buf[0][count[0]] = <int32_t>t
                count[0] += 1
                for i in range(prog.post_ptr[t], prog.post_ptr[t + 1]):
                    p = prog.post_idx[i]
                    n = prog.post_n[i]
                    if n > 0:
                        self._tok[p] += n
                        self._mb[p >> 6] |= _bit(p)
                    _watchers(prog, wl, p)
                    if p == end:
                        ended = True
            if ended:
                return C_FIRE_END

    def fire_routing(self, RoutingProgram prog, Worklist worklist, int64_t budget):
        """Fire routing tasks from ``worklist`` until it pops one the batch does not fire; see the
        pure twin. Returns ``(fired, why, task)``. The firing loop runs without the GIL."""
        if prog.n_tasks != self._nt or prog.n_places != self._np or worklist._n != self._nt:
            raise ValueError("fire_routing: the program or the worklist is for another net")
        cdef Py_ssize_t cap = 64, count = 0, t = -1
        cdef int why
        cdef int32_t* buf = <int32_t*>malloc(<size_t>cap * 4)
        if buf == NULL:
            raise MemoryError()
        try:
            with nogil:
                why = self._fire_loop(prog, worklist, budget, &buf, &cap, &count, &t)
            if why < 0:
                raise MemoryError()
            fired = array.clone(_INT_ARRAY, count, zero=False)
            if count:
                memcpy((<array.array>fired).data.as_ints, buf, <size_t>count * 4)
        finally:
            free(buf)
        return fired, why, t

    # -- OR-join regions ----------------------------------------------------------------------
    def region_live(self, Py_ssize_t region):
        """Whether a marked place or a busy task lies in ``region``."""
        if <size_t>region >= <size_t>self._n_rp:
            _out_of_range("region", region, self._n_rp)
        cdef _NetView v = self._v
        cdef const uint64_t* row = v.rp + region * v.rpw
        cdef Py_ssize_t w, n = v.rpw if v.rpw < self._wp else self._wp
        for w in range(n):
            if row[w] & self._mb[w]:
                return True
        if <size_t>region >= <size_t>self._n_rt:
            _out_of_range("region", region, self._n_rt)
        row = v.rt + region * v.rtw
        n = v.rtw if v.rtw < self._wt else self._wt
        for w in range(n):
            if row[w] & self._bb[w]:
                return True
        return False

    def region_key(self, Py_ssize_t region):
        """The marking and busy counts restricted to ``region`` (a memo key)."""
        if <size_t>region >= <size_t>self._n_rp:
            _out_of_range("region", region, self._n_rp)
        if <size_t>region >= <size_t>self._n_rt:
            _out_of_range("region", region, self._n_rt)
        cdef _NetView v = self._v
        cdef const uint64_t* prow = v.rp + region * v.rpw
        cdef const uint64_t* trow = v.rt + region * v.rtw
        cdef Py_ssize_t np_ = v.rpw if v.rpw < self._wp else self._wp
        cdef Py_ssize_t nt_ = v.rtw if v.rtw < self._wt else self._wt
        cdef Py_ssize_t w, i, pos = 0, size = 1
        cdef uint64_t word
        for w in range(np_):
            size += 2 * yf_popcount64(prow[w] & self._mb[w])
        for w in range(nt_):
            size += 2 * yf_popcount64(trow[w] & self._bb[w])
        cdef tuple key = PyTuple_New(size)
        for w in range(np_):
            word = prow[w] & self._mb[w]
            while word:
                i = (w << 6) + yf_ctz64(word)
                word &= word - 1
                _set_item(key, pos, i)
                _set_item(key, pos + 1, self._tok[i])
                pos += 2
        _set_item(key, pos, -1)
        pos += 1
        for w in range(nt_):
            word = trow[w] & self._bb[w]
            while word:
                i = (w << 6) + yf_ctz64(word)
                word &= word - 1
                _set_item(key, pos, i)
                _set_item(key, pos + 1, self._busy[i])
                pos += 2
        return key

    # -- copying ------------------------------------------------------------------------------
    def copy(self):
        """An independent copy."""
        cdef Marking other = Marking.__new__(Marking)
        cdef size_t n
        if self._v is not None:
            other._alloc(self._v)
            n = <size_t>(self._np + 1 + self._nt + self._wp + self._wt)
            memcpy(other._tok, self._tok, n * 8)
        return other

    def __eq__(self, other):
        if not isinstance(other, Marking):
            return NotImplemented
        cdef Marking o = <Marking>other
        if o._np != self._np or o._nt != self._nt:
            return False
        if self._tok == NULL or o._tok == NULL:  # one was never initialised: both are empty
            return True
        return (
            memcmp(self._tok, o._tok, <size_t>self._np * 8) == 0
            and memcmp(self._busy, o._busy, <size_t>self._nt * 8) == 0
        )

    __hash__ = None

    def __repr__(self):
        cdef Py_ssize_t i
        marked = {i: self._tok[i] for i in range(self._np) if self._tok[i]}
        busy = {i: self._busy[i] for i in range(self._nt) if self._busy[i]}
        return f"Marking(tokens={marked}, busy={busy})"


# counts are mostly small: take their int objects from here rather than converting each one
cdef tuple _SMALL = tuple(range(256))


cdef list _int_list(const int64_t* values, Py_ssize_t n):
    cdef list out = PyList_New(n)
    cdef Py_ssize_t i
    cdef int64_t v
    cdef PyObject* obj
    cdef object big
    for i in range(n):
        v = values[i]
        if 0 <= v < 256:
            obj = PyTuple_GET_ITEM(_SMALL, v)
            Py_INCREF(<object>obj)
        else:
            big = v
            obj = <PyObject*>big
            Py_INCREF(big)
        PyList_SET_ITEM(out, i, <object>obj)
    return out


cdef inline void _set_item(tuple t, Py_ssize_t i, int64_t value):
    cdef object obj = value
    Py_INCREF(obj)
    PyTuple_SET_ITEM(t, i, obj)
