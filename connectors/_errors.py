"""The connector errors, all under :class:`yawlflow.ConnectorError`, and how a failure is classified.

Split by blame, as the engine's tree is: a bad config or policy (the spec's or the engine
configuration's author), an unknown or broken plugin (the installation), and a failed call (the
downstream, or the resilience layer refusing to call it). Every failure carries the connector's
verdict, ``retryable``: would the same call succeed if made again later?
"""

from __future__ import annotations

from yawlflow._errors import ConnectorError

__all__ = (
    "BulkheadFullError",
    "CircuitOpenError",
    "ConnectorConfigError",
    "ConnectorTimeoutError",
    "IncompatiblePluginError",
    "PluginError",
    "UnknownConnectorError",
    "is_retryable",
)


class ConnectorConfigError(ConnectorError):
    """A connector's config, or a resilience policy, does not validate.

    The message reads like a spec problem: ``PATH: REASON (HINT)``, so the spec loader can turn
    it into a :class:`yawlflow.Problem` with the file and line it knows.

    Attributes:
        path: the element path of the bad value, e.g. ``$.nets.main.tasks.fetch.run.config.url``.
        reason: what is wrong.
        hint: how to fix it.
        below: the same place as keys and indexes under the path the validator was given
            (``("headers", "Accept")`` → ``("headers",)``; a mapping's key msgspec does not name
            ends it), for a loader that locates problems by key path.
    """

    def __init__(self, path: str, reason: str, hint: str = "", *, connector: str | None = None,
                 below: tuple[str | int, ...] = ()) -> None:
        text = f"{path}: {reason}" + (f" ({hint})" if hint else "")
        super().__init__(text, retryable=False, connector=connector)
        self.path = path
        self.reason = reason
        self.hint = hint
        self.below = below


class UnknownConnectorError(ConnectorError):
    """No connector of that name is registered, built in, or installed."""


class PluginError(ConnectorError):
    """An installed connector plugin cannot be used (it fails to import, or is not a connector).

    Attributes:
        distribution: the name of the distribution (the ``pip install`` name) that provides it.
    """

    def __init__(self, message: str, *, connector: str | None = None, distribution: str | None = None) -> None:
        super().__init__(message, retryable=False, connector=connector)
        self.distribution = distribution


class IncompatiblePluginError(PluginError):
    """A plugin was built for a connector API or a yawlflow version that this yawlflow is not."""


class ConnectorTimeoutError(ConnectorError):
    """A call took longer than its timeout (the engine clock's, or the transport's)."""

    def __init__(self, message: str, *, connector: str | None = None) -> None:
        super().__init__(message, retryable=True, connector=connector)


class CircuitOpenError(ConnectorError):
    """The connector's circuit breaker is open (or half-open and busy probing): the call was not made.

    Attributes:
        retry_after: seconds until the breaker lets a probe through, where known.
    """

    def __init__(self, message: str, *, connector: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, retryable=True, connector=connector)
        self.retry_after = retry_after


class BulkheadFullError(ConnectorError):
    """The connector's bulkhead is full (all slots busy, and its queue full or waited out)."""

    def __init__(self, message: str, *, connector: str | None = None) -> None:
        super().__init__(message, retryable=True, connector=connector)


def is_retryable(exc: BaseException) -> bool:
    """The verdict on a failure: would the same call succeed if made again later?

    A :class:`yawlflow.ConnectorError` carries its connector's verdict (``retryable``). Other
    exceptions: a :class:`TimeoutError` or a :class:`ConnectionError` (reset, refused, aborted)
    is transient; anything else (a ``ValueError`` from a python connector, say) is not.
    """
    if isinstance(exc, ConnectorError):
        return exc.retryable
    return isinstance(exc, (TimeoutError, ConnectionError))
