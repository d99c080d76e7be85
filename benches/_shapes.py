"""The workflow shapes the benches run, written once for yawlflow (spec data) and for
SpiffWorkflow (BPMN 2.0 XML), so that both engines run the same net.

Every shape is routing-only on both sides unless said otherwise: yawlflow routing tasks (no
``run:``, no ``external:``) and BPMN ``task`` elements (SpiffWorkflow's ``NoneTask``), which
``run_all(halt_on_manual=False)`` runs without a handler. The loop's counter is a CEL output
mapping in yawlflow and a ``scriptTask`` in BPMN.

The BPMN is generated into the envelope ``benches/data/process.bpmn`` (the loop is
``data/loop.bpmn`` as it stands); ``data/sequence3.bpmn`` and ``data/parallel3.bpmn`` are what
the generator writes for 3 tasks, to open in a BPMN editor.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = (
    "DATA",
    "auto_sequence",
    "bpmn_loop",
    "bpmn_parallel",
    "bpmn_sequence",
    "loop",
    "parallel",
    "sequence",
    "waiting",
)

DATA = Path(__file__).parent / "data"


# -- yawlflow ----------------------------------------------------------------------------------
def _net(name: str, tasks: dict[str, Any]) -> dict[str, Any]:
    return {"yawlflow": 1, "id": name, "nets": {"main": {"input": "start", "output": "end", "tasks": tasks}}}


def sequence(n: int) -> dict[str, Any]:
    """``t0 -> t1 -> ... -> t{n-1} -> end``, routing tasks."""
    return _net(f"seq{n}", {f"t{i}": {"flows": [f"t{i + 1}" if i + 1 < n else "end"]} for i in range(n)})


def auto_sequence(n: int, handler: str = "noop") -> dict[str, Any]:
    """``n`` automatic tasks in sequence, each running ``handler``."""
    return _net(
        f"auto{n}", {f"t{i}": {"run": handler, "flows": [f"t{i + 1}" if i + 1 < n else "end"]} for i in range(n)}
    )


def parallel(n: int) -> dict[str, Any]:
    """An AND split into ``n`` branches of one routing task each, and an AND join."""
    tasks: dict[str, Any] = {"split": {"split": "and", "flows": [f"b{i}" for i in range(n)]}}
    tasks.update({f"b{i}": {"flows": ["join"]} for i in range(n)})
    tasks["join"] = {"join": "and", "flows": ["end"]}
    return _net(f"par{n}", tasks)


def loop(n: int) -> dict[str, Any]:
    """An exclusive-choice loop of ``n`` iterations: ``inc`` adds 1 to ``i``, then loops while ``i < n``.

    Start it with ``{"i": 0}``.
    """
    flows = [{"to": "inc", "when": f"i < {n}"}, {"to": "end", "default": True}]
    return _net(f"loop{n}", {"inc": {"output": {"i": "i + 1"}, "split": "xor", "flows": flows}})


def waiting() -> dict[str, Any]:
    """One external task: a case of it waits until someone completes the item."""
    return _net("wait", {"approve": {"external": True, "flows": ["end"]}})


# -- BPMN for SpiffWorkflow --------------------------------------------------------------------
def _template(name: str) -> tuple[str, str]:
    """The template's text before and after its BODY marker, without its comments."""
    text = re.sub(r"<!--(?! BODY).*?-->\n?", "", (DATA / name).read_text(encoding="utf-8"), flags=re.S)
    head, _, tail = text.partition("<!-- BODY -->\n")
    return head, tail


def _flow(fid: str, src: str, dst: str, condition: str | None = None) -> str:
    cond = f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression>" if condition else ""
    return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{src}" targetRef="{dst}">{cond}</bpmn:sequenceFlow>'


def _document(parts: list[str]) -> str:
    head, tail = _template("process.bpmn")
    return head + "".join(f"    {part}\n" for part in parts) + tail


def bpmn_sequence(n: int) -> str:
    """start -> t0 -> ... -> t{n-1} -> end, BPMN ``task`` elements."""
    parts = ['<bpmn:startEvent id="start"/>', '<bpmn:endEvent id="end"/>']
    prev = "start"
    for i in range(n):
        parts.append(f'<bpmn:task id="t{i}"/>')
        parts.append(_flow(f"f{i}", prev, f"t{i}"))
        prev = f"t{i}"
    parts.append(_flow("f_end", prev, "end"))
    return _document(parts)


def bpmn_parallel(n: int) -> str:
    """A parallel gateway into ``n`` ``task`` branches and a parallel gateway joining them."""
    parts = [
        '<bpmn:startEvent id="start"/>', '<bpmn:parallelGateway id="split"/>',
        '<bpmn:parallelGateway id="join"/>', '<bpmn:endEvent id="end"/>',
        _flow("f_split", "start", "split"), _flow("f_end", "join", "end"),
    ]
    for i in range(n):
        parts += [f'<bpmn:task id="b{i}"/>', _flow(f"fa{i}", "split", f"b{i}"), _flow(f"fb{i}", f"b{i}", "join")]
    return _document(parts)


def bpmn_loop(n: int) -> str:
    """A script task ``i = i + 1`` and an exclusive gateway looping back while ``i < n``.

    Start it with ``i = 0`` in the workflow data.
    """
    return (DATA / "loop.bpmn").read_text(encoding="utf-8").replace("{N}", str(n))
