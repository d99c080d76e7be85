"""Lifecycle hooks: code an embedder runs when cases and items start, end, fail or are cancelled.

``engine.hooks.add("after_case_complete", fn)`` (or ``@engine.hooks.after_case_complete``) adds a
hook; a hook is called with one :class:`HookEvent`, may be sync or async, and cannot break the
engine: an exception it raises is logged with the hook's name and counted in
``engine.metrics()["hooks"]``, and the case goes on. The ``before_*`` hooks are awaited before
the thing happens (a case is created, a handler is called); the others are notifications: a sync
one is called at once, an async one runs in the engine's task group without holding the case up.

Events: ``before_case_start``, ``after_case_start``, ``after_case_complete``, ``on_case_error``
(the case failed), ``on_case_cancel``, ``before_item_start`` (before its handler is called),
``after_item_complete``, ``on_item_error`` (an attempt failed; ``data.final``: no retry follows),
``on_item_cancel``, ``cleanup`` (after a case has ended, however it ended).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.abc
import msgspec

from ._errors import ConfigError

__all__ = ("EVENTS", "HookEvent", "Hooks")

_log = logging.getLogger(__name__)

EVENTS = (
    "before_case_start", "after_case_start", "after_case_complete", "on_case_error", "on_case_cancel",
    "before_item_start", "after_item_complete", "on_item_error", "on_item_cancel", "cleanup",
)

Hook = Callable[["HookEvent"], "Awaitable[None] | None"]


class HookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """What a hook is told.

    Attributes:
        event: the hook's event name.
        case: the case's id (``None`` for ``before_case_start``: it has none yet).
        tenant: the case's tenant.
        task: the task, for item events.
        item: the work item's id, for item events.
        data: the case's data (case events), the item's input (``before_item_start``) or output
            (``after_item_complete``), ``{attempt, error, final}`` (``on_item_error``), else ``None``.
    """

    event: str
    case: str | None = None
    tenant: str | None = None
    task: str | None = None
    item: int | None = None
    data: Any = None


class Hooks:
    """An engine's hooks by event (see the module docstring)."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {}
        self.failed = 0
        self.called = 0

    def add(self, event: str, hook: Hook) -> Callable[[], None]:
        """Add ``hook`` for ``event``; return a function that removes it.

        Raises:
            ConfigError: ``event`` is not a hook event, or ``hook`` is not callable.
        """
        if event not in EVENTS:
            import difflib

            close = difflib.get_close_matches(str(event), EVENTS, n=1)
            raise ConfigError(f"no hook event {event!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                              + f"; use one of: {', '.join(EVENTS)}")
        if not callable(hook):
            raise ConfigError(f"a hook must be callable, not {type(hook).__name__}")
        self._hooks.setdefault(event, []).append(hook)

        def remove() -> None:
            hooks = self._hooks.get(event, [])
            if hook in hooks:
                hooks.remove(hook)
                if not hooks:
                    del self._hooks[event]

        return remove

    def __getattr__(self, event: str) -> Callable[[Hook], Hook]:
        """``@engine.hooks.after_case_complete`` registers the function below it."""
        if event not in EVENTS:
            raise AttributeError(f"no hook event {event!r}; use one of: {', '.join(EVENTS)}")

        def register(hook: Hook) -> Hook:
            self.add(event, hook)
            return hook

        return register

    def wants(self, event: str) -> bool:
        """Whether any hook listens for ``event`` (cheap: check before building the event)."""
        return event in self._hooks

    @property
    def any(self) -> bool:
        """Whether any hook is registered."""
        return bool(self._hooks)

    async def before(self, event: HookEvent) -> None:
        """Run the hooks of a ``before_*`` event, awaiting async ones; failures are logged, not raised."""
        for hook in list(self._hooks.get(event.event, ())):
            self.called += 1
            try:
                value = hook(event)
                if inspect.isawaitable(value):
                    await value
            except Exception:
                self._failed(hook, event)

    def notify(self, event: HookEvent, tg: anyio.abc.TaskGroup | None) -> None:
        """Run the hooks of a notification: sync ones now, async ones in ``tg`` (never awaited here)."""
        for hook in list(self._hooks.get(event.event, ())):
            self.called += 1
            try:
                value = hook(event)
            except Exception:
                self._failed(hook, event)
                continue
            if inspect.isawaitable(value):
                if tg is None:  # the engine is stopping: nowhere to run it
                    close = getattr(value, "close", None)
                    if callable(close):
                        close()
                    continue
                tg.start_soon(self._await, hook, event, value)

    async def _await(self, hook: Hook, event: HookEvent, value: Awaitable[None]) -> None:
        try:
            await value
        except Exception:
            self._failed(hook, event)

    def _failed(self, hook: Hook, event: HookEvent) -> None:
        self.failed += 1
        name = getattr(hook, "__qualname__", repr(hook))
        _log.exception("hook %s for %s (case %s) failed; the case goes on", name, event.event, event.case,
                       extra={"case_id": event.case, "hook": name})
