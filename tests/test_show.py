"""Diagrams: Mermaid and DOT in YAWL notation, deterministic, and well-formed line by line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import yawlflow as yf
from yawlflow._show import to_dot, to_mermaid
from yawlflow._spec import from_data, to_builtins

ROOT = Path(__file__).resolve().parents[1]

ORDERS = yf.load(ROOT / "examples" / "orders.yaml")
EXTERNAL = yf.load(ROOT / "examples" / "orders_external.yaml")

CANCEL = yf.loads(
    """
yawlflow: 1
id: cancel
nets:
  main:
    input: start
    output: end
    conditions:
      pending: {flows: [work]}
    tasks:
      split: {flows: [pending, watch, abort]}
      work: {external: true, flows: [done]}
      watch: {external: true, cancels: [work, pending], flows: [done]}
      abort: {external: true, cancels: [main], flows: [end]}
      done: {join: {partial: 1, reset: cancel}, flows: [end]}
""",
    source="cancel.yaml",
)

NESTED = yf.loads(
    """
yawlflow: 1
id: nested
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      prepare: {run: prepare, split: {threads: 2}, flows: [handle]}
      handle: {net: sub, join: {threads: 2}, flows: [end]}
  sub:
    input: in
    output: out
    tasks:
      step:
        instances: {count: 3}
        flows: [again]
      again:
        loop: {until: "done"}
        trigger: {signal: go, persistent: true}
        flows: [out]
