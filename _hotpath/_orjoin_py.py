"""OR-join kernels, pure-Python twin: the quick screen and the exact coverability search.

Theory of operation (the rule itself: ``yawlflow._orjoin``; Wynn, Edmond, van der Aalst & ter
Hofstede, ICATPN 2005). Deciding an OR-join at a marking takes up to three steps, cheapest first;
the two kernels here run them over flat arrays built once per join:

* :class:`OrJoinScreen` answers what can be told from the marking alone, through the Marking's
  own methods (``get``, ``busy``, ``capacity``, ``region_live``): no input marked (wait), every
  input marked (fire), no token and no busy item in the backward region of any empty input
  (fire: nothing can arrive), a *feeder* (wait: a task other than the join, busy or enabled now,
  puts a token in an empty input when it completes and its cancellation set spares the marked
  inputs), else undecided: the caller runs the exact test (and memoises its answer).
* :class:`Coverability` is the exact test: backward coverability on the join's restricted reset
  net. Transitions arrive as CSR rows of ``(index, count)`` pairs (pre, post) and reset indices
  over a vector of ``size`` counts (the region's places, then one busy pseudo-place per task).
  From the goal vectors, it computes minimal predecessors of every basis element under every
  transition, depth first (the frontier is a stack; transitions in the order given), until a
  fixpoint or until ``current`` covers a basis element; ``limit`` bounds the basis insertions.

The compiled twin (``_orjoin_cy.pyx``) has the same API, explores in the same order, and so gives
the same answers, the limit included. Both check their arrays with :func:`prepare`, so a
malformed net raises the same ``ValueError`` in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

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

# Coverability.coverable
NOT_COVERABLE = 0
COVERABLE = 1
LIMIT_REACHED = 2  # too large to decide: the caller makes the join wait (the safe answer)

# OrJoinScreen.screen
SCREEN_WAIT = 0
SCREEN_FIRE = 1
SCREEN_EXACT = 2  # undecided: run the exact test

IntArray = npt.NDArray[np.int32]
CountArray = npt.NDArray[np.int64]
Vec = tuple[int, ...]


class MarkingView(Protocol):
    """What the kernels read of a marking (both Marking twins have these methods)."""

    def get(self, place: int) -> int: ...
    def busy(self, task: int) -> int: ...
    def capacity(self, task: int) -> int: ...
    def region_live(self, region: int) -> bool: ...


# -- checking the static arrays (shared by both twins) -------------------------------------------


def _ints(value: Any, name: str, dtype: type[np.integer[Any]], length: int | None = None) -> Any:
    try:
        a = np.ascontiguousarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name}: expected a 1-D array of integers ({exc})") from None
    if a.ndim != 1 or (length is not None and a.shape[0] != length):
        want = "" if length is None else f" of {length} entries"
        raise ValueError(f"{name}: expected a 1-D array{want}, got shape {a.shape}")
    return a


def _csr(ptr: Any, name: str, rows: int, n_idx: int) -> IntArray:
    p: IntArray = _ints(ptr, f"{name}_ptr", np.int32, rows + 1)
    if p[0] != 0:
        raise ValueError(f"{name}_ptr[0] is {p[0]}, not 0")
    for r in range(rows):
        if p[r + 1] < p[r]:
            raise ValueError(f"{name}_ptr decreases at row {r}")
    if p[rows] != n_idx:
        raise ValueError(f"{name}_ptr[{rows}] is {p[rows]}, but {name}_idx has {n_idx} entries")
    return p


def _in_range(idx: IntArray, name: str, n: int, what: str) -> None:
    for i, x in enumerate(idx.tolist()):
        if x < 0 or x >= n:
            raise ValueError(f"{name}[{i}] is {x}, not {what} below {n}")


class CoverArrays(NamedTuple):
    """A :class:`Coverability`'s arrays, checked, with what both twins derive from them."""

    n_places: int
    n_tasks: int
    size: int
    n_transitions: int
    places: IntArray
    tasks: IntArray
    pre_ptr: IntArray
    pre_idx: IntArray
    pre_cnt: CountArray
    pre_reset: IntArray  # 1 where the pre entry's index is reset by its transition
    post_ptr: IntArray
    post_idx: IntArray
    post_cnt: CountArray
    post_reset: IntArray  # 1 where the post entry's index is reset by its transition
    reset_ptr: IntArray  # the resets, duplicates dropped (first kept)
    reset_idx: IntArray
    reset_post: CountArray  # what the transition puts in the reset index (its last post entry there), else 0
    need_ptr: IntArray  # the post entries, one per index (the last one: a dict's view of them)
    need_idx: IntArray
    need_cnt: CountArray


