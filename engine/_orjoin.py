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
"""

from __future__ import annotations

from ._compiled import SPLIT_THREADS, SPLIT_XOR, CompiledNet
from ._hotpath import JOIN_AND, Marking

__all__ = ("OrJoinOracle",)

# A marking over the restricted index space: places first, then one busy pseudo-place per task.
Vec = tuple[int, ...]
# A transition: (pre, post, resets) as sparse tuples of (index, count) / indices.
_Transition = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...], frozenset[int]]

_LIMIT = 200_000  # basis insertions before we give up and (safely) make the join wait


class _Restricted:
    """The reset net of one OR-join, restricted to the union of its inputs' regions."""

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

    def _posts(self, net: CompiledNet, u: int) -> list[tuple[tuple[int, int], ...]]:
        flows = net.flows[u]
        idx = self.index
        split = net.split[u]
        if split == SPLIT_XOR:
            return [((idx[f.place], 1),) for f in flows] or [()]
        n = net.split_n[u] if split == SPLIT_THREADS else 1
        return [tuple((idx[f.place], n) for f in flows)]

    def vector(self, marking: Marking) -> Vec:
        vec = [marking.get(p) for p in self.places]
        vec.extend(marking.busy(u) for u in self.tasks)
        return tuple(vec)


def _leq(a: Vec, b: Vec) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True))


def _predecessor(m: Vec, tr: _Transition) -> Vec | None:
    pre, post, resets = tr
    post_d = dict(post)
    if not any(m[i] > 0 and post_d.get(i, 0) > 0 for i in post_d):
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


class OrJoinOracle:
    """Decides OR-joins of one compiled net; holds the per-join restricted nets and the memo."""

    def __init__(self, net: CompiledNet) -> None:
        self._net = net
        self._restricted: dict[int, _Restricted] = {}
        self._memo: dict[tuple[object, ...], bool] = {}

    def may_fire(self, marking: Marking, task: int) -> bool:
        """Whether the OR-join ``task`` may fire now (at least one input marked, none can arrive)."""
        net = self._net
        pre = net.preset[task]
        marked = [p for p in pre if marking.get(p)]
        if not marked:
            return False
        regions = net.orjoin_regions[task]
        empty_regions = [r for p, r in regions if not marking.get(p)]
        if not empty_regions:
            return True
        if not any(marking.region_live(r) for r in empty_regions):
            return True  # structural: no token or busy item upstream of an empty input
        if self._feeder(marking, task, marked):
            return False  # one step away: a busy or enabled task feeds an empty input
        key = (task, tuple(marked), tuple(marking.region_key(r) for _p, r in regions))
        hit = self._memo.get(key)
        if hit is None:
            hit = not self._coverable(marking, task, marked)
            if len(self._memo) > 65_536:
                self._memo.clear()
            self._memo[key] = hit
        return hit

    def _feeder(self, marking: Marking, task: int, marked: list[int]) -> bool:
        """A sound quick test for *waiting*: some task other than the join, busy or enabled now,
        puts a token in an empty input when it completes, and its cancellation set spares the
        marked inputs. That is a firing sequence of length one in the abstraction below."""
        net = self._net
        for p in net.preset[task]:
            if marking.get(p):
                continue
            for u in net.producers[p]:
                if u == task or not (marking.busy(u) or marking.capacity(u)):
                    continue
                if not marking.busy(u) and any(q in net.preset[u] for q in marked):
                    continue  # firing u could take a token the join counts on: leave it to the exact test
                if not any(q in net.cancel_places[u] for q in marked) and not any(
                    q in net.preset[v] for v in net.cancel_tasks[u] for q in marked
                ):
                    return True
        return False

    def _coverable(self, marking: Marking, task: int, marked: list[int]) -> bool:
        rn = self._restricted.get(task)
        if rn is None:
            rn = self._restricted[task] = _Restricted(self._net, task)
        current = rn.vector(marking)
        base = [0] * rn.size
        for p in marked:
            base[rn.index[p]] = 1
        basis: list[Vec] = []
        for p in self._net.preset[task]:
            if p not in marked:
                goal = list(base)
                goal[rn.index[p]] = 1
                basis.append(tuple(goal))
        frontier = list(basis)
        inserted = 0
        while frontier:
            m = frontier.pop()
            if _leq(m, current):
                return True
            for tr in rn.transitions:
                prev = _predecessor(m, tr)
                if prev is None or any(_leq(b, prev) for b in basis):
                    continue
                if _leq(prev, current):
                    return True
                basis = [b for b in basis if not _leq(prev, b)]
                basis.append(prev)
                frontier.append(prev)
                inserted += 1
                if inserted > _LIMIT:
                    return True  # too large to decide: waiting is the safe answer
        return False
