"""Marking kernel, pure-Python twin: counted tokens, busy counts, joins, cancellation, regions.

Theory of operation. A net's static structure arrives once, as flat arrays in a
:class:`KernelNet` (CSR presets and cancellation sets, join codes, region bitsets); a
:class:`Marking` holds the dynamic part of a case: tokens per place and busy items per task,
plus one bitset of marked places and one of busy tasks, kept up to date on every change so that
"does anything live in this OR-join's region?" is a few word ANDs. The compiled twin
(``_marking_cy.pyx``) has the same API and the same results; ``yawlflow._hotpath`` picks one.

The kernel never decides *what* to fire; the runner does. It only answers how many times a
task's join could fire (``capacity``) and applies consumption, production and cancellation.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

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

JOIN_AND = 0
JOIN_XOR = 1
JOIN_OR = 2
JOIN_THREADS = 3
JOIN_PARTIAL = 4

# Why Marking.fire_routing stopped (its second result).
FIRE_EMPTY = 0  # the worklist is empty
FIRE_HANDOFF = 1  # it popped a task it does not fire itself: the caller handles that task
FIRE_END = 2  # a firing marked the end place
FIRE_BUDGET = 3  # the next firing would pass the budget: the task is popped and returned

IntArray = npt.NDArray[np.int32]
WordArray = npt.NDArray[np.uint64]


class KernelNet:
    """The static arrays the marking kernels read.

    Args:
        n_places: number of places.
        n_tasks: number of tasks.
        preset_ptr: CSR row pointers (``n_tasks + 1``) into ``preset_idx``.
        preset_idx: input places of each task, in the order written.
        join_code: one of the ``JOIN_*`` codes per task.
        join_n: N for threads and partial joins, else 0.
        cancel_ptr: CSR row pointers (``n_tasks + 1``) into ``cancel_idx``.
        cancel_idx: places emptied when each task completes.
        region_places: ``[n_regions, words(n_places)]`` bitsets of places.
        region_tasks: ``[n_regions, words(n_tasks)]`` bitsets of tasks.

    The arrays are read, never written, and must not be changed once a marking uses them: the
    compiled twin validates them once and caches what it derives in ``cache``.
    """

    __slots__ = (
        "cache",
        "cancel_idx",
        "cancel_ptr",
        "join_code",
        "join_n",
        "n_places",
        "n_tasks",
        "preset_idx",
        "preset_ptr",
        "region_places",
        "region_tasks",
    )

    def __init__(
        self,
        *,
        n_places: int,
        n_tasks: int,
        preset_ptr: IntArray,
        preset_idx: IntArray,
        join_code: IntArray,
        join_n: IntArray,
        cancel_ptr: IntArray,
        cancel_idx: IntArray,
        region_places: WordArray,
        region_tasks: WordArray,
    ) -> None:
        self.n_places = n_places
        self.n_tasks = n_tasks
        self.preset_ptr = preset_ptr
        self.preset_idx = preset_idx
        self.join_code = join_code
        self.join_n = join_n
        self.cancel_ptr = cancel_ptr
        self.cancel_idx = cancel_idx
        self.region_places = region_places
        self.region_tasks = region_tasks
        self.cache: object = None  # the compiled twin keeps its validated view of the arrays here


def _rows_as_ints(rows: WordArray) -> list[int]:
    out = []
    for row in rows:
        value = 0
        for w, word in enumerate(row.tolist()):
            value |= int(word) << (64 * w)
        out.append(value)
    return out


class Worklist:
    """The runner's FIFO of tasks to look at again, each queued at most once.

    Args:
        n_tasks: the number of tasks of the net.
    """

    __slots__ = ("_queue", "_queued")

    def __init__(self, n_tasks: int) -> None:
        self._queue: deque[int] = deque()
        self._queued = bytearray(n_tasks)

    def touch(self, task: int) -> None:
        """Queue ``task`` unless it is queued already."""
        if not self._queued[task]:
            self._queued[task] = 1
            self._queue.append(task)

    def pop(self) -> int:
        """The task at the head, removed; -1 if the worklist is empty."""
        if not self._queue:
            return -1
        task = self._queue.popleft()
        self._queued[task] = 0
        return task

    def clear(self) -> None:
        """Empty the worklist."""
        self._queue.clear()
        self._queued = bytearray(len(self._queued))

    def __len__(self) -> int:
        return len(self._queue)

    def tasks(self) -> list[int]:
        """The queued tasks, head first."""
        return list(self._queue)


class RoutingProgram:
    """What :meth:`Marking.fire_routing` needs besides the marking: which tasks it may fire, what
    each produces, who looks again when a place changes, and where the net ends.

    Args:
        net: the static arrays of the net.
        simple: per task, true if the batch may fire it: a routing task whose firing is its join
            (AND, XOR or thread merge, by tokens alone), then its cancellation-free, data-free
            production (``post``); the caller decides which tasks qualify.
        post_ptr: CSR row pointers (``n_tasks + 1``) into ``post_idx`` / ``post_n``.
        post_idx: the places each simple task puts tokens in, in order.
        post_n: how many tokens it puts in each.
        watch_ptr: CSR row pointers (``n_places + 1``) into ``watch_idx``.
        watch_idx: per place, the tasks to look at again when its tokens change, in order.
        end_place: a place whose marking ends the batch (explicit termination), or -1.
    """

    __slots__ = ("_post", "_simple", "_watch", "end_place", "n_places", "n_tasks")

    def __init__(
        self,
        net: KernelNet,
        *,
        simple: Sequence[bool],
        post_ptr: Sequence[int],
        post_idx: Sequence[int],
        post_n: Sequence[int],
        watch_ptr: Sequence[int],
        watch_idx: Sequence[int],
        end_place: int = -1,
    ) -> None:
        n_tasks, n_places = net.n_tasks, net.n_places
        if len(simple) != n_tasks or len(post_ptr) != n_tasks + 1 or len(watch_ptr) != n_places + 1:
            raise ValueError("RoutingProgram: simple, post_ptr or watch_ptr does not fit the net")
        if len(post_idx) != len(post_n) or post_ptr[-1] > len(post_idx) or watch_ptr[-1] > len(watch_idx):
            raise ValueError("RoutingProgram: post_idx/post_n/watch_idx are shorter than their pointers say")
        if any(not 0 <= p < n_places for p in post_idx) or any(not 0 <= t < n_tasks for t in watch_idx):
            raise ValueError("RoutingProgram: a place or task index is outside the net")
        if any(n < 0 for n in post_n):
            raise ValueError("RoutingProgram: post_n holds a negative count")
        if not -1 <= end_place < n_places:
            raise ValueError(f"RoutingProgram: end_place {end_place} is not a place of the net, nor -1")
        _check_simple(net, simple)
        self.n_tasks, self.n_places, self.end_place = n_tasks, n_places, end_place
        self._simple = [bool(x) for x in simple]
        self._post = [
            tuple(zip(post_idx[post_ptr[t]:post_ptr[t + 1]], post_n[post_ptr[t]:post_ptr[t + 1]], strict=True))
            for t in range(n_tasks)
        ]
        self._watch = [tuple(watch_idx[watch_ptr[p]:watch_ptr[p + 1]]) for p in range(n_places)]


def _check_simple(net: KernelNet, simple: Sequence[bool]) -> None:
    """A simple task's join must fire by tokens alone, from distinct input places."""
    ptr = net.preset_ptr.tolist()
    idx = net.preset_idx.tolist()
    codes = net.join_code.tolist()
    join_n = net.join_n.tolist()
    for t, yes in enumerate(simple):
        if not yes:
            continue
        pre = idx[ptr[t] : ptr[t + 1]]
        if codes[t] not in (JOIN_AND, JOIN_XOR, JOIN_THREADS) or (codes[t] == JOIN_THREADS and join_n[t] < 1):
            raise ValueError(f"RoutingProgram: task {t} is marked simple but its join is not AND, XOR or a "
                             "thread merge of N >= 1")
        if len(set(pre)) != len(pre):
            raise ValueError(f"RoutingProgram: task {t} is marked simple but lists an input place twice")