""",
    source="nested.yaml",
)

ODD = from_data(
    {
        "yawlflow": 1,
        "id": "odd",
        "nets": {
            "main": {
                "input": "start",
                "output": "end",
                "tasks": {
                    "a-b": {
                        "split": "or",
                        "flows": [
                            {"to": "a_b", "when": 'who == "x|y" || n < 3 && m > 2'},
                            {"to": "end", "default": True},
                        ],
                    },
                    "a_b": {"flows": ["end"]},
                },
            }
        },
    },
    source="odd.yaml",
)

# One Mermaid statement per line: a node, a class, an edge, a comment, a subgraph or a classDef.
_ID = r"[A-Za-z0-9_]+"
_LABEL = r'"[^"]*"'
_MERMAID_LINE = re.compile(
    "|".join(
        [
            r"flowchart LR",
            r"%%.*",
            rf"{_ID}\(\(\({_LABEL}\)\)\)",  # input / output condition: double circle
            rf"{_ID}\(\({_LABEL}\)\)",  # condition: circle
            rf"{_ID}\[{_LABEL}\]",  # task: box
            rf"{_ID}\[\[{_LABEL}\]\]",  # composite task: subroutine box
            rf"class {_ID} (condition|inputCondition|outputCondition|task|externalTask|compositeTask|miTask)",
            rf"{_ID} (-->|-\.->|-\.-)(\|{_LABEL}\|)? {_ID}",
            rf"subgraph {_ID}\[{_LABEL}\]",
            r"direction LR",
            r"end",
            r"classDef \w+ [\w#:,-]+",
        ]
    )
)


def mermaid_lines(text: str) -> list[str]:
    assert text.endswith("\n")
    lines = [line.strip() for line in text.splitlines()]
    bad = [line for line in lines if not _MERMAID_LINE.fullmatch(line)]
    assert not bad, f"not a Mermaid statement this renderer writes: {bad}"
    return lines


@pytest.mark.parametrize("spec", [ORDERS, EXTERNAL, CANCEL, NESTED, ODD], ids=lambda s: s.id)
def test_mermaid_is_well_formed_and_deterministic(spec: yf.Spec) -> None:
    text = to_mermaid(spec)
    mermaid_lines(text)
    assert text == to_mermaid(spec)
    # the same spec loaded again (here: written back and re-read) gives the same text
    assert text == to_mermaid(from_data(to_builtins(spec), source=spec.source))


def test_orders_in_yawl_notation() -> None:
    lines = mermaid_lines(to_mermaid(ORDERS))
    assert lines[0] == "flowchart LR"
    # input and output conditions: double circles, distinct symbols and classes
    assert 'c_start((("▶ start")))' in lines
    assert "class c_start inputCondition" in lines
    assert 'c_end((("■ end")))' in lines
    assert "class c_end outputCondition" in lines
    # tasks: boxes, with their split and join
    assert 't_receive["receive<br/>split: xor"]' in lines
    assert 't_fulfil["fulfil<br/>join: xor<br/>split: or"]' in lines
    assert 't_ship["ship<br/>join: or"]' in lines
    assert 't_pack["pack"]' in lines
    # predicates, order and default on the arrows
    assert 't_receive -->|"1: amount > 1000"| t_review' in lines
    assert 't_receive -->|"2: amount #60;= 100"| t_fast__track' in lines
    assert 't_receive -->|"default"| t_fulfil' in lines
    assert "t_fulfil -->|\"express #38;#38; country == 'NL'\"| t_courier" in lines
    # implicit task→task conditions are not drawn: the arrow goes straight to the task
    assert "t_review --> t_fulfil" in lines
    assert "c_start --> t_receive" in lines
    assert not any("c{" in line or "c_c" in line for line in lines)


def test_explicit_conditions_are_circles() -> None:
    lines = mermaid_lines(to_mermaid(EXTERNAL))
    assert 'c_waiting(("waiting"))' in lines
    assert "c_waiting --> t_approve" in lines
    assert "c_waiting --> t_withdraw" in lines
    assert 't_receive -->|"1: amount > 1000"| c_waiting' in lines
    assert 't_approve["approve<br/>offered"]' in lines
    assert "class t_approve externalTask" in lines


def test_cancellation_sets_are_dashed() -> None:
    lines = mermaid_lines(to_mermaid(CANCEL))
    assert 't_watch -.->|"cancels"| t_work' in lines
    assert 't_watch -.->|"cancels"| c_pending' in lines
    assert 't_abort["abort<br/>offered<br/>cancels: case"]' in lines
    assert not any(line.startswith("t_abort -.->") for line in lines)
    assert 't_done["done<br/>join: partial 1, reset: cancel"]' in lines


def test_composite_tasks_and_several_nets() -> None:
    lines = mermaid_lines(to_mermaid(NESTED))
    assert 'subgraph n0["net main (root)"]' in lines
    assert 'subgraph n1["net sub"]' in lines
    assert 'n0_t_handle[["handle<br/>join: threads 2<br/>net: sub"]]' in lines
    assert "class n0_t_handle compositeTask" in lines
    assert 'n0_t_prepare["prepare<br/>split: threads 2<br/>run: prepare"]' in lines
    assert 'n1_t_step["step<br/>instances: 3 (static, join: all)"]' in lines
    assert "class n1_t_step miTask" in lines
    assert 'n1_t_again["again<br/>trigger: go (persistent)<br/>loop until: done"]' in lines
    assert lines.count("end") == 2


def test_one_net_of_several() -> None:
    text = to_mermaid(NESTED, net="sub")
    lines = mermaid_lines(text)
    assert "subgraph" not in text
    assert 'c_in((("▶ in")))' in lines
    assert "t_step --> t_again" in lines
    assert "t_again --> c_out" in lines
    with pytest.raises(ValueError, match=r"^spec 'nested' has no net 'other' \(its nets: main, sub\)$"):
        to_mermaid(NESTED, net="other")
    with pytest.raises(ValueError, match="has no net"):
        to_dot(NESTED, net="other")


def test_names_and_labels_are_escaped() -> None:
    lines = mermaid_lines(to_mermaid(ODD))
    # "a-b" and "a_b" get different ids
    assert 't_a_x2d_b["a-b<br/>split: or"]' in lines
    assert 't_a__b["a_b"]' in lines
    # quotes, pipes, < and & inside a label become entity codes; > stays readable
    assert 't_a_x2d_b -->|"who == #34;x#124;y#34; #124;#124; n #60; 3 #38;#38; m > 2"| t_a__b' in lines


def test_dot_is_deterministic_and_balanced() -> None:
    for spec in (ORDERS, EXTERNAL, CANCEL, NESTED, ODD):
        text = to_dot(spec)
        assert text == to_dot(spec)
        assert text.startswith(f'digraph "{spec.id}" {{\n')
        assert text.count("{") == text.count("}")
        assert "  rankdir=LR;" in text
    assert "subgraph cluster_n1 {" in to_dot(NESTED)
    assert '[label="who == \\"x|y\\" || n < 3 && m > 2"]' in to_dot(ODD)


def dot_node(text: str, node: str) -> str:
    """The attribute list of ``node``'s statement in ``text``."""
    found = [line.strip() for line in text.splitlines() if line.strip().startswith(f"{node} [")]
    assert len(found) == 1, (node, found)
    return found[0]


