"""XPath/XQuery to CEL and back: the translated subset, exact both ways, and the reasons for the rest."""

from __future__ import annotations

import pytest

from yawlflow._cel import evaluate
from yawlflow._yawl._toxpath import cel_to_predicate, cel_to_query
from yawlflow._yawl._xpath import Untranslatable, predicate_to_cel, query_to_cel, typed_value

KINDS = {"ok": "boolean", "n": "integer", "d": "decimal", "s": "string"}

PREDICATES = [
    ("true()", "true"),
    ("false()", "false"),
    ("/data/ok = 'true'", "ok == true"),
    ("boolean(/Net/ok/text()='false')", "ok == false"),
    ("/Net/n < '2'", "n < 2"),
    ("/Net/d >= 1.5", "d >= 1.5"),
    ("/Net/s != 'a''b'", 's != "a\'b"'),
    ("/Net/order/total/text() > 100", "order.total > 100"),
    ("/Net/a/b/text() = 'x' and not(/Net/s = 'y')", 'a.b == "x" && !(s == "y")'),
    ("(/Net/n = 1 or /Net/n = 2) and /Net/s = 'z'", '(n == 1 || n == 2) && s == "z"'),
    ("count(/data/songs/*) > 0", "size(songs) > 0"),
    ("exists(/Net/a/b) and empty(/Net/c/d)", "has(a.b) && !has(c.d)"),
    ("starts-with(Net/ssn/text(),'0')", 'ssn.startsWith("0")'),
    ("boolean(number(/F/a/text())=number(/F/b/c/text()))", "double(a) == double(b.c)"),
    ("/Net/n + 1 > 2 * /Net/d", "n + 1 > 2 * d"),
    ("fn:true()", "true"),
]


@pytest.mark.parametrize(("xpath", "cel"), PREDICATES)
def test_predicates_translate_to_cel(xpath: str, cel: str) -> None:
    assert predicate_to_cel(xpath, KINDS) == cel


@pytest.mark.parametrize(("xpath", "cel"), PREDICATES)
def test_each_translation_writes_back_to_xpath_that_reads_the_same(xpath: str, cel: str) -> None:
    types: dict[str, str] = {}
    back = cel_to_predicate(cel, "Net", types)
    assert predicate_to_cel(back, types) == cel


@pytest.mark.parametrize(
    ("xpath", "reason"),
    [
        ("random()", "random() has no CEL equivalent"),
        ("average rating < 3 out of 5", "unsupported XPath at 'rating'"),
        ("/Net/a[1] = 2", "path predicates and axes are not translated"),
        ("//a = 2", "'//' (any depth) is not translated"),
        ("/Net/a", "a path or a literal alone is not a condition"),
        ("boolean(/Net/a)", "boolean() of a path tests whether it exists"),
        ("exists(/Net/a)", "exists() is translated for nested paths"),
        ("/Net/return = 1", "the variable name 'return' is not a CEL identifier"),
        ("count(/Net/a) > 1", "count() is translated for /Root/list/* only"),
    ],
)
def test_what_is_not_translated_says_why(xpath: str, reason: str) -> None:
    with pytest.raises(Untranslatable) as caught:
        predicate_to_cel(xpath, KINDS)
    assert caught.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("query", "kind", "cel"),
    [
        ("<Item>{/Sales/Item/text()}</Item>", None, "Item"),
        ("<song> { /RecordSong/songLocal/* } </song>", None, "songLocal"),
        ("/data/applicant", None, "applicant"),
        ("<v>{/data/n + 1}</v>", None, "n + 1"),
        ("<songs>{for $d in /data/written/* return $d}</songs>", None, "written"),
        ("<v>true</v>", "boolean", "true"),
        ("<v>12</v>", "integer", "12"),
        ("<v>12</v>", "string", '"12"'),
        ("<v/>", "string", '""'),
        ("<v>{'text'}</v>", None, '"text"'),
    ],
)
def test_mappings_translate_to_cel_and_back(query: str, kind: str | None, cel: str) -> None:
    assert query_to_cel(query, kind, KINDS) == cel
    assert query_to_cel(cel_to_query(cel, "v", "Net", {}), kind, KINDS) == cel


@pytest.mark.parametrize(
    "query",
    [
        "<a><b>{/x/y}</b></a>",
        "<v>{if (/N/a) then 1 else 2}</v>",
        "<v>{abs(/N/n)}</v>",
        '<v a="1">{/N/a}</v>',
    ],
)
def test_real_xquery_is_not_translated(query: str) -> None:
    with pytest.raises(Untranslatable):
        query_to_cel(query, None, KINDS)


def test_a_boolean_variable_alone_is_written_as_a_comparison() -> None:
    types: dict[str, str] = {}
    assert cel_to_predicate("approved && !rush", "Net", types) == (
        "/Net/approved/text() = 'true' and not(/Net/rush/text() = 'true')"
    )
    assert types == {"approved": "boolean", "rush": "boolean"}


def test_cel_that_has_no_xpath_form_is_refused() -> None:
    for cel in ("[1, 2].exists(x, x > 1)", "a ? b : c", "size(a + b) > 1", "1"):
        with pytest.raises(Untranslatable):
            cel_to_predicate(cel, "Net", {})


def test_translated_predicates_evaluate_as_yawl_would() -> None:
    data = {"ok": True, "n": 1, "d": 2.0, "s": "x", "a": {"b": "x"}, "order": {"total": 150}, "songs": [1]}
    assert evaluate(predicate_to_cel("/data/ok = 'true' and /data/n < '2'", KINDS), data) is True
    assert evaluate(predicate_to_cel("/N/order/total/text() > 100 and count(/N/songs/*) > 0", KINDS), data) is True
    assert evaluate(predicate_to_cel("/N/a/b/text() = 'y' or /N/d > 3", KINDS), data) is False


def test_typed_values() -> None:
    assert typed_value("true", "boolean") is True
    assert typed_value("0", "boolean") is False
    assert typed_value(" 42 ", "integer") == 42
    assert typed_value("2.5", "decimal") == 2.5
    assert typed_value("maybe", "boolean") == "maybe"
    assert typed_value("x", None) == "x"