def completed_records(
    out: list[dict[str, Any]], fired: Sequence[int], names: Sequence[str], case: str, net: str, seq: int, item: int
) -> None:
    """Append one ``item.completed`` trace record per fired task to ``out``.

    The records number ``seq``, ``seq + 1``, ... and take the item ids ``item``, ``item + 1``, ...
    in firing order, as the runner's own records would.
    """
    for k, t in enumerate(fired):
        out.append({
            "seq": seq + k, "case": case, "event": "item.completed", "task": names[t], "item": item + k,
            "instance": None, "net": net, "data": None,
        })


class Marking:
    """Tokens per place and busy items per task of one case, over a :class:`KernelNet`.

    Args:
        net: the static arrays.
        tokens: initial tokens per place (default: none).
        busy: initial busy items per task (default: none).
    """

    __slots__ = ("_busy", "_busy_bits", "_cancel", "_join", "_join_n", "_marked_bits", "_net", "_pre", "_rp", "_rt",
                 "_tokens")

    def __init__(
        self, net: KernelNet, tokens: Sequence[int] | None = None, busy: Sequence[int] | None = None
    ) -> None:
        self._net = net
        ptr = net.preset_ptr.tolist()
        idx = net.preset_idx.tolist()
        self._pre: list[tuple[int, ...]] = [tuple(idx[ptr[t] : ptr[t + 1]]) for t in range(net.n_tasks)]
        cptr = net.cancel_ptr.tolist()
        cidx = net.cancel_idx.tolist()
        self._cancel: list[tuple[int, ...]] = [tuple(cidx[cptr[t] : cptr[t + 1]]) for t in range(net.n_tasks)]
        self._join: list[int] = net.join_code.tolist()
        self._join_n: list[int] = net.join_n.tolist()
        self._rp = _rows_as_ints(net.region_places)
        self._rt = _rows_as_ints(net.region_tasks)
        self._tokens = [0] * net.n_places if tokens is None else [int(x) for x in tokens]
        self._busy = [0] * net.n_tasks if busy is None else [int(x) for x in busy]
        if len(self._tokens) != net.n_places or len(self._busy) != net.n_tasks:
            raise ValueError("tokens/busy length does not match the net")
        if min(self._tokens, default=0) < 0 or min(self._busy, default=0) < 0:
            raise ValueError("negative token or busy count")
        self._marked_bits = sum(1 << p for p, n in enumerate(self._tokens) if n)
        self._busy_bits = sum(1 << t for t, n in enumerate(self._busy) if n)

    # -- tokens -----------------------------------------------------------------------------
    def get(self, place: int) -> int:
        """Tokens in ``place``."""
        return self._tokens[place]

    def add(self, place: int, n: int = 1) -> None:
        """Put ``n`` tokens in ``place``."""
        if n <= 0:
            if n < 0:
                raise ValueError("cannot add a negative number of tokens")
            return
        self._tokens[place] += n
        self._marked_bits |= 1 << place

    def take(self, place: int, n: int = 1) -> None:
        """Remove ``n`` tokens from ``place``.

        Raises:
            ValueError: the place holds fewer than ``n`` tokens.
        """
        have = self._tokens[place]
        if n < 0 or have < n:
            raise ValueError(f"place {place} holds {have} tokens, cannot take {n}")
        have -= n
        self._tokens[place] = have
        if not have:
            self._marked_bits &= ~(1 << place)

    def clear(self, place: int) -> int:
        """Empty ``place``; return how many tokens it held."""
        have = self._tokens[place]
        if have:
            self._tokens[place] = 0
            self._marked_bits &= ~(1 << place)
        return have

    def tokens(self) -> list[int]:
        """Tokens per place, as a new list."""
        return list(self._tokens)

    def marked(self) -> list[int]:
        """The marked places, ascending."""
        return [p for p, n in enumerate(self._tokens) if n]

    def total(self) -> int:
        """Tokens in all places."""
        return sum(self._tokens)

    # -- busy items --------------------------------------------------------------------------
    def busy(self, task: int) -> int:
        """Busy (started, unfinished) items of ``task``."""
        return self._busy[task]

    def busy_add(self, task: int, n: int) -> None:
        """Change the busy count of ``task`` by ``n`` (may be negative).

        Raises:
            ValueError: the count would become negative.
        """
        value = self._busy[task] + n
        if value < 0:
            raise ValueError(f"task {task} would have {value} busy items")
        self._busy[task] = value
        if value:
            self._busy_bits |= 1 << task
        else:
            self._busy_bits &= ~(1 << task)

    def busy_counts(self) -> list[int]:
        """Busy items per task, as a new list."""
        return list(self._busy)

    # -- joins --------------------------------------------------------------------------------
    def capacity(self, task: int) -> int:
        """How many times ``task``'s join could fire now, by its tokens alone.

        AND: the minimum over the inputs; XOR: the sum; threads N: the sum // N; OR and partial:
        1 if any input is marked (the runner adds the non-local OR-join rule and the partial
        join's count).
        """
        pre = self._pre[task]
        toks = self._tokens
        code = self._join[task]
        if code == JOIN_AND:
            if len(pre) == 1:
                return toks[pre[0]]
            return min([toks[p] for p in pre]) if pre else 0
        if code == JOIN_XOR:
            return sum([toks[p] for p in pre])
        if code == JOIN_THREADS:
            return sum([toks[p] for p in pre]) // self._join_n[task]
        for p in pre:
            if toks[p]:
                return 1
        return 0

    def enabled(self) -> array[int]:
        """The tasks whose join could fire now by their tokens alone (capacity > 0), ascending,
        as an ``array('i')`` (no Python int per task in the compiled twin).

        One call checks every task: the enabled-set kernel. A task with no inputs is never
        enabled; a thread merge with N < 1 never is either (where ``capacity`` would divide by 0).
        """
        toks = self._tokens
        out: array[int] = array("i")
        for t, pre in enumerate(self._pre):
            if not pre:
                continue
            code = self._join[t]
            if code == JOIN_AND:
                ok = all(toks[p] > 0 for p in pre)
            elif code == JOIN_THREADS:
                need = self._join_n[t]
                ok = need > 0 and sum([toks[p] for p in pre]) >= need
            else:
                ok = any(toks[p] for p in pre)
            if ok:
                out.append(t)
        return out

    def marked_inputs(self, task: int) -> int:
        """How many of ``task``'s input places hold a token."""
        toks = self._tokens
        return sum([1 for p in self._pre[task] if toks[p]])

    def consume(self, task: int) -> list[int]:
        """Consume the tokens of one firing of ``task``; return the places that changed.

        AND: one token per input. XOR: one from the first marked input (in the order written).
        Threads N: N tokens, from the inputs in order. OR and partial: one from every marked input.

        Raises:
            ValueError: the join cannot fire.
        """
        pre = self._pre[task]
        toks = self._tokens
        code = self._join[task]
        changed: list[int] = []
        if code == JOIN_AND:
            if not pre or min([toks[p] for p in pre]) < 1:
                raise ValueError(f"task {task}: AND-join not enabled")
            for p in pre:
                self.take(p, 1)
            return list(pre)
        if code == JOIN_XOR:
            for p in pre:
                if toks[p]:
                    self.take(p, 1)
                    return [p]
            raise ValueError(f"task {task}: XOR-join not enabled")
        if code == JOIN_THREADS:
            need = self._join_n[task]
            if sum([toks[p] for p in pre]) < need:
                raise ValueError(f"task {task}: thread merge not enabled")
            for p in pre:
                if not need:
                    break
                k = min(need, toks[p])
                if k:
                    self.take(p, k)
                    need -= k
                    changed.append(p)
            return changed
        for p in pre:
            if toks[p]:
                self.take(p, 1)
                changed.append(p)
        if not changed:
            raise ValueError(f"task {task}: join not enabled")
        return changed

    def clear_inputs(self, task: int) -> list[int]:
        """Empty every input place of ``task``; return those that held tokens."""
        return [p for p in self._pre[task] if self.clear(p)]

    def cancel(self, task: int) -> list[int]:
        """Empty the places of ``task``'s cancellation set; return those that held tokens."""
        return [p for p in self._cancel[task] if self.clear(p)]

    # -- the batch: a run of routing firings in one call ---------------------------------------------
    def fire_routing(self, prog: RoutingProgram, worklist: Worklist, budget: int) -> tuple[array[int], int, int]:
        """Fire routing tasks from ``worklist`` until it pops one the batch does not fire.

        Pop tasks from the head; while the popped task is simple and its join can fire (by
        tokens: ``capacity > 0``), fire it: consume (and queue the watchers of the places that
        lost tokens), then produce its ``post`` (queueing the watchers of each place it marks).
        After a task's firings, stop if one of them marked ``prog.end_place``.

        Returns:
            ``(fired, why, task)``: the fired tasks in order (an ``array('i')``, a task once per
            firing); why it stopped, ``FIRE_EMPTY`` (``task`` is -1), ``FIRE_HANDOFF`` (``task``
            was popped and is not simple: the caller handles it), ``FIRE_END`` (``task`` marked
            the end place), or ``FIRE_BUDGET`` (``task``, popped, would fire once more than
            ``budget`` allows).
        """
        fired: array[int] = array("i")
        toks = self._tokens
        watch = prog._watch
        simple = prog._simple
        end = prog.end_place
        while True:
            t = worklist.pop()
            if t < 0:
                return fired, FIRE_EMPTY, -1
            if not simple[t]:
                return fired, FIRE_HANDOFF, t
            ended = False
            while self.capacity(t) > 0:
                if budget <= 0:
                    return fired, FIRE_BUDGET, t
                budget -= 1
                for p in self.consume(t):
                    for u in watch[p]:
                        worklist.touch(u)
                fired.append(t)
                for p, n in prog._post[t]:
                    if n > 0:
                        toks[p] += n
                        self._marked_bits |= 1 << p
                    for u in watch[p]:
                        worklist.touch(u)
                    if p == end:
                        ended = True
            if ended:
                return fired, FIRE_END, t

    # -- OR-join regions ----------------------------------------------------------------------
    def region_live(self, region: int) -> bool:
        """Whether a marked place or a busy task lies in ``region``."""
        return bool(self._marked_bits & self._rp[region]) or bool(self._busy_bits & self._rt[region])

    def region_key(self, region: int) -> tuple[int, ...]:
        """The marking and busy counts restricted to ``region`` (a memo key)."""
        rp = self._rp[region] & self._marked_bits
        rt = self._rt[region] & self._busy_bits
        key: list[int] = []
        p = 0
        while rp:
            if rp & 1:
                key.append(p)
                key.append(self._tokens[p])
            rp >>= 1
            p += 1
        key.append(-1)
        t = 0
        while rt:
            if rt & 1:
                key.append(t)
                key.append(self._busy[t])
            rt >>= 1
            t += 1
        return tuple(key)

    # -- copying ------------------------------------------------------------------------------
    def copy(self) -> Marking:
        """An independent copy."""
        other = Marking.__new__(Marking)
        other._net = self._net
        other._pre = self._pre
        other._cancel = self._cancel
        other._join = self._join
        other._join_n = self._join_n
        other._rp = self._rp
        other._rt = self._rt
        other._tokens = list(self._tokens)
        other._busy = list(self._busy)
        other._marked_bits = self._marked_bits
        other._busy_bits = self._busy_bits
        return other

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Marking):
            return NotImplemented
        return self._tokens == other._tokens and self._busy == other._busy

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        marked = {p: n for p, n in enumerate(self._tokens) if n}
        busy = {t: n for t, n in enumerate(self._busy) if n}
        return f"Marking(tokens={marked}, busy={busy})"