def test_dot_conditions_are_circles_with_yawl_symbols() -> None:
    dot = to_dot(CANCEL)
    start = dot_node(dot, "c_start")
    assert "shape=circle" in start and 'xlabel="start"' in start and "▶" in start
    end = dot_node(dot, "c_end")
    assert "shape=circle" in end and "■" in end
    assert "shape=circle" in dot_node(dot, "c_pending") and 'xlabel="pending"' in dot_node(dot, "c_pending")
    # implicit conditions are not nodes: the arrow goes from task to task
    assert "t_split -> t_watch;" in dot
    assert "c{" not in dot


@pytest.mark.parametrize(
    ("yaml_join", "yaml_split", "join_glyph", "split_glyph"),
    [
        ("and", "and", "▷", "◁"),
        ("xor", "xor", "◁", "▷"),
        ("or", "or", "◇", "◇"),
        ("{threads: 2}", "{threads: 2}", "\u00d72", "\u00d72"),
        ("{partial: 1}", "xor", "1/2", "▷"),
    ],
)
def test_dot_decorates_joins_and_splits(yaml_join: str, yaml_split: str, join_glyph: str, split_glyph: str) -> None:
    spec = yf.loads(
        f"""
yawlflow: 1
id: deco
nets:
  main:
    input: start
    output: end
    tasks:
      a: {{flows: [b, c]}}
      b: {{flows: [t]}}
      c: {{flows: [t]}}
      t: {{join: {yaml_join}, split: {yaml_split}, flows: [d, e]}}
      d: {{flows: [end]}}
      e: {{flows: [end]}}
""",
        source="deco.yaml",
    )
    node = dot_node(to_dot(spec), "t_t")
    join, split = node.index('TOOLTIP="join:'), node.index('TOOLTIP="split:')
    assert join < node.index("<B>t</B>") < split  # join cell on the left, split cell on the right
    assert f">{join_glyph}</FONT>" in node[join:split]
    assert f">{split_glyph}</FONT>" in node[split:]
    # a task with one input and one output gets no decoration
    assert "TOOLTIP" not in dot_node(to_dot(spec), "t_b")


def test_dot_cancellation_mi_composite_and_notes() -> None:
    dot = to_dot(CANCEL)
    cancels = [line for line in dot.splitlines() if 'label="cancels"' in line]
    assert sorted(line.split(" [")[0].strip() for line in cancels) == ["t_watch -> c_pending", "t_watch -> t_work"]
    assert all("style=dashed" in line and "constraint=false" in line for line in cancels)
    assert "cancels: case" in dot_node(dot, "t_abort")
    nested = to_dot(NESTED)
    assert "peripheries=2" in dot_node(nested, "n0_t_handle")  # composite: double border
    assert "shape=box3d" in dot_node(nested, "n1_t_step")  # multiple instances: stacked
    assert "instances: 3" in dot_node(nested, "n1_t_step")
    assert "trigger: go (persistent)" in dot_node(nested, "n1_t_again")
    assert "arrowtail=odiamond" in next(line for line in to_dot(ODD).splitlines() if 'label="default"' in line)


