"""The hardened XML entry point (issue 9): each attack refused in under 100 ms.

Each row times the refusal of one attack payload by ``yawlflow._xml.parse`` against parsing a
real YAWL specification in the same run: the largest of the corpus (``orderfulfillment.yawl``,
264 KB) when ``../shared/corpora/yawl`` is there, else a generated 64-task net of about the same
shape. The goal is the issue's absolute bound (< 100 ms); the ratio says how many times cheaper
than an honest parse a refusal is.

* XXE: an external entity reading ``/etc/passwd``;
* billion laughs: ten levels of ten-fold entity expansion (10**9 strings from 1 KB);
* quadratic blow-up: a 100 KB entity referenced 10,000 times (1 GB from 130 KB);
* deep nesting: 10,000 levels of ``<a>`` (70 KB).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _kit import Report, Row, compare, fmt_ratio, fmt_time, verdict_at_most

from yawlflow._xml import XmlError, parse

GOAL_S = 0.100
CORPUS_SPEC = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "corpora"
    / "yawl"
    / "yawlfoundation-yawl"
    / "exampleSpecs"
    / "orderfulfillment"
    / "orderfulfillment.yawl"
)


def xxe() -> bytes:
    return b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n<r>&secret;</r>\n'


def billion_laughs() -> bytes:
    lines = [b'<!ENTITY lol0 "lol">']
    lines += [b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10)]
    return b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n' + b"\n".join(lines) + b"\n]>\n<lolz>&lol9;</lolz>\n"


def quadratic_blowup() -> bytes:
    return b'<!DOCTYPE r [<!ENTITY a "' + b"x" * 100_000 + b'">]>\n<r>' + b"&a;" * 10_000 + b"</r>"


def deep_nesting() -> bytes:
    return b"<a>" * 10_000 + b"</a>" * 10_000


def honest_spec() -> tuple[str, bytes]:
    """A real specification to parse as the baseline."""
    if CORPUS_SPEC.is_file():
        return "orderfulfillment.yawl (264 KB)", CORPUS_SPEC.read_bytes()
    tasks = "".join(
        f'<task id="t{i}"><flowsInto><nextElementRef id="t{i + 1}"/><predicate>/Net/x = {i}</predicate>'
        f'</flowsInto><join code="xor"/><split code="xor"/></task>'
        for i in range(64)
    )
    body = f'<specificationSet xmlns="http://www.yawlfoundation.org/yawlschema"><net>{tasks}</net></specificationSet>'
    return "a generated 64-task net", body.encode("utf-8")


ATTACKS: dict[str, Callable[[], bytes]] = {
    "XXE": xxe,
    "billion laughs": billion_laughs,
    "quadratic blow-up": quadratic_blowup,
    "10,000-deep nesting": deep_nesting,
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_refused_fast(benchmark: Any, report: Report, rounds: int, attack: str) -> None:
    payload = ATTACKS[attack]()
    label, spec = honest_spec()

    def refuse() -> None:
        try:
            parse(payload, source="attack.yawl")
        except XmlError:
            return
        raise AssertionError(f"{attack} was not refused")

    def honest() -> None:
        parse(spec, source="spec.yawl")

    ours, base = compare(benchmark, refuse, {"honest": honest}, rounds)
    report.add(
        benchmark,
        Row(
            group="xml",
            name=f"refuse {attack} ({len(payload) / 1024:,.0f} KB)",
            measured=fmt_time(ours),
            baseline=f"parse {label} {fmt_time(base['honest'])}",
            ratio=f"{fmt_ratio(base['honest'] / ours)} cheaper",
            goal="< 100 ms",
            verdict=verdict_at_most(ours, GOAL_S),
            numbers={"refuse_s": ours, "honest_parse_s": base["honest"], "payload_bytes": len(payload)},
        ),
    )
