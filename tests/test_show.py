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
            rf"class {_ID} (condition|inputCondition|outputCondition|task|externalTask|compositeTask)",
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
    dot = to_dot(CANCEL)
    assert 't_watch -> t_work [style=dashed, label="cancels"];' in dot
    assert 'c_start [shape=doublecircle, label="▶ start"];' in dot
    assert 'c_pending [shape=circle, label="pending"];' in dot
    assert "subgraph cluster_n1 {" in to_dot(NESTED)
    assert 'n0_t_handle [shape=box, label="handle\\njoin: threads 2\\nnet: sub", peripheries=2];' in to_dot(
        NESTED
    )
    assert '[label="who == \\"x|y\\" || n < 3 && m > 2"]' in to_dot(ODD)


def test_dot_renders_with_graphviz_when_installed() -> None:
    dot = shutil.which("dot")
    text = to_dot(NESTED)
    if dot is None:
        # Without Graphviz, check the statements' shape instead.
        body = [line.strip() for line in text.splitlines()[1:-1]]
        assert all(line.endswith((";", "{", "}")) for line in body), body
        return
    done = subprocess.run([dot, "-Tsvg"], input=text.encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert b"<svg" in done.stdout
