"""Exporting specs as YAWL 4.0: schema-valid, read back to an equal spec, and refused where YAWL has no form.

The schema is YAWL's own ``YAWL_Schema4.0.xsd`` (``data/``, from yawlfoundation/yawl, LGPL v3);
validating against it needs lxml, which the dev environment has through pm4py. Without lxml
only the structure is checked.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

import yawlflow as yf
from yawlflow._xml import local_name, parse
from yawlflow._yawl import export_yawl, loads_yawl
from yawlflow.cli import main

XSD = Path(__file__).parent / "data" / "YAWL_Schema4.0.xsd"
YF = "{http://www.yawlfoundation.org/yawlschema}"

SPEC = textwrap.dedent("""\
    yawlflow: 1
    id: orders
    root: main
    nets:
      main:
        input: start
        output: end
        conditions:
          start: {flows: [receive]}
          choose: {flows: [approve, withdraw]}
        tasks:
          receive:
            external: true
            split: xor
            flows:
              - {to: check, when: "amount > 1000 && rush == false", order: 1}
              - {to: choose, default: true}
            input: {amount: amount}
            output: {amount: amount, rush: rush}
          check:
            run: CreditCheck
            input: {}
            output: {}
            split: or
            flows:
              - {to: approve, when: 'customer.country == "NL"'}
              - {to: ship, default: true}
            cancels: [withdraw]
          approve: {external: true, join: xor, flows: [ship], input: {}, output: {}}
          withdraw: {flows: [end], timer: {after: PT10M}}
          ship:
            net: shipping
            join: or
            flows: [end]
            input: {parcel: parcels}
            output: {shipped: done}
      shipping:
        input: s_in
        output: s_out
        tasks:
          pack:
            external: true
            split: and
            flows: [s_out]
            instances: {min: 1, max: 4, threshold: 2, join: threshold, cancel_rest: true, creation: dynamic}
            input: {}
            output: {done: "true"}
    """)


@pytest.fixture
def spec(tmp_path: Path) -> yf.Spec:
    file = tmp_path / "orders.yaml"
    file.write_text(SPEC, encoding="utf-8")
    return yf.load(file)


def schema() -> Any:
    etree = pytest.importorskip("lxml.etree", reason="validating against YAWL's XSD needs lxml")
    return etree.XMLSchema(etree.parse(str(XSD)))


def assert_schema_valid(document: bytes) -> None:
    etree = pytest.importorskip("lxml.etree", reason="validating against YAWL's XSD needs lxml")
    xsd = schema()
    assert xsd.validate(etree.fromstring(document)), [str(e) for e in xsd.error_log]


def test_the_export_is_valid_against_yawls_schema(spec: yf.Spec) -> None:
    assert_schema_valid(export_yawl(spec))


def test_the_export_has_yawls_structure(spec: yf.Spec) -> None:
    root = parse(export_yawl(spec))
    assert (root.tag, root.get("version")) == (f"{YF}specificationSet", "4.0")
    decompositions = {d.get("id"): d for d in root.iter(f"{YF}decomposition")}
    types = {
        k: (v.get("{http://www.w3.org/2001/XMLSchema-instance}type"), v.get("isRootNet"))
        for k, v in decompositions.items()
    }
    assert types == {
        "main": ("NetFactsType", "true"),
        "shipping": ("NetFactsType", None),
        "receive": ("WebServiceGatewayFactsType", None),
        "check": ("WebServiceGatewayFactsType", None),
        "approve": ("WebServiceGatewayFactsType", None),
        "pack": ("WebServiceGatewayFactsType", None),
    }
    check = decompositions["check"]
    assert [(local_name(c.tag), c.text) for c in check if local_name(c.tag) in ("codelet", "externalInteraction")] == [
        ("codelet", "CreditCheck"),
        ("externalInteraction", "automated"),
    ]
    predicates = [(p.text, p.get("ordering")) for p in root.iter(f"{YF}predicate")]
    assert ("/main/amount/text() > 1000 and /main/rush/text() = 'false'", "1") in predicates
    assert ("/main/customer/country/text() = 'NL'", None) in predicates
    assert ("false()", None) in predicates  # an OR split's default: only when no other flow is taken


def test_export_then_import_gives_an_equal_spec(spec: yf.Spec) -> None:
    again = loads_yawl(export_yawl(spec), source=spec.source).spec
    assert again == spec
    assert export_yawl(again) == export_yawl(spec)


def test_a_task_given_the_whole_case_data_gets_none_in_yawl() -> None:
    """YAWL passes a task only what its mappings name: ``input`` left out (the whole case data)
    has no YAWL spelling, so it reads back as ``input: {}``."""
    spec = yf.loads(
        "yawlflow: 1\nid: t\nnets:\n  main:\n    input: i\n    output: o\n    tasks:\n"
        "      a: {external: true, flows: [o]}\n"
    )
    task = loads_yawl(export_yawl(spec)).spec.net("main").tasks[0]
    assert (task.input, task.output) == ({}, {})


def test_what_yawl_cannot_express_is_refused_each_place_listed() -> None:
    spec = yf.loads(
        textwrap.dedent("""\
        yawlflow: 1
        id: x
        nets:
          main:
            input: i
            output: o
            termination: implicit
            tasks:
              a:
                trigger: paid
                split: {threads: 2}
                flows: [b]
              b:
                join: {partial: 1}
                run: {connector: http, config: {url: "http://x"}}
                retry: {attempts: 2}
                flows:
                  - o
                output: {total: "[1, 2].map(x, x * 2)"}
        """),
        source="x.yaml",
    )
    with pytest.raises(yf.SpecError) as caught:
        export_yawl(spec)
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("$.nets.main.termination", "YAWL has no implicit termination"),
        ("$.nets.main.tasks.a.trigger", "trigger has no YAWL equivalent"),
        ("$.nets.main.tasks.a.split", "YAWL has no threads split"),
        ("$.nets.main.tasks.b.retry", "retry has no YAWL equivalent"),
        ("$.nets.main.tasks.b.run", "a connector task has no YAWL equivalent"),
        ("$.nets.main.tasks.b.join", "YAWL has no partial join"),
        (
            "$.nets.main.tasks.b.output.total",
            "CEL '[1, 2].map(x, x * 2)' has no XQuery form (the CEL construct at '[' has no XPath form)",
        ),
    ]
    assert all(p.source == "x.yaml" and p.hint for p in caught.value.problems)


def test_cli_compile_to_yawl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "orders.yaml"
    source.write_text(SPEC, encoding="utf-8")
    assert main(["compile", str(source), "--to", "yawl"]) == 0
    out = tmp_path / "orders.yawl"
    assert capsys.readouterr().out.startswith(f"wrote {out}: ")
    assert_schema_valid(out.read_bytes())
    assert yf.load(out) == loads_yawl(out.read_bytes(), source=str(out)).spec
    assert main(["compile", str(out), "--to", "yawl"]) == 2  # would overwrite its own input
    assert "would overwrite SPEC itself" in capsys.readouterr().err
    assert main(["compile", str(out), "--to", "yawl", "-o", str(tmp_path / "again.yawl")]) == 0
    assert main(["compile", str(source)]) == 0  # .ywc stays the default
    assert (tmp_path / "orders.ywc").is_file()


def test_cli_compile_to_yawl_lists_what_cannot_be_exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "t.yaml"
    source.write_text(
        "yawlflow: 1\nid: t\nnets:\n  main:\n    input: i\n    output: o\n    tasks:\n"
        "      a: {milestone: [i], flows: [o]}\n",
        encoding="utf-8",
    )
    assert main(["compile", str(source), "--to", "yawl"]) == 2
    assert "$.nets.main.tasks.a.milestone: milestone has no YAWL equivalent" in capsys.readouterr().err
    assert not (tmp_path / "t.yawl").exists()
