"""The ``python`` connector: calls an allow-listed Python function, named ``package.module:function``.

The function is found by the engine's handler rule (``yawlflow.HandlerRegistry``): its module must
be one the connector's ``allow`` setting lists (or a submodule of one), so a spec can call only
code the engine's operator allowed. A sync function runs in a worker thread (abandoned on
cancellation), an async one on the event loop; a function with a second parameter gets the
item's context. Nothing is imported before the first call.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

import anyio
import msgspec

from yawlflow._errors import ConfigError, ConnectorError
from yawlflow._handlers import HandlerRegistry, ItemContext

from ._protocol import API_VERSION, Health, Output

__all__ = ("PythonConnector",)

_REFERENCE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*\Z")


class PythonConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The ``python`` connector's config.

    Attributes:
        function: ``package.module:function``; the module must be allowed.
    """

    function: str

    def __post_init__(self) -> None:
        if not _REFERENCE.match(self.function):
            raise ValueError(f"function {self.function!r} is not 'package.module:function'")


class PythonConnector:
    """Calls an allow-listed function (see the module docstring).

    Args:
        allow: modules whose functions a config may name (submodules included); the engine
            passes its ``handlers: {allow: [...]}``.
    """

    yawlflow_api = API_VERSION
    Config = PythonConfig

    def __init__(self, *, allow: Iterable[str] = ()) -> None:
        self.allow = tuple(allow)
        self._functions = HandlerRegistry(allow=self.allow)

    async def call(self, config: PythonConfig, input: Mapping[str, Any], ctx: ItemContext) -> Output:
        """Call ``config.function`` with the input (and the context, if it takes two parameters).

        Raises:
            ConnectorError: the function is not allowed or cannot be imported (not retryable).
            Exception: what the function raised, unchanged (a ``ConnectionError`` or
                ``TimeoutError`` counts as transient, anything else not).
        """
        try:
            entry = self._functions.resolve(config.function)
        except ConfigError as exc:
            raise ConnectorError(f"connector 'python': {exc}", connector="python") from None
        args: tuple[Any, ...] = (dict(input), ctx) if entry.wants_ctx else (dict(input),)
        if entry.is_async:
            result = await entry.fn(*args)
        else:
            result = await anyio.to_thread.run_sync(functools.partial(entry.fn, *args), abandon_on_cancel=True)
        if result is not None and not isinstance(result, Mapping):
            raise ConnectorError(
                f"connector 'python': {config.function} returned {type(result).__name__}; return a dict or None",
                connector="python",
            )
        return result

    async def health(self) -> Health:
        """Always healthy: the functions run in this process."""
        return Health(ok=True, detail="in-process")
