"""Retry arithmetic: exponential backoff with full jitter, and whether a failure is retried.

Pure functions of the policy, the retry's number and an injected RNG, so the engine's own
item-level retries (``retry:`` on a task) can use the same arithmetic as the connector wrapper,
and tests can pin a seed.
"""

from __future__ import annotations

import random

from yawlflow._errors import ConnectorError

from ._errors import is_retryable
from ._policy import RetryPolicy

__all__ = ("backoff_ceiling", "backoff_delay", "should_retry")


def backoff_ceiling(retry: RetryPolicy, number: int) -> float:
    """The largest delay before retry ``number`` (1: the first retry): ``backoff * 2**(number-1)``, capped.

    Raises:
        ValueError: ``number`` is below 1.
    """
    if number < 1:
        raise ValueError(f"retry number {number}: retries count from 1")
    ceiling = float(retry.backoff) * 2.0 ** min(number - 1, 1023)
    if retry.max_backoff is not None:
        ceiling = min(ceiling, float(retry.max_backoff))
    return ceiling


def backoff_delay(retry: RetryPolicy, number: int, rng: random.Random) -> float:
    """The delay before retry ``number``: uniform in [0, ceiling] with full jitter, else the ceiling.

    Full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015) spreads the
    retries of many callers that failed together, so they do not come back together.
    """
    ceiling = backoff_ceiling(retry, number)
    return rng.uniform(0.0, ceiling) if retry.jitter == "full" else ceiling


def should_retry(exc: BaseException, retry: RetryPolicy) -> bool:
    """Whether ``exc`` is retried under ``retry`` (attempts and deadline aside).

    A ``ConnectorError`` whose connector said ``retryable=False`` never is: retrying a 404
    cannot help. Otherwise, when ``retry.on`` names error classes, ``exc`` is retried when a
    class in its MRO has one of those names; when it is empty, when :func:`is_retryable` says so.
    """
    if not isinstance(exc, Exception):
        return False  # cancellation, KeyboardInterrupt, SystemExit: never
    if isinstance(exc, ConnectorError) and not exc.retryable:
        return False
    if retry.on:
        return any(cls.__name__ in retry.on for cls in type(exc).__mro__)
    return is_retryable(exc)
