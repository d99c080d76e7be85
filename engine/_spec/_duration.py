"""Durations as written in specs ("10s", "100ms", "1h30m", "PT30S") to integer nanoseconds.

Two spellings are accepted: a run of number-unit pairs (``ns us µs ms s m h d``, decimals
allowed: ``1.5s``, ``1h30m``), and ISO 8601 durations with weeks, days, hours, minutes and
seconds (``PT30S``, ``P1DT2H``). Years and months are refused: they have no fixed length.
Arithmetic is exact (``decimal``), so ``0.1s`` is 100,000,000 ns, not a float's neighbour.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

__all__ = ("DURATION_HINT", "parse_duration")

DURATION_HINT = "write e.g. '10s', '100ms', '1h30m' (units: ns, us, ms, s, m, h, d) or 'PT30S'"

_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}
_NUMBER = r"\d+(?:\.\d+)?"
_PAIR = re.compile(rf"({_NUMBER})(ns|us|µs|ms|s|m|h|d)")
_SIMPLE = re.compile(r"(\d+)(ns|us|µs|ms|s|m|h|d)\Z")
_PAIRS = re.compile(rf"(?:{_NUMBER}(?:ns|us|µs|ms|s|m|h|d))+\Z")
_ISO_NUMBER = r"\d+(?:[.,]\d+)?"
_ISO = re.compile(
    rf"P(?:(?P<w>{_ISO_NUMBER})W)?(?:(?P<d>{_ISO_NUMBER})D)?"
    rf"(?:T(?:(?P<h>{_ISO_NUMBER})H)?(?:(?P<m>{_ISO_NUMBER})M)?(?:(?P<s>{_ISO_NUMBER})S)?)?\Z"
)
_ISO_NS = {"w": 7 * _NS["d"], "d": _NS["d"], "h": _NS["h"], "m": _NS["m"], "s": _NS["s"]}
_MAX_NS = 2**63 - 1


@lru_cache(maxsize=1024)
def parse_duration(text: str) -> int:
    """Parse a duration into nanoseconds.

    Args:
        text: ``"10s"``, ``"100ms"``, ``"1h30m"``, ``"PT30S"``, ``"P1DT2H"`` ...

    Returns:
        The duration in whole nanoseconds (fractions of a nanosecond are dropped).

    Raises:
        ValueError: ``text`` is not a duration; the message says why.
    """
    simple = _SIMPLE.match(text)
    total: Decimal | int
    if simple is not None:  # the common case, without Decimal
        total = int(simple.group(1)) * _NS[simple.group(2)]
    elif _PAIRS.match(text):
        total = sum(Decimal(n) * _NS[unit] for n, unit in _PAIR.findall(text))
    elif text[:1] in ("P", "p"):
        total = _parse_iso(text.upper())
    else:
        raise ValueError(f"not a duration: {text!r}")
    if total > _MAX_NS:
        raise ValueError(f"duration {text!r} is too long (at most about 292 years)")
    return int(total)


def _parse_iso(text: str) -> Decimal:
    match = _ISO.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        if re.match(r"P[^T]*[YM]", text):
            raise ValueError(f"ISO 8601 duration {text!r} uses years or months, which have no fixed length")
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parts = match.groupdict().items()
    return sum(
        (Decimal(value.replace(",", ".")) * _ISO_NS[unit] for unit, value in parts if value),
        Decimal(0),
    )
