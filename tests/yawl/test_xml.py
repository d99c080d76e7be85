"""The hardened XML entry point: each classic attack is refused, located, before it costs anything.

How fast each refusal is (issue 9: under 100 ms) is measured in ``benches/test_xml.py``, not
asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import yawlflow as yf
from yawlflow._xml import XmlError, XmlLimits, parse, parse_file


def xxe() -> bytes:
    """An external entity that would read a local file into the document."""
    return (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE specificationSet [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
        b"<specificationSet>&secret;</specificationSet>\n"
    )


def billion_laughs() -> bytes:
    """Ten levels of ten-fold entity expansion: 10**9 'lol's from a 1 KB file."""
    lines = [b'<!ENTITY lol0 "lol">']
    lines += [b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10)]
    return b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n' + b"\n".join(lines) + b"\n]>\n<lolz>&lol9;</lolz>\n"


def quadratic_blowup() -> bytes:
    """One 100 KB entity referenced 10,000 times: 1 GB of text from a 130 KB file."""
    entity = b"x" * 100_000
    return b'<!DOCTYPE r [<!ENTITY a "' + entity + b'">]>\n<r>' + b"&a;" * 10_000 + b"</r>"


def deep(levels: int = 10_000) -> bytes:
    return b"<a>" * levels + b"</a>" * levels


@pytest.mark.parametrize(
    ("payload", "line", "message"),
    [
        pytest.param(xxe, 2, "a DOCTYPE declaration (<!DOCTYPE specificationSet ...>)", id="xxe"),
        pytest.param(billion_laughs, 2, "a DOCTYPE declaration (<!DOCTYPE lolz ...>)", id="billion-laughs"),
        pytest.param(quadratic_blowup, 1, "a DOCTYPE declaration (<!DOCTYPE r ...>)", id="quadratic-blowup"),
        pytest.param(deep, 1, "elements nest deeper than 256 levels", id="10000-deep"),
    ],
)
def test_each_attack_is_refused_with_a_located_error(payload: object, line: int, message: str) -> None:
    assert callable(payload)
    with pytest.raises(XmlError) as caught:
        parse(payload(), source="attack.yawl")
    problem = caught.value.problem
    assert (problem.source, problem.line, problem.message) == ("attack.yawl", line, message)
    assert problem.hint
    assert str(caught.value).startswith(f"attack.yawl:{line}:")


@pytest.mark.parametrize(
    "payload", [xxe, billion_laughs, quadratic_blowup, deep], ids=["xxe", "laughs", "quadratic", "deep"]
)
def test_yf_load_refuses_each_attack_as_a_spec_error(tmp_path: Path, payload: object) -> None:
    assert callable(payload)
    file = tmp_path / "attack.yawl"
    file.write_bytes(payload())
    with pytest.raises(yf.SpecError, match=r"attack\.yawl:\d+:\d+: \$: (a DOCTYPE declaration|elements nest deeper)"):
        yf.load(file)


def test_an_entity_reference_without_a_declaration_is_malformed_xml() -> None:
    with pytest.raises(XmlError, match=r"^x\.yawl:1:4: \$: not well-formed XML: undefined entity"):
        parse(b"<r>&foo;</r>", source="x.yawl")


def test_malformed_xml_is_located_at_the_fault() -> None:
    with pytest.raises(XmlError, match=r"^x\.yawl:3:3: \$: not well-formed XML: mismatched tag"):
        parse(b"<a>\n<b>\n</a>", source="x.yawl")


def test_limits_are_configurable() -> None:
    nested = b"<a><b><c><d/></c></b></a>"
    assert parse(nested).tag == "a"
    with pytest.raises(XmlError, match="elements nest deeper than 3 levels"):
        parse(nested, limits=XmlLimits(max_depth=3))
    with pytest.raises(XmlError, match=r"more than 2 elements"):
        parse(nested, limits=XmlLimits(max_elements=2))
    with pytest.raises(XmlError, match=r"the document is 0\.0 MiB, over the limit"):
        parse(nested, limits=XmlLimits(max_bytes=10))


def test_elements_carry_their_line_and_column() -> None:
    root = parse(b'<?xml version="1.0"?>\n<set xmlns="urn:x">\n  <spec uri="a"/>\n</set>\n')
    child = root[0]
    assert (root.tag, root.line) == ("{urn:x}set", 2)
    assert (child.tag, child.line, child.column, child.get("uri")) == ("{urn:x}spec", 3, 3, "a")


def test_character_references_are_not_entities() -> None:
    assert parse(b"<r>&#65;&lt;&amp;</r>").text == "A<&"


def test_parse_file_checks_the_size_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yawl"
    big.write_bytes(b"<r>" + b" " * 2000 + b"</r>")
    with pytest.raises(XmlError, match=r"big\.yawl: \$: the document is"):
        parse_file(big, limits=XmlLimits(max_bytes=1000))
    with pytest.raises(XmlError, match=r"missing\.yawl: \$: no such file"):
        parse_file(tmp_path / "missing.yawl")
