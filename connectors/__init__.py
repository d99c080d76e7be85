"""Connectors: the protocol, the registry, resilience (timeout, retry, breaker, bulkhead) and built-ins."""

__all__: tuple[str, ...] = ()