def prepare(
    *,
    places: Any,
    tasks: Any,
    pre_ptr: Any,
    pre_idx: Any,
    pre_cnt: Any,
    post_ptr: Any,
    post_idx: Any,
    post_cnt: Any,
    reset_ptr: Any,
    reset_idx: Any,
) -> CoverArrays:
    """Check a :class:`Coverability`'s arrays and derive the per-transition tables.

    Raises:
        ValueError: an array has the wrong shape, a CSR row pointer is out of order, an index is
            outside the vector, a place or task id is negative, or a count is negative.
    """
    pl: IntArray = _ints(places, "places", np.int32)
    tk: IntArray = _ints(tasks, "tasks", np.int32)
    for arr, name in ((pl, "places"), (tk, "tasks")):
        if arr.shape[0] and int(arr.min()) < 0:
            raise ValueError(f"{name}: ids must not be negative")
    size = pl.shape[0] + tk.shape[0]
    pi: IntArray = _ints(pre_idx, "pre_idx", np.int32)
    pc: CountArray = _ints(pre_cnt, "pre_cnt", np.int64, pi.shape[0])
    qi: IntArray = _ints(post_idx, "post_idx", np.int32)
    qc: CountArray = _ints(post_cnt, "post_cnt", np.int64, qi.shape[0])
    ri: IntArray = _ints(reset_idx, "reset_idx", np.int32)
    n_tr = _ints(pre_ptr, "pre_ptr", np.int32).shape[0] - 1
    if n_tr < 0:
        raise ValueError("pre_ptr: expected at least 1 entry")
    pp = _csr(pre_ptr, "pre", n_tr, pi.shape[0])
    qp = _csr(post_ptr, "post", n_tr, qi.shape[0])
    rp = _csr(reset_ptr, "reset", n_tr, ri.shape[0])
    for idx, name in ((pi, "pre_idx"), (qi, "post_idx"), (ri, "reset_idx")):
        _in_range(idx, name, size, "an index of a vector")
    for cnt, name in ((pc, "pre_cnt"), (qc, "post_cnt")):
        if cnt.shape[0] and int(cnt.min()) < 0:
            raise ValueError(f"{name}: counts must not be negative")
    pre_reset: list[int] = []
    post_reset: list[int] = []
    r_ptr, r_idx, r_post = [0], [], []
    n_ptr, n_idx, n_cnt = [0], [], []
    pl_, ql_, rl_ = pp.tolist(), qp.tolist(), rp.tolist()
    pil, qil, qcl, ril = pi.tolist(), qi.tolist(), qc.tolist(), ri.tolist()
    for t in range(n_tr):
        post_d = dict(zip(qil[ql_[t] : ql_[t + 1]], qcl[ql_[t] : ql_[t + 1]], strict=True))
        resets = dict.fromkeys(ril[rl_[t] : rl_[t + 1]])
        for r in resets:
            r_idx.append(r)
            r_post.append(post_d.get(r, 0))
        r_ptr.append(len(r_idx))
        for i, k in post_d.items():
            n_idx.append(i)
            n_cnt.append(k)
        n_ptr.append(len(n_idx))
        pre_reset.extend(int(i in resets) for i in pil[pl_[t] : pl_[t + 1]])
        post_reset.extend(int(i in resets) for i in qil[ql_[t] : ql_[t + 1]])

    def i32(values: list[int]) -> IntArray:
        return np.array(values, dtype=np.int32)

    def i64(values: list[int]) -> CountArray:
        return np.array(values, dtype=np.int64)

    return CoverArrays(
        n_places=pl.shape[0], n_tasks=tk.shape[0], size=size, n_transitions=n_tr, places=pl, tasks=tk,
        pre_ptr=pp, pre_idx=pi, pre_cnt=pc, pre_reset=i32(pre_reset),
        post_ptr=qp, post_idx=qi, post_cnt=qc, post_reset=i32(post_reset),
        reset_ptr=i32(r_ptr), reset_idx=i32(r_idx), reset_post=i64(r_post),
        need_ptr=i32(n_ptr), need_idx=i32(n_idx), need_cnt=i64(n_cnt),
    )