def test_dot_renders_to_svg_with_graphviz() -> None:
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz's dot is not installed (apt install graphviz)")
    from defusedxml import ElementTree

    for spec in (ORDERS, CANCEL, NESTED, ODD):
        done = subprocess.run([dot, "-Tsvg"], input=to_dot(spec).encode(), capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode()
        root = ElementTree.fromstring(done.stdout)
        assert root.tag.endswith("svg")
        text = " ".join(t for t in root.itertext())
        for net in spec.nets:
            for task in net.tasks:
                assert task.name in text


def test_cli_show_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from kit import cli

    from yawlflow.cli import EXIT_BAD_INPUT, EXIT_COMPLETED

    path = str(ROOT / "examples" / "orders.yaml")
    code, out, _ = cli(capsys, "show", path, "--format", "dot")
    assert code == EXIT_COMPLETED and out == to_dot(ORDERS)
    if shutil.which("dot") is not None:
        code, out, _ = cli(capsys, "show", path, "--format", "svg")
        assert code == EXIT_COMPLETED and "<svg" in out
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, out, err = cli(capsys, "show", path, "--format", "svg")
    assert code == EXIT_BAD_INPUT and out == ""
    assert "yawlflow show --format svg needs Graphviz's dot: install graphviz (apt install graphviz" in err
    code, _, err = cli(capsys, "show")
    assert code == EXIT_BAD_INPUT and "name a SPEC file" in err


OVERLAY = """
yawlflow: 1
id: overlay
nets:
  main:
    input: start
    output: end
    tasks:
      a: {external: true, flows: [b, c]}
      b: {external: true, flows: [d]}
      c: {external: true, flows: [d]}
      d: {join: and, flows: [end]}
"""


@pytest.mark.anyio
async def test_cli_show_overlays_a_stored_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kit import cli

    from yawlflow.cli import EXIT_BAD_INPUT, EXIT_COMPLETED

    store = f"sqlite:///{tmp_path / 'cases.db'}"
    async with yf.Engine(store=store) as engine:
        case = await engine.start(yf.loads(OVERLAY, source="overlay.yaml"))
        (a,) = case.work_items("offered")
        await case.complete(a.id)
        b = next(item for item in case.work_items("offered") if item.task == "b")
        await case.start_item(b.id)
    code, dot, err = cli(capsys, "show", "--case", case.id, "--store", store, "--format", "dot")
    assert code == EXIT_COMPLETED, err
    assert f"case {case.id} (running)" in dot
    assert "completed \u00d71" in dot_node(dot, "t_a") and 'fillcolor="#d9d9d9"' in dot_node(dot, "t_a")
    assert "started \u00d71" in dot_node(dot, "t_b") and 'fillcolor="#a5d6a7"' in dot_node(dot, "t_b")
    assert "offered \u00d71" in dot_node(dot, "t_c") and 'fillcolor="#ffe082"' in dot_node(dot, "t_c")
    assert "completed" not in dot_node(dot, "t_d")
    # the token waiting for c sits on the arrow a -> c (its implicit condition); the path is blue
    a_c = next(line for line in dot.splitlines() if line.strip().startswith("t_a -> t_c"))
    assert 'label="●"' in a_c and 'color="#1565c0"' in a_c
    assert 'color="#1565c0"' in next(line for line in dot.splitlines() if line.strip().startswith("c_start ->"))
    assert 'color="#1565c0"' not in next(line for line in dot.splitlines() if line.strip().startswith("t_d ->"))
    # errors are located, never tracebacks
    code, _, err = cli(capsys, "show", "--case", "nope", "--store", store, "--format", "dot")
    assert code == EXIT_BAD_INPUT and "no case 'nope'" in err
    code, _, err = cli(capsys, "show", "--case", case.id, "--store", "memory://", "--format", "dot")
    assert code == EXIT_BAD_INPUT and "in-memory store" in err
    code, _, err = cli(capsys, "show", "--case", case.id, "--format", "dot")
    assert code == EXIT_BAD_INPUT and "--case and --store go together" in err
    code, _, err = cli(capsys, "show", "--case", case.id, "--store", store)
    assert code == EXIT_BAD_INPUT and "not mermaid" in err
