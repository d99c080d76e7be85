"""Importing YAWL specifications: each construct, each schema era, and every problem located."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

import yawlflow as yf
from yawlflow._spec import to_builtins
from yawlflow._yawl import import_yawl, loads_yawl

YF = "http://www.yawlfoundation.org/yawlschema"
CITI = "http://www.citi.qut.edu.au/yawl"
FIT = "http://www.yawl.fit.qut.edu.au/"
XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def yawl40(net: str, decompositions: str = "", *, variables: str = "", uri: str = "t") -> str:
    """A YAWL 4.0 file with one root net ``Main`` whose processControlElements are ``net``."""
    return textwrap.dedent(f"""\
        <?xml version="1.0" encoding="UTF-8"?>
        <specificationSet xmlns="{YF}" {XSI} version="4.0">
          <specification uri="{uri}">
            <metaData/>
            <decomposition id="Main" isRootNet="true" xsi:type="NetFactsType">
              {variables}
              <processControlElements>
        {textwrap.indent(textwrap.dedent(net), "        ")}
              </processControlElements>
            </decomposition>
            {decompositions}
          </specification>
          <layout><specification id="t"><net id="Main"/></specification></layout>
        </specificationSet>
        """)


def task(tid: str, flows: str, *, join: str = "xor", split: str = "and", extra: str = "", attrs: str = "") -> str:
    return f'<task id="{tid}"{attrs}>{flows}<join code="{join}"/><split code="{split}"/>{extra}</task>'


def to(target: str, predicate: str | None = None, *, ordering: int | None = None, default: bool = False) -> str:
    out = f'<flowsInto><nextElementRef id="{target}"/>'
    if predicate is not None:
        order = f' ordering="{ordering}"' if ordering is not None else ""
        out += f"<predicate{order}>{predicate}</predicate>"
    if default:
        out += "<isDefaultFlow/>"
    return out + "</flowsInto>"


def var(name: str, kind: str, initial: str | None = None, role: str = "localVariable") -> str:
    init = f"<initialValue>{initial}</initialValue>" if initial is not None else ""
    return (
        f"<{role}><index>0</index><name>{name}</name><type>{kind}</type>"
        f"<namespace>http://www.w3.org/2001/XMLSchema</namespace>{init}</{role}>"
    )


def mappings(kind: str, **targets: str) -> str:
    """``<startingMappings>`` (kind ``starting``) or ``<completedMappings>``: target = XQuery, escaped."""
    body = "".join(
        f'<mapping><expression query="{escape(query, {chr(34): "&quot;"})}"/><mapsTo>{target}</mapsTo></mapping>'
        for target, query in targets.items()
    )
    return f"<{kind}Mappings>{body}</{kind}Mappings>"


def gateway(did: str, body: str) -> str:
    return f'<decomposition id="{did}" xsi:type="WebServiceGatewayFactsType">{body}</decomposition>'


def manual(did: str, params: str = "") -> str:
    return (
        f'<decomposition id="{did}" xsi:type="WebServiceGatewayFactsType">{params}'
        f"<externalInteraction>manual</externalInteraction></decomposition>"
    )


def line_of(text: str, needle: str) -> int:
    """The 1-based line of ``text`` where ``needle`` first occurs."""
    return text[: text.index(needle)].count("\n") + 1


def tasks_of(text: str, **kw: Any) -> dict[str, Any]:
    spec = loads_yawl(text, source="t.yawl", **kw).spec
    data: dict[str, Any] = to_builtins(spec)["nets"]["Main"]["tasks"]
    return data


def test_a_sequence_of_offered_items() -> None:
    text = yawl40(
        f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {task("a", to("b"), extra='<decomposesTo id="A"/>')}
        {task("b", to("o"), extra='<decomposesTo id="A"/>')}
        <outputCondition id="o"/>
        """,
        manual("A"),
    )
    imported = loads_yawl(text, source="t.yawl")
    spec = imported.spec
    assert (spec.id, spec.root, spec.source) == ("t", "Main", "t.yawl")
    net = spec.net("Main")
    assert (net.input, net.output, [t.name for t in net.tasks]) == ("i", "o", ["a", "b"])
    assert [(t.external, t.join.kind, t.split.kind) for t in net.tasks] == [(True, "xor", "and")] * 2
    assert imported.version == "4.0" and imported.namespace == YF and imported.notes == ()
    assert yf.run(spec).status == "waiting"


