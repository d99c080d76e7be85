"""The OR-join decision: general, non-local, exact on the reset net, and fast.

Theory of operation (Wynn, Edmond, van der Aalst & ter Hofstede, "Achieving a general, formal
and decidable approach to the OR-join in workflow using reset nets", ICATPN 2005; ADR 0001 §4).
An OR-join task ``t`` may fire at marking M iff some input of ``t`` is marked and no marking
reachable from M *without firing t* keeps every marked input marked and also marks an input that
is empty now. Busy items count as tokens of a pseudo-place ``busy(u)`` that their completion
consumes. Cancellation sets are reset arcs.

1. *Structural test* (sound, a few word ANDs in the kernel): if no marked place and no busy task
   lies in the backward region of any empty input, nothing can ever arrive: fire.
2. *Exact test*: backward coverability on the reset net restricted to the regions. Starting from
   the minimal goal markings (the marked inputs plus one empty input), we compute the minimal
   predecessors of every basis element under every transition until a fixpoint (finite by
   Dickson's lemma; reset nets are well-structured), and answer whether M covers a basis element.
   Data is abstracted: an XOR split may take any one flow, an OR split all of them (producing more
   tokens never hinders coverability); other OR-joins and partial joins are taken to fire on any
   one input; triggers and milestones are taken as satisfied. Each abstraction only adds
   behaviour, so the join may wait where a data-aware oracle would not, but never fires while a
   token can still arrive.
3. *Memo*: answers are cached per join on (marked inputs, the marking and busy counts restricted
   to its regions).

Why backward and not forward: forward exploration need not terminate on unbounded nets (thread
splits in loops); backward coverability does.

The kernels (``yawlflow._hotpath``, compiled or their pure twins): steps 1 and the feeder test run
in an :class:`OrJoinScreen`, step 2 in a :class:`Coverability`; this module builds their arrays
from the compiled net, once per join, and keeps the memo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from ._compiled import SPLIT_THREADS, SPLIT_XOR, CompiledNet
from ._hotpath import JOIN_AND, NOT_COVERABLE, SCREEN_EXACT, SCREEN_FIRE, Coverability, Marking, OrJoinScreen

__all__ = ("OrJoinOracle",)

# A transition: (pre, post, resets) as sparse tuples of (index, count) / indices.
_Transition = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], frozenset[int]]

_LIMIT = 200_000  # basis insertions before we give up and (safely) make the join wait

_T = TypeVar("_T")


def _csr(rows: Sequence[Sequence[_T]]) -> tuple[npt.NDArray[np.int32], list[_T]]:
    """CSR row pointers of ``rows``, and their entries in one list."""
    ptr = np.zeros(len(rows) + 1, dtype=np.int32)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    return ptr, [x for r in rows for x in r]


class _Restricted:
    """The reset net of one OR-join, restricted to the union of its inputs' regions.

    Its vector: the region's places first, then one busy pseudo-place per task; ``kernel`` is the
    :class:`Coverability` over it.
    """

    def __init__(self, net: CompiledNet, join_task: int) -> None:
        tasks: set[int] = set()
        places: set[int] = set(net.preset[join_task])
        for _p, r in net.orjoin_regions[join_task]:
            tasks.update(net.region_tasks_of[r])
        for u in tasks:
            places.update(net.preset[u])
            places.update(f.place for f in net.flows[u])
        self.places = tuple(sorted(places))
        self.tasks = tuple(sorted(tasks))
        index = {p: i for i, p in enumerate(self.places)}
        busy_index = {u: len(self.places) + i for i, u in enumerate(self.tasks)}
        self.index = index
        self.busy_index = busy_index
        self.size = len(self.places) + len(self.tasks)
        transitions: list[_Transition] = []
        for u in self.tasks:
            resets = {index[p] for p in net.cancel_places[u] if p in index}
            for v in net.cancel_tasks[u]:
                resets.update(index[p] for p in net.preset[v] if p in index)
                if v in busy_index:
                    resets.add(busy_index[v])
            reset_set = frozenset(resets)
            posts = self._posts(net, u)
            if net.join[u] == JOIN_AND:
                pres = [tuple((index[p], 1) for p in net.preset[u])]
            else:  # XOR, OR (optimistic), threads, partial: any one input may fire it
                pres = [((index[p], 1),) for p in net.preset[u]]
            for post in posts:
                for pre in pres:
                    transitions.append((pre, post, reset_set))
                transitions.append((((busy_index[u], 1),), post, reset_set))
        self.transitions = tuple(transitions)
        pre_ptr, pre_all = _csr([tr[0] for tr in transitions])
        post_ptr, post_all = _csr([tr[1] for tr in transitions])
        reset_ptr, reset_idx = _csr([sorted(tr[2]) for tr in transitions])
        self.kernel = Coverability(
            places=np.array(self.places, dtype=np.int32),
            tasks=np.array(self.tasks, dtype=np.int32),
            pre_ptr=pre_ptr,
            pre_idx=np.array([i for i, _k in pre_all], dtype=np.int32),
            pre_cnt=np.array([k for _i, k in pre_all], dtype=np.int64),
            post_ptr=post_ptr,
            post_idx=np.array([i for i, _k in post_all], dtype=np.int32),
            post_cnt=np.array([k for _i, k in post_all], dtype=np.int64),
            reset_ptr=reset_ptr,
            reset_idx=np.array(reset_idx, dtype=np.int32),
        )

    def _posts(self, net: CompiledNet, u: int) -> list[tuple[tuple[int, int], ...]]:
        flows = net.flows[u]
        idx = self.index
        split = net.split[u]
        if split == SPLIT_XOR:
            return [((idx[f.place], 1),) for f in flows] or [()]
        n = net.split_n[u] if split == SPLIT_THREADS else 1
        return [tuple((idx[f.place], n) for f in flows)]


def _screen(net: CompiledNet, task: int) -> OrJoinScreen:
    """The quick tests of the OR-join ``task``: its inputs and their regions, and per input the
    tasks that could feed it (its producers other than the join), with the input slots each one
    consumes from (``takes``) and empties by its cancellation set (``spoils``)."""
    inputs = net.preset[task]
    cands: list[list[int]] = []
    takes: list[list[int]] = []
    spoils: list[list[int]] = []
    for p in inputs:
        row = [u for u in net.producers[p] if u != task]
        cands.append(row)
        for u in row:
            cancelled = set(net.cancel_places[u])
            for v in net.cancel_tasks[u]:
                cancelled.update(net.preset[v])
            takes.append([s for s, q in enumerate(inputs) if q in net.preset[u]])
            spoils.append([s for s, q in enumerate(inputs) if q in cancelled])
    cand_ptr, cand_task = _csr(cands)
    takes_ptr, takes_slot = _csr(takes)
    spoils_ptr, spoils_slot = _csr(spoils)
    return OrJoinScreen(
        inputs=np.array(inputs, dtype=np.int32),
        regions=np.array([r for _p, r in net.orjoin_regions[task]], dtype=np.int32),
        cand_ptr=cand_ptr,
        cand_task=np.array(cand_task, dtype=np.int32),
        takes_ptr=takes_ptr,
        takes_slot=np.array(takes_slot, dtype=np.int32),
        spoils_ptr=spoils_ptr,
        spoils_slot=np.array(spoils_slot, dtype=np.int32),
    )


class OrJoinOracle:
    """Decides OR-joins of one compiled net; holds the per-join kernels and the memo."""

    def __init__(self, net: CompiledNet) -> None:
        self._net = net
        self._screens: dict[int, OrJoinScreen] = {}
        self._restricted: dict[int, _Restricted] = {}
        self._memo: dict[tuple[object, ...], bool] = {}

    def may_fire(self, marking: Marking, task: int) -> bool:
        """Whether the OR-join ``task`` may fire now (at least one input marked, none can arrive)."""
        screen = self._screens.get(task)
        if screen is None:
            screen = self._screens[task] = _screen(self._net, task)
        code = screen.screen(marking)
        if code != SCREEN_EXACT:
            return code == SCREEN_FIRE
        net = self._net
        marked = [p for p in net.preset[task] if marking.get(p)]
        key = (task, tuple(marked), tuple(marking.region_key(r) for _p, r in net.orjoin_regions[task]))
        hit = self._memo.get(key)
        if hit is None:
            hit = not self._coverable(marking, task, marked)
            if len(self._memo) > 65_536:
                self._memo.clear()
            self._memo[key] = hit
        return hit

    def _coverable(self, marking: Marking, task: int, marked: list[int]) -> bool:
        """Whether a marking reachable without firing ``task`` keeps the ``marked`` inputs marked
        and marks an empty one (or the search is too large to tell: then wait, the safe answer)."""
        rn = self._restricted.get(task)
        if rn is None:
            rn = self._restricted[task] = _Restricted(self._net, task)
        current = rn.kernel.vector(marking)
        base = [0] * rn.size
        for p in marked:
            base[rn.index[p]] = 1
        goals: list[list[int]] = []
        for p in self._net.preset[task]:
            if p not in marked:
                goal = list(base)
                goal[rn.index[p]] = 1
                goals.append(goal)
        # LIMIT_REACHED: too large to decide: waiting is the safe answer
        return rn.kernel.coverable(current, goals, _LIMIT) != NOT_COVERABLE
