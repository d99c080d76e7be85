"""``yf.run``: run one case to its end (or until it waits for external work), blocking."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

import anyio

from ._case import Result
from ._clock import Clock
from ._engine import Engine
from ._errors import ConfigError
from ._handlers import Handler
from ._spec._model import Spec

__all__ = ("run",)


def run(
    spec: Spec | str | os.PathLike[str],
    data: Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    handlers: Mapping[str, Handler] | None = None,
    config: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
    backend: str = "asyncio",
) -> Result:
    """Run a case of ``spec`` in a fresh in-memory engine and return its result.

    The result's status is ``completed``, ``failed`` or ``cancelled``; or ``waiting`` (with
    ``.offered``) when only external work could move the case on.

    Args:
        spec: a Spec, or a path to load.
        data: the case's initial data.
        seed: run deterministically (see :class:`Engine`).
        handlers: handlers by name.
        config: the engine's configuration.
        clock: the clock (default: the system clock).
        backend: ``asyncio`` (with uvloop when installed) or ``trio``.

    Raises:
        SpecError: ``spec`` is a path to a bad spec.
        ConfigError: bad handlers, configuration or backend.
        InvalidEventError: ``data`` is not a JSON object.
    """
    if backend not in ("asyncio", "trio"):
        raise ConfigError(f"backend {backend!r}: use 'asyncio' or 'trio'")
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        raise ConfigError("backend 'trio' needs trio, which is not installed: pip install 'yawlflow[trio]'")

    async def main() -> Result:
        async with Engine(seed=seed, handlers=handlers, config=config, clock=clock) as engine:
            case = await engine.start(spec, data)
            return await case._settled()

    options: dict[str, Any] = {}
    if backend == "asyncio" and importlib.util.find_spec("uvloop") is not None:
        options["use_uvloop"] = True
    return anyio.run(main, backend=backend, backend_options=options)