class ScreenArrays(NamedTuple):
    """An :class:`OrJoinScreen`'s arrays, checked."""

    n_inputs: int
    inputs: IntArray
    regions: IntArray
    cand_ptr: IntArray
    cand_task: IntArray
    takes_ptr: IntArray
    takes_slot: IntArray
    spoils_ptr: IntArray
    spoils_slot: IntArray


def prepare_screen(
    *,
    inputs: Any,
    regions: Any,
    cand_ptr: Any,
    cand_task: Any,
    takes_ptr: Any,
    takes_slot: Any,
    spoils_ptr: Any,
    spoils_slot: Any,
) -> ScreenArrays:
    """Check an :class:`OrJoinScreen`'s arrays.

    Raises:
        ValueError: an array has the wrong shape, a CSR row pointer is out of order, an id is
            negative, or a slot is not an input slot.
    """
    ins: IntArray = _ints(inputs, "inputs", np.int32)
    n_in = ins.shape[0]
    reg: IntArray = _ints(regions, "regions", np.int32, n_in)
    ct: IntArray = _ints(cand_task, "cand_task", np.int32)
    ts: IntArray = _ints(takes_slot, "takes_slot", np.int32)
    ss: IntArray = _ints(spoils_slot, "spoils_slot", np.int32)
    for arr, name in ((ins, "inputs"), (reg, "regions"), (ct, "cand_task")):
        if arr.shape[0] and int(arr.min()) < 0:
            raise ValueError(f"{name}: ids must not be negative")
    cp = _csr(cand_ptr, "cand", n_in, ct.shape[0])
    tp = _csr(takes_ptr, "takes", ct.shape[0], ts.shape[0])
    sp = _csr(spoils_ptr, "spoils", ct.shape[0], ss.shape[0])
    _in_range(ts, "takes_slot", n_in, "an input slot")
    _in_range(ss, "spoils_slot", n_in, "an input slot")
    return ScreenArrays(n_in, ins, reg, cp, ct, tp, ts, sp, ss)


# -- the kernels ---------------------------------------------------------------------------------


