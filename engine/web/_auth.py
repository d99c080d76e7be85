"""API keys (stored as sha256 hashes, each with a role and a tenant) and the per-key rate limit."""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import ConfigError

__all__ = ("ROLES", "ApiKey", "Keys", "TokenBucket", "hash_key", "load_keys")

ROLES = ("viewer", "operator", "admin")
"""The roles, weakest first: each can do what the ones before it can."""


def hash_key(plain: str) -> str:
    """The sha256 hex digest a keys file keeps for the API key ``plain`` (never the key itself)."""
    return hashlib.sha256(plain.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key as the server knows it.

    Attributes:
        name: the key's name (for logs and messages; never secret).
        role: viewer, operator or admin.
        tenant: the tenant every request made with the key is scoped to.
    """

    name: str
    role: str
    tenant: str

    def may(self, role: str) -> bool:
        """Whether this key's role is at least ``role``."""
        return ROLES.index(self.role) >= ROLES.index(role)


Keys = dict[str, ApiKey]
"""Keys by the sha256 hex digest of the plain key."""


def load_keys(keys: Mapping[str, Any] | str | os.PathLike[str]) -> Keys:
    """Read API keys from a mapping or a YAML file (``keys.yaml``).

    The shape, in both cases: ``{keys: {NAME: {sha256: HEX, role: viewer|operator|admin,
    tenant: TENANT}}}`` (the outer ``keys:`` may be left out of a mapping).

    Raises:
        ConfigError: the file cannot be read, or an entry is malformed (the message names it).
    """
    source = "keys"
    if isinstance(keys, (str, os.PathLike)):
        import yaml

        source = os.fspath(keys)
        try:
            with open(keys, encoding="utf-8") as handle:
                raw = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{source}: cannot read the keys file: {exc}") from None
    else:
        raw = keys
    if isinstance(raw, Mapping) and set(raw) == {"keys"}:
        raw = raw["keys"]
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping of key names to {{sha256, role, tenant}}")
    out: Keys = {}
    for name, entry in raw.items():
        where = f"{source}: keys.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a mapping with sha256, role and tenant")
        digest, role, tenant = entry.get("sha256"), entry.get("role"), entry.get("tenant")
        if "key" in entry or "plain" in entry:
            raise ConfigError(f"{where}: holds a plain key: keep only its sha256 (yawlflow.web.hash_key)")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"{where}.sha256: expected 64 lowercase hex digits (sha256 of the key)")
        if role not in ROLES:
            raise ConfigError(f"{where}.role: expected one of {', '.join(ROLES)}, not {role!r}")
        if not isinstance(tenant, str) or not tenant:
            raise ConfigError(f"{where}.tenant: expected a non-empty string")
        if digest in out:
            raise ConfigError(f"{where}: the same key as keys.{out[digest].name}")
        out[digest] = ApiKey(name=str(name), role=role, tenant=tenant)
    return out


class TokenBucket:
    """A token bucket per key: ``burst`` requests at once, refilled at ``per_second``.

    Args:
        burst: the bucket's size (``RateLimit-Limit``).
        per_second: tokens added per second.
        clock: seconds, monotonic (default ``time.monotonic``; tests pass a fake one).
    """

    def __init__(self, burst: int, per_second: float, clock: Callable[[], float] | None = None) -> None:
        if burst < 1 or per_second <= 0:
            raise ConfigError(f"rate limit: burst must be >= 1 and per_second > 0, not {burst}, {per_second}")
        self.burst = burst
        self.per_second = per_second
        self._clock = clock or time.monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def take(self, who: str) -> tuple[bool, dict[str, str]]:
        """Spend one token of ``who``'s bucket: whether it was there, and the ``RateLimit-*`` headers."""
        now = self._clock()
        tokens, when = self._buckets.get(who, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - when) * self.per_second)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[who] = (tokens, now)
        reset = math.ceil((self.burst - tokens) / self.per_second) if tokens < self.burst else 0
        headers = {
            "RateLimit-Limit": str(self.burst),
            "RateLimit-Remaining": str(math.floor(tokens)),
            "RateLimit-Reset": str(reset),
        }
        if not allowed:
            headers["Retry-After"] = str(math.ceil((1.0 - tokens) / self.per_second))
        return allowed, headers
