"""Limits: how many items (per engine, task, tenant) and cases (per tenant) run at once.

A limit reached queues the work, first come first served; it never drops it. :class:`Slots` is a
counting gate with a FIFO of waiters (``anyio.Semaphore`` would do, but a case resumed from a
store must be counted even when it puts its tenant over the limit: :meth:`Slots.force`).
:class:`Gates` makes the gates of one engine's :class:`~yawlflow._config.Limits` on demand.
"""

from __future__ import annotations

from collections import deque

import anyio

from ._config import Limits

__all__ = ("Gates", "Slots")


class Slots:
    """At most ``limit`` holders at once; the others wait in arrival order."""

    __slots__ = ("_waiters", "held", "limit", "name")

    def __init__(self, limit: int, name: str) -> None:
        self.limit = limit
        self.name = name
        self.held = 0
        self._waiters: deque[anyio.Event] = deque()

    @property
    def waiting(self) -> int:
        """How many wait for a slot."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Take a slot, waiting (in arrival order) while all are taken; cancellable while waiting."""
        if self.held < self.limit and not self._waiters:
            self.held += 1
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # the slot was handed over as the wait was cancelled: pass it on
                self.release()
            else:
                self._waiters.remove(event)
            raise

    def force(self) -> None:
        """Take a slot even over the limit (a case that was already running when its engine stopped)."""
        self.held += 1

    def release(self) -> None:
        """Give a slot back: the longest waiter gets it."""
        if self._waiters and self.held <= self.limit:
            self._waiters.popleft().set()  # the slot passes to it: held stays
            return
        self.held -= 1


class Gates:
    """The slots of one engine's limits, made when first needed."""

    __slots__ = ("_cases", "_items", "_tasks", "_tenants", "limits")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._items = Slots(limits.items, "items") if limits.items is not None else None
        self._tasks: dict[str, Slots] = {}
        self._tenants: dict[str, Slots | None] = {}
        self._cases: dict[str, Slots | None] = {}

    @property
    def any_item_limit(self) -> bool:
        """Whether any item limit is set (else items never wait)."""
        lim = self.limits
        return (lim.items is not None or bool(lim.tasks) or lim.tenant_items is not None
                or any(items is not None for items, _ in lim.tenants.values()))

    def for_item(self, task: str, tenant: str | None) -> list[Slots]:
        """The gates an item of ``task`` (of ``tenant``) passes, in a fixed order (no deadlock)."""
        out = []
        if self._items is not None:
            out.append(self._items)
        n = self.limits.tasks.get(task)
        if n is not None:
            slots = self._tasks.get(task)
            if slots is None:
                slots = self._tasks[task] = Slots(n, f"task {task}")
            out.append(slots)
        if tenant is not None:
            if tenant not in self._tenants:
                items, _ = self.limits.for_tenant(tenant)
                self._tenants[tenant] = Slots(items, f"tenant {tenant} items") if items is not None else None
            gate = self._tenants[tenant]
            if gate is not None:
                out.append(gate)
        return out

    def all(self) -> list[Slots]:
        """Every gate made so far."""
        out = [self._items] if self._items is not None else []
        out.extend(self._tasks.values())
        out.extend(g for g in self._tenants.values() if g is not None)
        out.extend(g for g in self._cases.values() if g is not None)
        return out

    def for_case(self, tenant: str | None) -> Slots | None:
        """The gate a root case of ``tenant`` passes (``None``: no limit)."""
        if tenant is None:
            return None
        if tenant not in self._cases:
            _, cases = self.limits.for_tenant(tenant)
            self._cases[tenant] = Slots(cases, f"tenant {tenant} cases") if cases is not None else None
        return self._cases[tenant]