class OrJoinScreen:
    """The quick tests of one OR-join, over the marking's own methods.

    Args:
        inputs: the join's input places, in the order written (its *slots*).
        regions: per slot, the id of the input's backward region (``Marking.region_live``).
        cand_ptr: CSR row pointers (``len(inputs) + 1``) into ``cand_task``.
        cand_task: per slot, the tasks other than the join that put a token in its place
            (the feeder candidates), in ascending order.
        takes_ptr: CSR row pointers (``len(cand_task) + 1``) into ``takes_slot``.
        takes_slot: per candidate, the slots whose place is one of its inputs.
        spoils_ptr: CSR row pointers (``len(cand_task) + 1``) into ``spoils_slot``.
        spoils_slot: per candidate, the slots whose place its cancellation set empties (its
            cancelled places and the inputs of its cancelled tasks).
    """

    __slots__ = ("_cands", "_inputs", "_regions", "n_inputs")

    def __init__(
        self,
        *,
        inputs: Any,
        regions: Any,
        cand_ptr: Any,
        cand_task: Any,
        takes_ptr: Any,
        takes_slot: Any,
        spoils_ptr: Any,
        spoils_slot: Any,
    ) -> None:
        a = prepare_screen(inputs=inputs, regions=regions, cand_ptr=cand_ptr, cand_task=cand_task,
                           takes_ptr=takes_ptr, takes_slot=takes_slot, spoils_ptr=spoils_ptr,
                           spoils_slot=spoils_slot)
        self.n_inputs: int = a.n_inputs
        self._inputs: tuple[int, ...] = tuple(a.inputs.tolist())
        self._regions: tuple[int, ...] = tuple(a.regions.tolist())
        cp, ct = a.cand_ptr.tolist(), a.cand_task.tolist()
        tp, ts = a.takes_ptr.tolist(), a.takes_slot.tolist()
        sp, ss = a.spoils_ptr.tolist(), a.spoils_slot.tolist()
        self._cands: tuple[tuple[tuple[int, tuple[int, ...], tuple[int, ...]], ...], ...] = tuple(
            tuple((ct[c], tuple(ts[tp[c] : tp[c + 1]]), tuple(ss[sp[c] : sp[c + 1]]))
                  for c in range(cp[j], cp[j + 1]))
            for j in range(a.n_inputs)
        )

    def screen(self, marking: MarkingView) -> int:
        """``SCREEN_WAIT``, ``SCREEN_FIRE``, or ``SCREEN_EXACT`` when the quick tests cannot tell.

        In order: no input marked: wait; none empty: fire; no marked place and no busy task in
        the region of any empty input: fire; a feeder: wait; else undecided.
        """
        get = marking.get
        marked = [bool(get(p)) for p in self._inputs]
        if not any(marked):
            return SCREEN_WAIT
        if all(marked):
            return SCREEN_FIRE
        empty = [j for j, m in enumerate(marked) if not m]
        live = marking.region_live
        regions = self._regions
        if not any(live(regions[j]) for j in empty):
            return SCREEN_FIRE  # structural: no token or busy item upstream of an empty input
        busy = marking.busy
        capacity = marking.capacity
        for j in empty:
            for u, takes, spoils in self._cands[j]:
                b = busy(u)
                if not (b or capacity(u)):
                    continue
                if not b and any(marked[s] for s in takes):
                    continue  # firing u could take a token the join counts on: the exact test decides
                if not any(marked[s] for s in spoils):
                    return SCREEN_WAIT  # one step away: u feeds an empty input
        return SCREEN_EXACT


_Transition = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], frozenset[int], dict[int, int]]


def _leq(a: Vec, b: Vec) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True))


def _predecessor(m: Vec, tr: _Transition) -> Vec | None:
    pre, post, resets, post_d = tr
    if not any(m[i] > 0 and post_d[i] > 0 for i in post_d):
        return None  # the transition adds nothing m needs: its predecessor would be >= m
    out = list(m)
    for r in resets:
        if m[r] > post_d.get(r, 0):
            return None  # after the reset r holds only what t puts there: m(r) cannot be covered
        out[r] = 0
    for i, k in post:
        if i not in resets:
            out[i] = max(out[i] - k, 0)
    for i, k in pre:
        out[i] = max(out[i], k) if i in resets else out[i] + k
    return tuple(out)


