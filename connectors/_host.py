"""The connector host: an engine's connector instances, their shared guards, health checks and lifetime.

One host per engine. A connector name gets one instance, made and opened (``open(env)``, the
pool hook) on first use, with one circuit breaker and one bulkhead that every task calling that
name shares, and, where the policy asks, a health-check task that feeds the breaker. Closing the
host cancels the health checks and closes every instance (``close()``), newest first.

The engine configuration's ``connectors`` section configures it, per name::

    connectors:
      http:
        settings: {max_connections: 50}           # keyword arguments of the connector's class
        timeout: 10s                              # the Policy's fields (see yawlflow.connectors.Policy)
        retry: {attempts: 3, backoff: 200ms, max_backoff: 5s, deadline: 30s}
        breaker: {window: 20, min_calls: 10, failure_rate: 0.5, cool_down: 30s, probes: 1}
        bulkhead: {max_concurrent: 50, queue: 500}
        health: {interval: 30s, timeout: 5s}
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup

from yawlflow._clock import Clock, SystemClock
from yawlflow._errors import ConfigError, ConnectorError
from yawlflow._handlers import ItemContext

from ._breaker import BreakerState, CircuitBreaker
from ._bulkhead import Bulkhead
from ._errors import ConnectorConfigError
from ._policy import HealthPolicy, Policy, parse_policy
from ._protocol import Connector, ConnectorEnv, Health
from ._registry import Registry
from ._registry import registry as default_registry
from ._resilience import OnRetry, call_with_resilience
from ._timeout import Expired, within

__all__ = ("ConnectorHost",)

_log = logging.getLogger("yawlflow.connectors")

BreakerListener = Callable[[str, BreakerState, BreakerState, str], None]
"""Called with (connector name, old state, new state, reason) on every breaker transition."""


class _Slot:
    __slots__ = ("breaker", "bulkhead", "connector", "name", "policy")

    def __init__(self, name: str, connector: Connector, policy: Policy, breaker: CircuitBreaker | None,
                 bulkhead: Bulkhead | None) -> None:
        self.name = name
        self.connector = connector
        self.policy = policy
        self.breaker = breaker
        self.bulkhead = bulkhead


def _log_breaker(name: str, old: BreakerState, new: BreakerState, reason: str) -> None:
    level = logging.WARNING if new == "open" else logging.INFO
    _log.log(level, "connector %s: circuit %s -> %s: %s", name, old, new, reason,
             extra={"connector": name, "breaker_state": new})


class ConnectorHost:
    """An engine's connectors (see the module docstring). Use as ``async with ConnectorHost(...) as host``.

    Args:
        registry: where names resolve (default: the process-wide registry).
        clock: the engine clock (default: the system clock).
        config: the engine configuration's ``connectors`` section: per name, ``settings`` (the
            class's keyword arguments) and the policy's fields.
        rng: the retry jitter's random source (seed it for replayable runs).
        on_breaker_change: see :data:`BreakerListener` (default: log it).

    Raises:
        ConnectorConfigError: a policy in ``config`` does not validate (the error names it).
        ConfigError: ``config`` is not a mapping of mappings.
    """

    def __init__(self, *, registry: Registry | None = None, clock: Clock | None = None,
                 config: Mapping[str, Any] | None = None, rng: random.Random | None = None,
                 on_breaker_change: BreakerListener | None = None) -> None:
        self.registry = registry if registry is not None else default_registry
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not secrets
        self._on_breaker_change = on_breaker_change or _log_breaker
        self._settings: dict[str, dict[str, Any]] = {}
        self._layers: dict[str, dict[str, Any]] = {}
        for name, section in (config or {}).items():
            where = f"config.connectors.{name}"
            if not isinstance(section, Mapping):
                raise ConfigError(f"{where}: expected a mapping (settings and policy fields), "
                                  f"got {type(section).__name__}")
            layer = dict(section)
            settings = layer.pop("settings", None) or {}
            if not isinstance(settings, Mapping):
                raise ConfigError(f"{where}.settings: expected a mapping of the connector's keyword arguments")
            parse_policy(layer, where, connector=name)  # its errors now, not at the first call
            self._settings[name] = dict(settings)
            self._layers[name] = layer
        self._slots: dict[str, _Slot] = {}
        self._opening: dict[str, anyio.Lock] = {}
        self._tg: TaskGroup | None = None
        self._closed = False

    # -- lifetime ------------------------------------------------------------------------------
    async def __aenter__(self) -> ConnectorHost:
        if self._tg is not None or self._closed:
            raise ConfigError("a ConnectorHost is entered once: make a new one")
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        tg, self._tg = self._tg, None
        self._closed = True
        if tg is not None:
            tg.cancel_scope.cancel()
            await tg.__aexit__(exc_type, exc, tb)
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connector instance, newest first (each ``close()`` runs even if one before failed).

        Raises:
            ConnectorError: a ``close()`` failed (the first failure; the rest are logged).
        """
        first: BaseException | None = None
        failed = ""
        slots, self._slots = list(self._slots.values()), {}
        with anyio.CancelScope(shield=True):
            for slot in reversed(slots):
                close = getattr(slot.connector, "close", None)
                if close is None:
                    continue
                try:
                    await close()
                except Exception as exc:
                    _log.exception("connector %s: close() failed", slot.name)
                    if first is None:
                        first, failed = exc, slot.name
        if first is not None:
            raise ConnectorError(f"connector {failed!r}: close() failed: {type(first).__name__}: {first}",
                                 connector=failed) from first

    # -- the engine's side ---------------------------------------------------------------------
    def validate_config(self, name: str, raw: object, where: str = "$") -> msgspec.Struct:
        """Validate a task's config for ``name`` (see :meth:`Registry.validate_config`)."""
        return self.registry.validate_config(name, raw, where)

    def policy(self, name: str, task: object = None, where: str = "$.policy") -> Policy:
        """The policy of a call to ``name``: the class's default, the configuration's, then ``task``'s layer.

        Args:
            name: the connector's name.
            task: the task's layer (``timeout`` and ``retry`` only), or ``None``.
            where: the task layer's element path, for errors.

        Raises:
            ConnectorConfigError: a layer does not validate, or the task's sets a shared guard.
            UnknownConnectorError, PluginError, IncompatiblePluginError: ``name`` does not resolve.
        """
        cls = self.registry.connector_class(name)
        policy = parse_policy(getattr(cls, "policy", None), f"{cls.__qualname__}.policy", connector=name)
        policy = parse_policy(self._layers.get(name), f"config.connectors.{name}", base=policy, connector=name)
        return parse_policy(task, where, base=policy, task=True, connector=name)

    async def call(self, name: str, config: object, input: Mapping[str, Any], ctx: ItemContext, *,
                   policy: Policy | Mapping[str, Any] | None = None, on_retry: OnRetry | None = None) -> dict[str, Any]:
        """Call connector ``name`` for one item, through its breaker, bulkhead, timeout and retries.

        Args:
            name: the connector's name.
            config: the task's config, validated (a ``Config``) or as written (validated here).
            input: the item's input.
            ctx: the item's context.
            policy: the task's layer (a mapping), or a whole :class:`Policy` from :meth:`policy`
                (its ``timeout`` and ``retry`` apply; breaker and bulkhead are the instance's).
            on_retry: called before each retry (see :data:`OnRetry`).

        Returns:
            The output, a dict.

        Raises:
            ConfigError: the host is not open.
            ConnectorError: the call failed (see :func:`call_with_resilience`), or the connector
                cannot be made (unknown, broken plugin, bad settings).
            Exception: what the connector raised, unchanged.
        """
        slot = self._slots.get(name) or await self._open(name)
        if not isinstance(config, msgspec.Struct):
            config = self.validate_config(name, config, "$.config")
        effective = policy if isinstance(policy, Policy) else (
            slot.policy if policy is None else parse_policy(policy, "$.policy", base=slot.policy, task=True,
                                                            connector=name)
        )
        return await call_with_resilience(
            slot.connector, config, input, ctx, effective, self.clock, breaker=slot.breaker,
            bulkhead=slot.bulkhead, rng=self._rng, name=name, on_retry=on_retry,
        )

    async def instance(self, name: str) -> Connector:
        """The (opened) instance of connector ``name``, made on first use.

        Raises:
            ConfigError: the host is not open.
            ConnectorError: as :meth:`call`.
        """
        slot = self._slots.get(name) or await self._open(name)
        return slot.connector

    def breaker(self, name: str) -> CircuitBreaker | None:
        """The breaker of ``name``'s instance (``None`` before its first use, or without one)."""
        slot = self._slots.get(name)
        return slot.breaker if slot is not None else None

    def bulkhead(self, name: str) -> Bulkhead | None:
        """The bulkhead of ``name``'s instance (``None`` before its first use, or without one)."""
        slot = self._slots.get(name)
        return slot.bulkhead if slot is not None else None

    async def check_health(self, name: str) -> Health:
        """Run ``name``'s health check now and feed its breaker (a check that raises or times out is unhealthy).

        Raises:
            ConfigError: the host is not open.
            ConnectorError: as :meth:`instance`.
        """
        slot = self._slots.get(name) or await self._open(name)
        return await self._check(slot)

    async def reconcile(self, name: str, key: str) -> dict[str, Any] | None:
        """Ask ``name`` for the output of an earlier call with idempotency key ``key``.

        Returns:
            That call's output, or ``None`` when the connector has no ``reconcile`` or no such
            call took effect (the engine may call again).

        Raises:
            ConfigError: the host is not open.
            ConnectorError: as :meth:`instance`, or from the connector's ``reconcile``.
        """
        connector = await self.instance(name)
        reconcile = getattr(connector, "reconcile", None)
        if reconcile is None:
            return None
        found = await reconcile(key)
        return None if found is None else dict(found)

    # -- inside --------------------------------------------------------------------------------
    async def _open(self, name: str) -> _Slot:
        if self._tg is None:
            raise ConfigError("the ConnectorHost is not open: use `async with ConnectorHost(...) as host:`")
        lock = self._opening.setdefault(name, anyio.Lock())
        async with lock:
            slot = self._slots.get(name)
            if slot is not None:
                return slot
            found = self.registry.resolve(name)
            policy = self.policy(name)
            settings = self._settings.get(name, {})
            connector: Connector
            if isinstance(found, type):
                try:
                    connector = found(**settings)
                except TypeError as exc:
                    raise ConnectorConfigError(
                        f"config.connectors.{name}.settings", f"{found.__qualname__}() refused them: {exc}",
                        "settings are the keyword arguments of the connector's class", connector=name,
                    ) from exc
            else:
                if settings:
                    raise ConnectorConfigError(
                        f"config.connectors.{name}.settings", "this connector was registered as a ready instance",
                        "register its class instead, or drop the settings", connector=name,
                    )
                connector = found
            opener = getattr(connector, "open", None)
            if opener is not None:
                await opener(ConnectorEnv(name=name, clock=self.clock))
            breaker = None
            if policy.breaker is not None:
                breaker = CircuitBreaker(policy.breaker, self.clock, name=name,
                                         on_change=lambda old, new, why: self._on_breaker_change(name, old, new, why))
            bulkhead = Bulkhead(policy.bulkhead, self.clock, name=name) if policy.bulkhead is not None else None
            slot = _Slot(name, connector, policy, breaker, bulkhead)
            self._slots[name] = slot
            if policy.health is not None:
                self._tg.start_soon(self._monitor, slot, policy.health, name=f"yawlflow.connectors health {name}")
            return slot

    async def _check(self, slot: _Slot) -> Health:
        timeout = slot.policy.health.timeout if slot.policy.health is not None else 5.0
        health: object
        try:
            health = await within(self.clock, timeout, slot.connector.health)
        except Expired:
            health = Health(ok=False, detail=f"health() took longer than {float(timeout):g}s")
        except Exception as exc:
            health = Health(ok=False, detail=f"health() raised {type(exc).__name__}: {exc}")
        if not isinstance(health, Health):
            health = Health(ok=False, detail=f"health() returned {type(health).__name__}, not a Health")
        if slot.breaker is not None:
            slot.breaker.report_health(health)
        return health

    async def _monitor(self, slot: _Slot, health_policy: HealthPolicy) -> None:
        interval_ns = int(health_policy.interval * 1e9)
        while True:
            await self.clock.sleep_until(self.clock.now_ns() + interval_ns)
            health = await self._check(slot)
            if not health.ok:
                _log.warning("connector %s: unhealthy: %s", slot.name, health.detail,
                             extra={"connector": slot.name})
