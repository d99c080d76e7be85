"""The handler registry: names in a spec resolve to callables here, never by evaluating code.

A name resolves, in order, to: a callable registered on the engine; an entry point of the
``yawlflow.handlers`` group; a ``module:function`` whose module the engine's configuration
allows (``handlers: {allow: [package.module, ...]}``). Anything else is a clear error.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

import msgspec

from ._errors import ConfigError

__all__ = ("Handler", "HandlerRegistry", "ItemContext", "Reconciler")

Handler = Callable[..., Any]
Reconciler = Callable[[str], Any]
"""``reconcile(idempotency_key)``, sync or async: the output of the item's effect if it took
place (a mapping: the item completes with it, without running again), or ``None`` (not done, or
unknown: the item runs again)."""


class ItemContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a handler that takes a second parameter receives.

    Attributes:
        case_id: the case's id.
        item_id: the item's id within its case.
        task: the task's name.
        attempt: the attempt number, from 1.
        idempotency_key: stable across re-runs and attempts of the same item: an idempotent
            handler that keys its effects on it gives exactly-once effects.
    """

    case_id: str
    item_id: int
    task: str
    attempt: int
    idempotency_key: str


class _Entry:
    __slots__ = ("fn", "is_async", "quick", "reconcile", "wants_ctx")

    def __init__(self, fn: Handler, quick: bool, reconcile: Reconciler | None = None) -> None:
        self.fn = fn
        self.quick = quick
        if reconcile is None:  # a handler object may carry its own reconcile method
            found = getattr(fn, "reconcile", None)
            reconcile = found if callable(found) else None
        self.reconcile = reconcile
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        )
        self.wants_ctx = _takes_two(fn)


def _takes_two(fn: Handler) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class HandlerRegistry:
    """Handlers by name.

    Args:
        allow: modules whose functions a spec may name as ``module:function``.
    """

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self._entries: dict[str, _Entry] = {}
        self._allow = tuple(allow)

    def register(self, name: str, fn: Handler | None = None, *, quick: bool = False,
                 reconcile: Reconciler | None = None) -> Any:
        """Register ``fn`` under ``name`` (usable as a decorator when ``fn`` is omitted).

        Args:
            name: the name a spec's ``run:`` uses.
            fn: a sync or async callable taking the item's input (and optionally an
                :class:`ItemContext`), returning a dict to merge into the case data, or None.
            quick: for a sync ``fn``: it returns at once (no I/O), so the engine calls it inline
                instead of in a worker thread. Never mark a blocking function quick.
            reconcile: ``reconcile(idempotency_key)``, sync or async, called when the engine
                resumes an item of this handler that was running when the engine stopped (its
                outcome is in doubt): return the output of the effect if it took place (the item
                completes with it instead of running again), or ``None`` to run the item again.
                Default: ``fn.reconcile`` when ``fn`` has one (a handler object), else none (the
                item runs again; an idempotent handler keyed on ``ctx.idempotency_key`` makes
                that safe).

        Raises:
            ConfigError: ``fn`` or ``reconcile`` is not callable, or ``name`` is empty.
        """
        if fn is None:
            def decorator(f: Handler) -> Handler:
                self.register(name, f, quick=quick, reconcile=reconcile)
                return f
            return decorator
        if not name or not isinstance(name, str):
            raise ConfigError(f"a handler name must be a non-empty string, not {name!r}")
        if not callable(fn):
            raise ConfigError(f"handler {name!r}: {fn!r} is not callable")
        if reconcile is not None and not callable(reconcile):
            raise ConfigError(f"handler {name!r}: reconcile={reconcile!r} is not callable")
        self._entries[name] = _Entry(fn, quick, reconcile)
        return fn

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def resolve(self, name: str) -> _Entry:
        """The handler for ``name``.

        Raises:
            ConfigError: nothing of that name is registered, installed or allowed.
        """
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        for ep in entry_points(group="yawlflow.handlers"):
            if ep.name == name:
                try:
                    fn = ep.load()
                except Exception as exc:
                    raise ConfigError(
                        f"handler {name!r}: entry point {ep.value!r} of distribution "
                        f"{getattr(ep.dist, 'name', '?')!r} failed to import: {exc}"
                    ) from exc
                return self._remember(name, fn)
        if ":" in name:
            module, _, attr = name.partition(":")
            if module in self._allow or any(module.startswith(a + ".") for a in self._allow):
                try:
                    fn = getattr(importlib.import_module(module), attr)
                except (ImportError, AttributeError) as exc:
                    raise ConfigError(f"handler {name!r}: cannot import it: {exc}") from exc
                return self._remember(name, fn)
            raise ConfigError(
                f"handler {name!r}: module {module!r} is not allowed; add it to the engine's configuration "
                f"(handlers: {{allow: [{module}]}}) or register the function with engine.handlers.register"
            )
        known = ", ".join(self.names()) or "none registered"
        raise ConfigError(
            f"no handler named {name!r} (registered: {known}); register it with "
            f"engine.handlers.register({name!r}, fn), install a 'yawlflow.handlers' entry point, "
            "or name an allowed 'module:function'"
        )

    def _remember(self, name: str, fn: Any) -> _Entry:
        if not callable(fn):
            raise ConfigError(f"handler {name!r} resolves to {fn!r}, which is not callable")
        entry = _Entry(fn, quick=False)
        self._entries[name] = entry
        return entry


AsyncHandler = Callable[..., Awaitable[Any]]
