"""The resilience policy: what wraps every connector call, as frozen Structs, and how layers merge.

A policy is written in layers, each overriding the one before field by field: the connector's
own default (its ``policy`` class attribute), the engine configuration's
``connectors: {NAME: {...}}``, and the task's. ``timeout`` and ``retry`` may be set in every
layer. ``breaker``, ``bulkhead`` and ``health`` guard a downstream, so they belong to the
connector instance that every task shares: a task that sets them is refused.

Durations are numbers of seconds or spec durations (``"100ms"``, ``"30s"``, ``"PT1M"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from ._convert import Seconds, convert
from ._errors import ConnectorConfigError

__all__ = (
    "BreakerPolicy",
    "BulkheadPolicy",
    "HealthPolicy",
    "Policy",
    "RetryPolicy",
    "parse_policy",
)


class _Frozen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class RetryPolicy(_Frozen, frozen=True):
    """Retrying a failed call inside one item attempt.

    Attributes:
        attempts: calls in all, at least 1 (1: no retry).
        backoff: the ceiling of the first retry's delay; each retry doubles it.
        max_backoff: the largest ceiling (``None``: no cap).
        jitter: ``full``: each delay is uniform in [0, ceiling] (AWS's "full jitter");
            ``none``: each delay is the ceiling.
        deadline: no new attempt starts this long after the first began, and no backoff sleeps
            past it (``None``: no deadline).
        on: error class names (any class in the error's MRO) that are retried; empty: the
            connector's verdict decides (:func:`~yawlflow.connectors.is_retryable`). A
            ``ConnectorError`` with ``retryable=False`` is never retried.
    """

    attempts: int = 1
    backoff: Seconds = Seconds(0.1)
    max_backoff: Seconds | None = None
    jitter: Literal["full", "none"] = "full"
    deadline: Seconds | None = None
    on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts is {self.attempts}; it counts every call, so it is at least 1")


class BreakerPolicy(_Frozen, frozen=True):
    """A circuit breaker over the last ``window`` calls of a connector instance.

    Closed: calls go through, their outcomes fill the window. Once the window holds at least
    ``min_calls`` outcomes and the share of failures reaches ``failure_rate``, it opens: calls
    fail at once with ``CircuitOpenError``. After ``cool_down`` it is half-open: ``probes``
    calls go through; when all succeed it closes (the window starts empty), when one fails it
    opens again. Only transient failures (``is_retryable``) count as failures: a 404 shows the
    downstream answering.

    Attributes:
        window: how many of the latest outcomes are kept.
        min_calls: outcomes needed before the rate is judged.
        failure_rate: the share of failures that opens it, in (0, 1].
        cool_down: how long it stays open.
        probes: trial calls let through when half-open (at most this many at once).
    """

    window: int = 20
    min_calls: int = 10
    failure_rate: float = 0.5
    cool_down: Seconds = Seconds(30.0)
    probes: int = 1

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_calls < 1 or self.probes < 1:
            raise ValueError("window, min_calls and probes must each be at least 1")
        if self.min_calls > self.window:
            raise ValueError(f"min_calls ({self.min_calls}) exceeds window ({self.window}): it could never open")
        if not 0 < self.failure_rate <= 1:
            raise ValueError(f"failure_rate is {self.failure_rate}; write a share in (0, 1], e.g. 0.5")


class BulkheadPolicy(_Frozen, frozen=True):
    """At most ``max_concurrent`` calls at once per connector instance; a bounded queue for the rest.

    Attributes:
        max_concurrent: calls in flight at once.
        queue: calls that may wait for a slot; one more is rejected at once (0: no waiting).
        queue_timeout: the longest a call waits for a slot before it is rejected (``None``: no
            limit).
    """

    max_concurrent: int = 100
    queue: int = 10_000
    queue_timeout: Seconds | None = None

    def __post_init__(self) -> None:
        if self.max_concurrent < 1 or self.queue < 0:
            raise ValueError("max_concurrent must be at least 1, and queue at least 0")


class HealthPolicy(_Frozen, frozen=True):
    """Health checks of a connector instance, run by its host, feeding its breaker.

    Attributes:
        interval: time between checks.
        timeout: a check that takes longer counts as unhealthy.
    """

    interval: Seconds = Seconds(30.0)
    timeout: Seconds = Seconds(5.0)


class Policy(_Frozen, frozen=True):
    """Everything that wraps a connector call (see the module docstring for the layers).

    Attributes:
        timeout: the limit of one call, on the engine clock (``None``: none here; the task's own
            ``timeout`` still applies).
        retry: retries inside one item attempt (default: none).
        breaker: the instance's circuit breaker (``None``: none).
        bulkhead: the instance's bulkhead (``None``: none).
        health: periodic health checks feeding the breaker (``None``: none).
    """

    timeout: Seconds | None = None
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy | None = BreakerPolicy()
    bulkhead: BulkheadPolicy | None = BulkheadPolicy()
    health: HealthPolicy | None = None


_SHARED = ("breaker", "bulkhead", "health")


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_policy(raw: object, where: str, *, base: Policy | None = None, task: bool = False,
                 connector: str | None = None) -> Policy:
    """Validate a policy layer and lay it over ``base``.

    Args:
        raw: the layer as written: a mapping of ``Policy`` fields (nested mappings merge field
            by field into ``base``'s; ``breaker: null`` turns the breaker off), or ``None``.
        where: its element path, e.g. ``config.connectors.http`` or ``$.nets.main.tasks.t.run.policy``.
        base: the layers below (default: ``Policy()``).
        task: a task's layer, which may set only ``timeout`` and ``retry``.
        connector: the connector's name, for the error.

    Returns:
        The merged policy.

    Raises:
        ConnectorConfigError: the layer does not validate; the error names the field and the fix.
    """
    base = base if base is not None else Policy()
    if raw is None:
        return base
    if isinstance(raw, Policy):
        raw = msgspec.to_builtins(raw, enc_hook=float)
    if not isinstance(raw, Mapping):
        raise ConnectorConfigError(where, f"expected a mapping of policy fields, got {type(raw).__name__}",
                                   "e.g. {timeout: 10s, retry: {attempts: 3}}", connector=connector)
    if task:
        for key in _SHARED:
            if key in raw:
                name = connector or "NAME"
                raise ConnectorConfigError(
                    f"{where}.{key}", f"{key} is shared by every task that uses the connector",
                    f"set it in the engine configuration: connectors: {{{name}: {{{key}: ...}}}}",
                    connector=connector,
                )
    retry = raw.get("retry")
    if isinstance(retry, Mapping) and True in retry and "on" not in retry:
        # YAML 1.1 (PyYAML's safe_load) reads the key `on` as the boolean true
        raw = {**raw, "retry": {("on" if k is True else k): v for k, v in retry.items()}}
    merged = _merge(msgspec.to_builtins(base, enc_hook=float), raw)
    return convert(merged, Policy, where, what="a resilience policy", connector=connector)