class Coverability:
    """Backward coverability on one restricted reset net (one OR-join's).

    The vector has ``size = len(places) + len(tasks)`` entries: the tokens of each place of
    ``places``, then the busy items of each task of ``tasks``.

    Args:
        places: the places of the vector (ids in the marking), in vector order.
        tasks: the tasks whose busy items follow the places in the vector.
        pre_ptr: CSR row pointers (one row per transition, plus one) into ``pre_idx``/``pre_cnt``.
        pre_idx: per transition, the vector indices it consumes from, in the order given.
        pre_cnt: how many it consumes from each.
        post_ptr: CSR row pointers into ``post_idx``/``post_cnt``.
        post_idx: per transition, the vector indices it produces into.
        post_cnt: how many it produces into each.
        reset_ptr: CSR row pointers into ``reset_idx``.
        reset_idx: per transition, the vector indices it empties (its reset arcs).
    """

    __slots__ = ("_places", "_tasks", "_transitions", "n_transitions", "size")

    def __init__(
        self,
        *,
        places: Any,
        tasks: Any,
        pre_ptr: Any,
        pre_idx: Any,
        pre_cnt: Any,
        post_ptr: Any,
        post_idx: Any,
        post_cnt: Any,
        reset_ptr: Any,
        reset_idx: Any,
    ) -> None:
        a = prepare(places=places, tasks=tasks, pre_ptr=pre_ptr, pre_idx=pre_idx, pre_cnt=pre_cnt,
                    post_ptr=post_ptr, post_idx=post_idx, post_cnt=post_cnt, reset_ptr=reset_ptr,
                    reset_idx=reset_idx)
        self.size: int = a.size
        self.n_transitions: int = a.n_transitions
        self._places: tuple[int, ...] = tuple(a.places.tolist())
        self._tasks: tuple[int, ...] = tuple(a.tasks.tolist())
        pp, pi, pc = a.pre_ptr.tolist(), a.pre_idx.tolist(), a.pre_cnt.tolist()
        qp, qi, qc = a.post_ptr.tolist(), a.post_idx.tolist(), a.post_cnt.tolist()
        rp, ri = a.reset_ptr.tolist(), a.reset_idx.tolist()
        transitions: list[_Transition] = []
        for t in range(a.n_transitions):
            pre = tuple(zip(pi[pp[t] : pp[t + 1]], pc[pp[t] : pp[t + 1]], strict=True))
            post = tuple(zip(qi[qp[t] : qp[t + 1]], qc[qp[t] : qp[t + 1]], strict=True))
            transitions.append((pre, post, frozenset(ri[rp[t] : rp[t + 1]]), dict(post)))
        self._transitions: tuple[_Transition, ...] = tuple(transitions)

    def vector(self, marking: MarkingView) -> list[int]:
        """The marking as a vector: ``marking.get`` of each place, then ``marking.busy`` of each task."""
        get, busy = marking.get, marking.busy
        vec = [get(p) for p in self._places]
        vec.extend([busy(u) for u in self._tasks])
        return vec

    def _vec(self, values: Sequence[int], what: str) -> Vec:
        vec = tuple([int(x) for x in values])
        if len(vec) != self.size:
            raise ValueError(f"{what} has {len(vec)} entries; the vector has {self.size}")
        return vec

    def coverable(self, current: Sequence[int], goals: Sequence[Sequence[int]], limit: int) -> int:
        """Whether some marking reachable from ``current`` covers one of ``goals``.

        Returns ``COVERABLE`` (1), ``NOT_COVERABLE`` (0), or ``LIMIT_REACHED`` (2) once more than
        ``limit`` predecessors have entered the basis.

        Raises:
            ValueError: ``current`` or a goal does not have ``size`` entries.
        """
        now = self._vec(current, "current")
        basis: list[Vec] = [self._vec(g, f"goals[{i}]") for i, g in enumerate(goals)]
        limit = int(limit)
        transitions = self._transitions
        frontier = list(basis)
        inserted = 0
        while frontier:
            m = frontier.pop()
            if _leq(m, now):
                return COVERABLE
            for tr in transitions:
                prev = _predecessor(m, tr)
                if prev is None or any(_leq(b, prev) for b in basis):
                    continue
                if _leq(prev, now):
                    return COVERABLE
                basis = [b for b in basis if not _leq(prev, b)]
                basis.append(prev)
                frontier.append(prev)
                inserted += 1
                if inserted > limit:
                    return LIMIT_REACHED
        return NOT_COVERABLE
