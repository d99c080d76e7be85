"""The resilience wrapper: retry around (breaker, bulkhead, timeout) around one connector call.

Theory of operation. One attempt asks the breaker for a ticket first (an open breaker refuses
without queueing), then takes a bulkhead slot, then calls the connector under the policy's
timeout on the engine clock. Its outcome goes back to the breaker: a transient failure
(``is_retryable``) is a failure, a success a success, anything else (a 404, a ``ValueError``,
a cancellation) no verdict. Retries wrap whole attempts, so a call sleeping in its backoff holds
no bulkhead slot; each backoff is full jitter from an injected RNG, slept on the engine clock,
and never past the retry deadline. When an error says how long to wait (``retry_after``: an
open breaker's cool-down, a 429's ``Retry-After``), the next attempt waits at least that long.

Nothing here shields anything from cancellation: cancelling the caller's scope cancels the
call in flight (or the backoff sleep, or the wait in the bulkhead queue) at its next checkpoint.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from yawlflow._clock import Clock
from yawlflow._errors import ConnectorError
from yawlflow._handlers import ItemContext

from ._breaker import CircuitBreaker
from ._bulkhead import Bulkhead
from ._errors import ConnectorTimeoutError, is_retryable
from ._policy import Policy
from ._protocol import Connector
from ._retry import backoff_delay, should_retry
from ._timeout import Expired, within

__all__ = ("OnRetry", "call_with_resilience")

OnRetry = Callable[[int, BaseException, float], None]
"""Called before each retry with (the next attempt's number, the error, the delay in seconds)."""

_RNG = random.Random()  # noqa: S311 - jitter, not secrets; callers pass a seeded one for replayable runs


async def call_with_resilience(
    connector: Connector,
    config: msgspec.Struct,
    input: Mapping[str, Any],
    ctx: ItemContext,
    policy: Policy,
    clock: Clock,
    *,
    breaker: CircuitBreaker | None = None,
    bulkhead: Bulkhead | None = None,
    rng: random.Random | None = None,
    name: str | None = None,
    on_retry: OnRetry | None = None,
) -> dict[str, Any]:
    """Call ``connector`` once for an item, with timeout, retries, breaker and bulkhead.

    Args:
        connector: the connector instance.
        config: the task's validated config (an instance of ``connector.Config``).
        input: the item's input.
        ctx: the item's context (passed on unchanged to every attempt: same idempotency key).
        policy: ``timeout`` and ``retry`` apply here; ``breaker`` and ``bulkhead`` are read by
            whoever made the shared guards passed below.
        clock: the engine clock: timeouts, backoff sleeps and the deadline use it.
        breaker: the instance's shared circuit breaker, or ``None``.
        bulkhead: the instance's shared bulkhead, or ``None``.
        rng: the jitter's random source (seed it for a replayable run).
        name: the connector's name, for messages.
        on_retry: see :data:`OnRetry` (log or trace each retry here).

    Returns:
        The call's output as a dict (``{}`` for ``None``).

    Raises:
        ConnectorTimeoutError: the last attempt took longer than ``policy.timeout``.
        CircuitOpenError: the breaker refused the last attempt.
        BulkheadFullError: the bulkhead refused the last attempt.
        ConnectorError: the connector's own error, from the last attempt (its notes say how
            many attempts were made, and why no more).
        Exception: whatever else the connector raised on its last attempt, unchanged.
    """
    label = name or type(connector).__name__
    retry = policy.retry
    if retry.attempts == 1:
        return await _attempt(connector, config, input, ctx, policy, clock, breaker, bulkhead, label)
    rng = rng if rng is not None else _RNG
    deadline_ns = None if retry.deadline is None else clock.now_ns() + int(retry.deadline * 1e9)
    attempt = 1
    while True:
        try:
            return await _attempt(connector, config, input, ctx, policy, clock, breaker, bulkhead, label)
        except Exception as exc:
            if not should_retry(exc, retry):
                if attempt > 1:
                    exc.add_note(f"connector {label!r}: attempt {attempt} of {retry.attempts}; not retried: "
                                 "the connector or the retry policy's `on` says it would fail again")
                raise
            if attempt >= retry.attempts:
                exc.add_note(f"connector {label!r}: gave up after {attempt} attempts (retry.attempts)")
                raise
            delay = backoff_delay(retry, attempt, rng)
            retry_after = getattr(exc, "retry_after", None)  # an open breaker's, a 429's Retry-After
            if isinstance(retry_after, (int, float)) and retry_after > delay:
                delay = float(retry_after)
            wake_ns = clock.now_ns() + int(delay * 1e9)
            if deadline_ns is not None and wake_ns >= deadline_ns:
                exc.add_note(f"connector {label!r}: gave up after {attempt} attempt(s): the next would start "
                             f"past the retry deadline of {float(retry.deadline or 0):g}s")
                raise
            attempt += 1
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            await clock.sleep_until(wake_ns)


async def _attempt(connector: Connector, config: msgspec.Struct, input: Mapping[str, Any], ctx: ItemContext,
                   policy: Policy, clock: Clock, breaker: CircuitBreaker | None, bulkhead: Bulkhead | None,
                   label: str) -> dict[str, Any]:
    ticket = breaker.admit() if breaker is not None else None
    if bulkhead is not None:
        try:
            await bulkhead.acquire()
        except BaseException:
            if breaker is not None and ticket is not None:
                breaker.release(ticket)
            raise
    try:
        if policy.timeout is None:
            output = await connector.call(config, input, ctx)
        else:
            try:
                output = await within(clock, policy.timeout, lambda: connector.call(config, input, ctx))
            except Expired:
                raise ConnectorTimeoutError(
                    f"connector {label!r}: the call took longer than its timeout of {float(policy.timeout):g}s "
                    f"(task {ctx.task!r}, item {ctx.item_id}); raise the policy's timeout if the downstream is "
                    "just slow", connector=label,
                ) from None
    except Exception as exc:
        if breaker is not None and ticket is not None:
            if is_retryable(exc):
                breaker.failure(ticket, exc)
            else:
                breaker.release(ticket)
        raise
    except BaseException:
        if breaker is not None and ticket is not None:
            breaker.release(ticket)
        raise
    finally:
        if bulkhead is not None:
            bulkhead.release()
    if breaker is not None and ticket is not None:
        breaker.success(ticket)
    if output is None:
        return {}
    if not isinstance(output, Mapping):
        raise ConnectorError(
            f"connector {label!r} returned {type(output).__name__} for task {ctx.task!r}; "
            "a connector returns a mapping (merged into the case data) or None",
            connector=label,
        )
    return dict(output)