@pytest.mark.parametrize(("namespace", "version"), [(YF, "4.0"), (CITI, "Beta 7.1"), (FIT, "Beta 6")])
def test_every_yawl_namespace_reads_the_same(namespace: str, version: str) -> None:
    text = yawl40(f'<inputCondition id="i">{to("a")}</inputCondition>{task("a", to("o"))}<outputCondition id="o"/>')
    text = text.replace(f'xmlns="{YF}"', f'xmlns="{namespace}"').replace('version="4.0"', f'version="{version}"')
    assert to_builtins(loads_yawl(text).spec)["nets"]["Main"]["tasks"] == {"a": {"flows": ["o"]}}


def test_beta2_root_net_and_variables() -> None:
    text = textwrap.dedent(f"""\
        <specificationSet xmlns="{CITI}" xmlns:xs="http://www.w3.org/2001/XMLSchema" {XSI}>
          <specification uri="beta2.xml">
            <metaData/>
            <rootNet id="top">
              <localVariable name="go"><type>xs:boolean</type><initialValue>true</initialValue></localVariable>
              <localVariable name="count"><type>xs:integer</type></localVariable>
              <localVariable name="order"><type>mm:OrderType</type>
                <initialValue>{escape("<id>7</id><line>a</line><line>b</line>")}</initialValue></localVariable>
              <processControlElements>
                <inputCondition id="i">{to("a")}</inputCondition>
                {task("a", to("b", "/data/go = 'true'", ordering=1) + to("o", default=True), split="xor")}
                {task("b", to("o"))}
                <outputCondition id="o"/>
              </processControlElements>
            </rootNet>
          </specification>
        </specificationSet>
        """)
    imported = loads_yawl(text)
    assert imported.version == "Beta 2"
    assert imported.start_data == {"go": True, "count": 0, "order": {"id": "7", "line": ["a", "b"]}}
    flows = to_builtins(imported.spec)["nets"]["top"]["tasks"]["a"]["flows"]
    assert flows == [{"to": "b", "when": "go == true", "order": 1}, {"to": "o", "default": True}]
    result = yf.run(imported.spec, imported.start_data)
    assert [r["task"] for r in result.trace if r["event"] == "item.completed"] == ["a", "b"]
    assert yf.run(imported.spec, {**imported.start_data, "go": False}).status == "completed"


