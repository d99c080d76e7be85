"""Gates on enabling: partial joins (WCP-9, 28-32) and mutex regions (WCP-17, 39, 40).

Theory of operation. A *partial join* keeps, per task, which inputs delivered a token since its
last reset (:class:`~yawlflow._state.JoinState`). Arrivals are absorbed (their tokens consumed) one
per input; the N-th distinct input fires the join; once all M have arrived it resets. A later
token on an input that already arrived stays in its condition (held) until the reset, which is
what makes the blocking variants block. ``reset: cancel`` cancels the branches that have not
arrived — each input's branch is its backward region, minus what the arrived branches share with
it (the part before the split) — and resets at once.

A *mutex* region is active from the start of one of its tasks until none of its tasks is enabled
or busy; while it is, the other regions of the mutex cannot start, and inside it one thread at a
time may run: a thread is inside while one of the region's tasks is busy or a token lies on a
place between two of its tasks, and a task with no such place in its preset *enters* the region.
The runner asks :func:`mutex_blocked` as a factor of a task's capacity, marks the region on start
(:func:`enter`), and releases regions at the end of a settle pass (:func:`release_mutexes`),
re-examining the tasks they blocked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _mi
from ._state import CaseState, JoinState

if TYPE_CHECKING:
    from ._runner import NetRunner

__all__ = ("absorb", "enter", "mutex_blocked", "release_mutexes")


def absorb(r: NetRunner, s: CaseState, t: int) -> None:
    """Take the tokens arriving at a partial join; fire at the N-th, reset after all M.

    ``reset: wait``: a later token on an input that already arrived stays where it is (held)
    until every input has arrived once; then the join resets and takes it (WCP-28, 31).
    ``reset: cancel``: on firing, the branches that have not arrived are cancelled and the
    join resets at once (WCP-29, 32).
    """
    net = r.net
    pre = net.preset[t]
    full = (1 << len(pre)) - 1
    need = net.join_n[t]
    cancelling = net.tasks[t].join.reset == "cancel"
    js = s.joins.get(t)
    progress = True
    while progress:
        progress = False
        for i, p in enumerate(pre):
            if js is not None and js.arrived >> i & 1:
                continue
            if not s.marking.get(p):
                continue
            if js is None:
                js = s.joins[t] = JoinState()
            s.marking.take(p, 1)
            r._changed([p])
            js.arrived |= 1 << i
            progress = True
            if not js.fired and js.arrived.bit_count() >= need:
                js.fired = True
                js.ready += 1
                if cancelling:
                    _cancel_branches(r, s, t, js.arrived)
                    js.arrived = 0
                    js.fired = False
            if js.arrived == full:
                js.arrived = 0
                js.fired = False
    if js is not None and not (js.ready or js.arrived or js.fired):
        del s.joins[t]


def _cancel_branches(r: NetRunner, s: CaseState, t: int, arrived: int) -> None:
    branches = r.net.partial_branches[t]
    places: set[int] = set()
    tasks: set[int] = set()
    keep_p: set[int] = set()
    keep_t: set[int] = set()
    for i, (bp, bt) in enumerate(branches):
        if arrived >> i & 1:
            keep_p |= bp
            keep_t |= bt
        else:
            places |= bp
            tasks |= bt
    tasks -= keep_t
    for u in sorted(tasks & set(s.mi)):
        _mi.withdraw_group(r, s, u)
    for item_id in list(s.items):
        item = s.items.get(item_id)
        if item is not None and item.tid in tasks:
            r._withdraw(s, item)
    lost = [p for p in sorted(places - keep_p) if s.marking.clear(p)]
    r._lost(lost)


def mutex_blocked(r: NetRunner, s: CaseState, t: int) -> bool:
    """Whether another region of one of ``t``'s mutexes is active, or a thread is inside its own."""
    for name, region in r.net.mutex_of[t]:
        active = s.mutex.get(name)
        if active is None:
            continue
        if active != region:
            return True
        if (t, name, region) in r._entering and _occupied(r, s, name, region):
            return True  # one thread of the case inside the region at a time (WCP-39)
    return False


def _occupied(r: NetRunner, s: CaseState, name: str, region: int) -> bool:
    """Whether a thread is inside: a task of the region busy, or a token between two of its tasks."""
    return any(s.marking.busy(u) for u in r.net.mutex_regions[name][region]) or any(
        s.marking.get(p) for p in r._internal[(name, region)]
    )


def enter(r: NetRunner, s: CaseState, t: int) -> None:
    """Task ``t`` starts: its regions become active; the other regions' tasks look again (their
    offers are withdrawn while the region is active)."""
    for name, region in r.net.mutex_of[t]:
        if s.mutex.get(name) != region:
            s.mutex[name] = region
            for u in r._mutex_peers[t]:
                r._touch(u)


def release_mutexes(r: NetRunner, s: CaseState) -> bool:
    """Deactivate regions with no task enabled or busy; return whether any was released."""
    released = False
    for name, active in list(s.mutex.items()):
        tasks = r.net.mutex_regions[name][active]
        if any(s.marking.busy(u) or s.waiting.get(u) or s.marking.capacity(u) for u in tasks):
            continue
        del s.mutex[name]
        released = True
        for other in r.net.mutex_regions[name]:
            for u in other:
                r._touch(u)
    return released