def test_xor_split_takes_ordered_predicates_then_the_default_whose_predicate_yawl_ignores() -> None:
    flows = tasks_of(
        yawl40(
            f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {
                task(
                    "a",
                    to("b", "/Main/n &gt; 10", ordering=2)
                    + to("c", "/Main/n &gt; 5", ordering=1)
                    + to("o", "false()", ordering=3, default=True),
                    split="xor",
                )
            }
        {task("b", to("o"))}{task("c", to("o"))}
        <outputCondition id="o"/>
        """,
            variables=var("n", "long"),
        )
    )["a"]["flows"]
    assert flows == [
        {"to": "b", "when": "n > 10", "order": 2},
        {"to": "c", "when": "n > 5", "order": 1},
        {"to": "o", "order": 3, "default": True},  # the order is kept; a default is tried last anyway
    ]


def test_or_split_default_flow_follows_yawl() -> None:
    """YAWL's OR split fires its default flow when its predicate holds *or* nothing else fired."""
    body = yawl40(
        f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {
            task(
                "a",
                to("b", "/Main/x = 'true'") + to("c", "/Main/y = 'true'") + to("d", "/Main/z = 'true'", default=True),
                split="or",
            )
        }
        {task("b", to("e"))}{task("c", to("e"))}{task("d", to("e"))}
        {task("e", to("o"), join="or")}
        <outputCondition id="o"/>
        """,
        variables=var("x", "boolean") + var("y", "boolean") + var("z", "boolean"),
    )
    spec = loads_yawl(body).spec
    flows = to_builtins(spec)["nets"]["Main"]["tasks"]["a"]["flows"]
    assert flows[2] == {"to": "d", "when": "z == true || !(x == true || y == true)"}

    def taken(**data: bool) -> list[str]:
        trace = yf.run(spec, data).trace
        return sorted(str(r["task"]) for r in trace if r["event"] == "item.completed" and r["task"] in "bcd")

    assert taken(x=True, y=False, z=False) == ["b"]
    assert taken(x=False, y=False, z=False) == ["d"]  # nothing else fired: the default
    assert taken(x=True, y=True, z=True) == ["b", "c", "d"]


@pytest.mark.parametrize(("predicate", "flow"), [("false()", {"to": "c", "default": True}), ("true()", "c")])
def test_or_default_with_a_constant_predicate(predicate: str, flow: object) -> None:
    flows = tasks_of(
        yawl40(f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {task("a", to("b", "/Main/x = 1") + to("c", predicate, default=True), split="or")}
        {task("b", to("o"))}
        {task("c", to("o"))}
        <outputCondition id="o"/>
        """)
    )
    assert flows["a"]["flows"] == [{"to": "b", "when": "x == 1"}, flow]  # true(): always taken


def test_and_split_ignores_predicates_with_a_note() -> None:
    text = yawl40(f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {task("a", to("o", "/Main/x = 1"))}
        <outputCondition id="o"/>
        """)
    imported = loads_yawl(text, source="t.yawl")
    assert to_builtins(imported.spec)["nets"]["Main"]["tasks"]["a"]["flows"] == ["o"]
    line = line_of(text, '<task id="a"')
    assert [str(n) for n in imported.notes] == [
        f"t.yawl:{line}:1: $.nets.Main.tasks.a.split: predicates on an AND split are ignored (as YAWL does)"
    ]


def test_cancellation_sets_and_flows() -> None:
    text = yawl40(f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {task("a", to("b") + to("c") + to("wait"))}
        {task("b", to("d"))}
        <condition id="wait">{to("d")}</condition>
        {
        task(
            "c",
            to("d"),
            extra='<removesTokens id="wait"/><removesTokens id="b"/>'
            '<removesTokensFromFlow><flowSource id="b"/><flowDestination id="d"/></removesTokensFromFlow>',
        )
    }
        {task("d", to("o"))}
        <outputCondition id="o"/>
        """)
    spec = loads_yawl(text).spec
    data = to_builtins(spec)["nets"]["Main"]
    assert data["tasks"]["c"]["cancels"] == ["wait", "b", "c{b_d}"]
    assert data["tasks"]["b"]["flows"] == ["c{b_d}"]  # the implicit condition is made explicit
    assert data["conditions"]["c{b_d}"] == {"flows": ["d"]}
    assert yf.run(spec).status == "completed"


def test_multiple_instances() -> None:
    mi = (
        "<minimum>2</minimum><maximum>{max}</maximum><threshold>{threshold}</threshold>"
        '<creationMode code="{mode}"/><miDataInput><expression query="/Main/l"/>'
        '<splittingExpression query="for $d in /l/* return $d"/><formalInputParam>x</formalInputParam></miDataInput>'
    )
    attrs = ' xsi:type="MultipleInstanceExternalTaskFactsType"'
    tasks = tasks_of(
        yawl40(f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {task("a", to("b"), attrs=attrs, extra=mi.format(max=5, threshold=3, mode="dynamic"))}
        {task("b", to("o"), attrs=attrs, extra=mi.format(max=2147483647, threshold=2147483647, mode="static"))}
        <outputCondition id="o"/>
        """)
    )
    assert tasks["a"]["instances"] == {
        "min": 2,
        "max": 5,
        "threshold": 3,
        "creation": "dynamic",
        "join": "threshold",
        "cancel_rest": True,
    }
    assert tasks["b"]["instances"] == {"min": 2}


def test_composite_tasks_run_their_sub_net() -> None:
    sub = f"""
        <decomposition id="sub net" xsi:type="NetFactsType">
          {var("v", "string", role="inputParam")}{var("w", "string", role="outputParam")}
          <processControlElements>
            <inputCondition id="si">{to("s")}</inputCondition>
            {task("s", to("so"), extra=mappings("completed", w="<w>{/S/v/text()}</w>") + '<decomposesTo id="S"/>')}
            <outputCondition id="so"/>
          </processControlElements>
        </decomposition>
        <decomposition id="S" xsi:type="WebServiceGatewayFactsType">{var("v", "string", role="inputParam")}
          <codelet>Echo</codelet><externalInteraction>automated</externalInteraction></decomposition>
    """
    start = mappings("starting", v="<v>{/Main/greeting/text()}</v>")
    done = mappings("completed", out="<out>{/sub_net/w/text()}</out>")
    text = yawl40(
        f"""
        <inputCondition id="i">{to("c")}</inputCondition>
        {task("c", to("o"), extra=start + done + '<decomposesTo id="sub net"/>')}
        <outputCondition id="o"/>
        """,
        sub,
        variables=var("greeting", "string", "hi") + var("out", "string"),
    )
    imported = loads_yawl(text, source="t.yawl")
    line = line_of(text, 'decomposition id="sub net"')
    assert [str(n) for n in imported.notes] == [
        f"t.yawl:{line}:1: $.nets.sub_net: net id 'sub net' is not an XML name; imported as 'sub_net'"
    ]
    data = to_builtins(imported.spec)["nets"]
    assert data["Main"]["tasks"]["c"] == {
        "net": "sub_net",
        "flows": ["o"],
        "input": {"v": "greeting"},
        "output": {"out": "w"},
    }
    assert data["sub_net"]["tasks"]["s"] == {"run": "Echo", "flows": ["so"], "input": {}, "output": {"w": "v"}}
    result = yf.run(imported.spec, imported.start_data, handlers={"Echo": lambda data: None})
    assert (result.status, result.data["out"]) == ("completed", "hi")


def test_what_each_decomposition_becomes() -> None:
    gateways = f"""
        {gateway("M", "<externalInteraction>manual</externalInteraction>")}
        {gateway("A", "<externalInteraction>automated</externalInteraction>")}
        {gateway("C", "<codelet>ItemCounter</codelet><externalInteraction>automated</externalInteraction>")}
        {gateway("W", '<yawlService id="http://localhost:8080/timeService/ib"/><externalInteraction>automated</externalInteraction>')}
    """
    chain = "".join(
        task(t, to(n), extra=f'<decomposesTo id="{d}"/>' if d else "")
        for t, n, d in (("m", "a", "M"), ("a", "c", "A"), ("c", "w", "C"), ("w", "e", "W"), ("e", "o", ""))
    )
    tasks = tasks_of(
        yawl40(f'<inputCondition id="i">{to("m")}</inputCondition>{chain}<outputCondition id="o"/>', gateways)
    )
    assert tasks == {
        "m": {"external": True, "flows": ["a"], "input": {}, "output": {}},  # a person, through a worklist
        "a": {"flows": ["c"]},  # automated, nothing to run: completes at once
        "c": {"run": "ItemCounter", "flows": ["w"], "input": {}, "output": {}},  # a handler named after the codelet
        "w": {"external": True, "flows": ["e"], "input": {}, "output": {}},  # a custom service completes it
        "e": {"flows": ["o"]},  # no decomposition: routing
    }


def test_timers() -> None:
    tasks = tasks_of(
        yawl40(f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {task("a", to("b"), extra="<timer><trigger>OnEnabled</trigger><duration>PT5S</duration></timer>")}
        {
            task(
                "b",
                to("o"),
                extra="<timer><trigger>OnEnabled</trigger><durationparams><ticks>90</ticks>"
                "<interval>MIN</interval></durationparams></timer>",
            )
        }
        <outputCondition id="o"/>
        """)
    )
    assert (tasks["a"]["timer"], tasks["b"]["timer"]) == ({"after": "PT5S"}, {"after": "PT90M"})


def test_untranslatable_predicates_are_errors_located_with_the_side_file_key(tmp_path: Path) -> None:
    text = yawl40(f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {task("a", to("b", "random()") + to("o", default=True), split="xor")}
        {task("b", to("o"), extra="<timer><netparam>deadline</netparam></timer>")}
        <outputCondition id="o"/>
        """)
    file = tmp_path / "t.yawl"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(yf.SpecError) as caught:
        yf.load(file)
    a, b = line_of(text, "<predicate>"), line_of(text, "<timer>")
    assert [str(p).replace(str(tmp_path), "").split(": $")[0] for p in caught.value.problems] == [
        f"/t.yawl:{a}:{text.splitlines()[a - 1].index('<predicate>') + 1}",
        f"/t.yawl:{b}:{text.splitlines()[b - 1].index('<timer>') + 1}",
    ]
    assert [str(p).replace(str(tmp_path), "").split(": ", 1)[1] for p in caught.value.problems] == [
        "$.nets.Main.tasks.a.flows[0].when: flow 'a' -> 'b': XPath predicate 'random()' has no CEL "
        "translation (random() has no CEL equivalent) (supply it in /t.yawl.cel.yaml: flows: {a: {b: <CEL>}})",
        "$.nets.Main.tasks.b.timer: the timer of task 'b' takes its duration from a net variable's "
        "value, known only at run time (supply it in /t.yawl.cel.yaml: tasks: {b: {timer: <duration>}})",
    ]
    side = tmp_path / "t.yawl.cel.yaml"
    side.write_text("flows: {a: {b: 'coin == 1'}}\ntasks: {b: {timer: 2h}}\n", encoding="utf-8")
    spec = yf.load(file)
    a, b = spec.net("Main").tasks
    assert (a.flows[0].when, b.timer is not None and b.timer.after) == ("coin == 1", "2h")


def test_unused_overrides_are_reported_in_the_side_file(tmp_path: Path) -> None:
    file = tmp_path / "t.yawl"
    file.write_text(
        yawl40(f'<inputCondition id="i">{to("a")}</inputCondition>{task("a", to("o"))}<outputCondition id="o"/>'),
        encoding="utf-8",
    )
    (tmp_path / "t.yawl.cel.yaml").write_text(
        "flows:\n  a:\n    oo: x == 1\nnets: {Main: {tasks: {z: {timer: 1s}}}}\n", encoding="utf-8"
    )
    with pytest.raises(yf.SpecError) as caught:
        import_yawl(file)
    assert [(p.line, p.path, p.message) for p in caught.value.problems] == [
        (3, "$.flows.a.oo", "no flow 'a' -> 'oo' in the YAWL file"),
        (4, "$.nets.Main.tasks.z.timer", "no task 'z' with timer in the YAWL file"),
    ]


def test_overrides_supply_mappings_and_instances() -> None:
    text = yawl40(
        f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {
            task(
                "a",
                to("o"),
                attrs=' xsi:type="MultipleInstanceExternalTaskFactsType"',
                extra=mappings("starting", q="<q>{if (/Main/x) then 1 else 2}</q>")
                + '<decomposesTo id="A"/><minimum>/Main/n</minimum><maximum>5</maximum><threshold>5</threshold>'
                '<creationMode code="static"/>',
            )
        }
        <outputCondition id="o"/>
        """,
        manual("A"),
    )
    with pytest.raises(yf.SpecError, match=r"multiple-instance minimum '/Main/n' is not an integer"):
        loads_yawl(text)
    imported = loads_yawl(text, overrides={"tasks": {"a": {"input": {"q": "x ? 1 : 2"}, "instances": {"min": 3}}}})
    a = to_builtins(imported.spec)["nets"]["Main"]["tasks"]["a"]
    assert (a["input"], a["instances"]) == ({"q": "x ? 1 : 2"}, {"min": 3, "max": 5})
    assert "has no CEL translation (if() has no CEL equivalent); left out" in str(imported.notes[0])


def test_the_spec_validates_like_a_yaml_spec_located_in_the_yawl_file() -> None:
    text = yawl40(f"""
        <inputCondition id="i">{to("a")}</inputCondition>
        {task("a", to("nowhere"))}
        {task("lost", to("o"))}
        <outputCondition id="o"/>
        """)
    with pytest.raises(yf.SpecError) as caught:
        loads_yawl(text, source="t.yawl")
    found = [str(p) for p in caught.value.problems]
    flow, lost = line_of(text, '<task id="a"'), line_of(text, '<task id="lost"')
    column = text.splitlines()[flow - 1].index("<flowsInto>") + 1
    assert (
        f"t.yawl:{flow}:{column}: $.nets.Main.tasks.a.flows[0]: no task or condition 'nowhere' "
        "(a flow names a task, a condition, or the output condition 'o')" in found
    )
    assert (
        f"t.yawl:{lost}:1: $.nets.Main.tasks.lost: task 'lost' cannot be reached from the input condition 'i' "
        "(add a flow into it, or remove it)" in found
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "<bpmn:definitions xmlns:bpmn='urn:x'/>",
            r"t\.yawl:1:1: \$: the root element is <definitions>, not a YAWL <specificationSet>",
        ),
        ("<specificationSet xmlns='urn:other'/>", r"t\.yawl:1:1: \$: unknown YAWL namespace 'urn:other'"),
        (
            f"<specificationSet xmlns='{YF}'><specification uri='a'/><specification uri='b'/></specificationSet>",
            r"t\.yawl:1:1: \$: the specification set holds 2 specifications",
        ),
        ("<specificationSet", r"t\.yawl:1:1: \$: not well-formed XML: unclosed token"),
    ],
)
def test_files_that_are_not_yawl_specifications(text: str, message: str) -> None:
    with pytest.raises(yf.SpecError, match=message):
        loads_yawl(text, source="t.yawl")


def test_a_missing_decomposition_is_located() -> None:
    missing = task("a", to("o"), extra='<decomposesTo id="X"/>')
    text = yawl40(f'<inputCondition id="i">{to("a")}</inputCondition>{missing}<outputCondition id="o"/>')
    line = line_of(text, '<task id="a"')
    with pytest.raises(
        yf.SpecError,
        match=rf"t\.yawl:{line}:\d+: \$\.nets\.Main\.tasks\.a\.net: decomposesTo names no decomposition 'X'",
    ):
        loads_yawl(text, source="t.yawl")


def test_yf_load_reads_yawl_and_xml_files(tmp_path: Path) -> None:
    text = yawl40(f'<inputCondition id="i">{to("a")}</inputCondition>{task("a", to("o"))}<outputCondition id="o"/>')
    for name in ("spec.yawl", "spec.XML"):
        file = tmp_path / name
        file.write_text(text, encoding="utf-8")
        assert yf.load(file) == import_yawl(file).spec
    with pytest.raises(yf.SpecError, match=r"missing\.yawl: \$: no such file"):
        yf.load(tmp_path / "missing.yawl")
