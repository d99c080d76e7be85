"""Malformed specs: every problem is reported, each with its place (line, path) and its fix."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from yawlflow._errors import Problem, SpecError
from yawlflow._spec import from_data, load, loads


def spec(tasks: str, after: str = "") -> str:
    """A spec whose net ``main`` has the given tasks (YAML, from line 8) and net keys after them."""
    head = "yawlflow: 1\nid: t\nnets:\n  main:\n    input: start\n    output: end\n    tasks:\n"
    body = textwrap.indent(textwrap.dedent(tasks).strip("\n"), " " * 6) + "\n"
    return head + body + (after.rstrip("\n") + "\n" if after else "")


def net_keys(text: str) -> str:
    return textwrap.indent(textwrap.dedent(text).strip("\n"), " " * 4)


def problems_of(text: str, **kwargs: Any) -> tuple[Problem, ...]:
    with pytest.raises(SpecError) as info:
        loads(text, source="spec.yaml", **kwargs)
    return info.value.problems


class Case(NamedTuple):
    id: str
    text: str
    line: int | None  # None: the problem has no line (data, or a whole-file problem)
    path: str
    message: str  # a regex, matched right after "spec.yaml:LINE:COL: PATH: "
    total: int = 1  # how many problems the spec has in all (no echoes of the one tested)


OK = "a: {flows: [end]}"

CASES = [
    # unknown keys, at every level, with "did you mean"
    Case(
        "unknown-top-key",
        spec(OK).replace("id: t\n", "id: t\nidd: x\n"),
        3,
        "$.idd",
        r"unknown key 'idd' \(did you mean 'id'\?\)",
    ),
    Case(
        "unknown-net-key",
        spec(OK, net_keys("termnation: explicit")),
        9,
        "$.nets.main.termnation",
        r"unknown key 'termnation' \(did you mean 'termination'\?\)",
    ),
    Case(
        "unknown-task-key",
        spec("a: {jion: and, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.jion",
        r"unknown key 'jion' \(did you mean 'join'\?\)",
    ),
    Case(
        "unknown-flow-key",
        spec("a:\n  split: xor\n  flows:\n    - {to: end, wen: x}"),
        11,
        "$.nets.main.tasks.a.flows[0].wen",
        r"unknown key 'wen' \(did you mean 'when'\?\)",
    ),
    Case(
        "unknown-key-no-guess",
        spec("a: {zzz: 1, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.zzz",
        r"unknown key 'zzz' \(use one of: flows, run, external, join, split, ",
    ),
    # wrong types
    Case(
        "order-not-int",
        spec("a:\n  split: xor\n  flows: [{to: end, order: x}]"),
        10,
        "$.nets.main.tasks.a.flows[0].order",
        r"expected an integer, got str 'x'",
    ),
    Case(
        "external-not-bool",
        spec("a: {external: maybe, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.external",
        r"expected true or false, got str 'maybe'",
    ),
    Case(
        "tasks-not-mapping",
        spec("").replace("    tasks:\n", "    tasks: [a, b]\n"),
        7,
        "$.nets.main.tasks",
        r"expected a mapping of task names to tasks, got a list",
    ),
    Case(
        "flow-target-not-string",
        spec("a: {flows: [1]}"),
        8,
        "$.nets.main.tasks.a.flows[0]",
        r"expected a flow \(a target name, or \{to: name, when: \.\.\.\}\), got int 1",
    ),
    Case(
        "cancels-not-list",
        spec("a: {cancels: b, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.cancels",
        r"expected a list of names, got str 'b' \(write \[b\]\)",
    ),
    # required keys, version, root
    Case(
        "missing-input",
        spec(OK).replace("    input: start\n", ""),
        5,
        "$.nets.main",
        r"missing key 'input' \(add input: ",
    ),
    Case(
        "missing-output",
        spec(OK).replace("    output: end\n", ""),
        5,
        "$.nets.main",
        r"missing key 'output' \(add output: ",
    ),
    Case("missing-nets", "yawlflow: 1\nid: t\n", 1, "$", r"missing key 'nets'"),
    Case(
        "version-2",
        spec(OK).replace("yawlflow: 1", "yawlflow: 2"),
        1,
        "$.yawlflow",
        r"unsupported format version 2 \(this yawlflow reads version 1\) \(write yawlflow: 1\)",
    ),
    Case(
        "root-names-missing-net",
        spec(OK).replace("id: t\n", "id: t\nroot: mian\n"),
        3,
        "$.root",
        r"no net 'mian' \(did you mean 'main'\?\)",
    ),
    Case(
        "no-root-several-nets",
        spec(OK) + "  other:\n    input: i\n    output: o\n    tasks:\n      b: {flows: [o]}\n",
        1,
        "$",
        r"no root, and the spec has 2 nets \(add root: one of main, other\)",
    ),
    # flows and the graph
    Case(
        "flow-to-missing-element",
        spec("receive: {flows: [chek]}\ncheck_credit: {flows: [end]}"),
        8,
        "$.nets.main.tasks.receive.flows[0]",
        r"no task or condition 'chek' \(did you mean 'check_credit'\?\)",
    ),
    Case(
        "output-with-flows",
        spec(OK, net_keys("conditions:\n  end: {flows: [a]}")),
        10,
        "$.nets.main.conditions.end.flows",
        r"the output condition 'end' has outgoing flows",
    ),
    Case(
        "flow-into-input",
        spec("a: {flows: [start, end]}"),
        8,
        "$.nets.main.tasks.a.flows[0]",
        r"a flow into the input condition 'start'",
    ),
    Case(
        "unreachable-task",
        spec("a: {flows: [end]}\nb: {flows: [end]}"),
        9,
        "$.nets.main.tasks.b",
        r"task 'b' cannot be reached from the input condition 'start' \(add a flow into it, or remove it\)",
    ),
    Case(
        "unreachable-condition",
        spec(OK, net_keys("conditions:\n  lost: {flows: [a]}")),
        10,
        "$.nets.main.conditions.lost",
        r"condition 'lost' cannot be reached",
    ),
    Case(
        "no-path-to-output",
        spec("a: {flows: [b]}\nb: {flows: [a]}"),
        5,
        "$.nets.main",
        r"no path from the input condition 'start' to the output condition 'end'",
    ),
    Case(
        "implicit-termination-reports-only-unreachable",
        spec("a: {flows: [a]}\nb: {}", net_keys("termination: implicit")),
        9,
        "$.nets.main.tasks.b",
        r"task 'b' cannot be reached",
    ),
    Case(
        "task-and-condition-share-a-name",
        spec(OK, net_keys("conditions:\n  a: {flows: [a]}")),
        10,
        "$.nets.main.conditions.a",
        r"'a' is both a task and a condition",
    ),
    Case(
        "condition-to-condition",
        spec("a: {flows: [mid]}", net_keys("conditions:\n  mid: {flows: [end]}")),
        10,
        "$.nets.main.conditions.mid.flows[0]",
        r"a condition flows only into tasks, and 'end' is a condition",
    ),
    Case(
        "condition-flow-with-when",
        spec(
            "a: {flows: [mid]}\nb: {flows: [end]}",
            net_keys("conditions:\n  mid: {flows: [{to: b, when: ok}]}"),
        ),
        11,
        "$.nets.main.conditions.mid.flows[0].when",
        r"a condition's flows take no 'when'",
    ),
    Case(
        "duplicate-flow-target",
        spec("a: {flows: [end, end]}"),
        8,
        "$.nets.main.tasks.a.flows[1]",
        r"a second flow to 'end'",
    ),
    # splits
    Case(
        "when-on-and-split",
        spec("a:\n  flows:\n    - {to: end, when: 'x > 1'}"),
        10,
        "$.nets.main.tasks.a.flows[0].when",
        r"'when' needs an xor or or split, but this task's split is and",
    ),
    Case(
        "when-on-threads-split",
        spec("a:\n  split: {threads: 2}\n  flows:\n    - {to: end, when: 'x > 1'}"),
        11,
        "$.nets.main.tasks.a.flows[0].when",
        r"'when' needs an xor or or split, but this task's split is \{threads: 2\}",
    ),
    Case(
        "two-defaults",
        spec(
            "a:\n  split: xor\n  flows:\n    - {to: b, default: true}\n    - {to: end, default: true}\n"
            "b: {flows: [end]}"
        ),
        12,
        "$.nets.main.tasks.a.flows[1]",
        r"more than one default flow \(flows\[0\] is already the default",
    ),
    Case(
        "default-with-when",
        spec("a:\n  split: or\n  flows:\n    - {to: end, when: ok, default: true}"),
        11,
        "$.nets.main.tasks.a.flows[0]",
        r"a default flow takes no 'when'",
    ),
    Case(
        "unknown-join",
        spec("a: {join: andd, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.join",
        r"unknown join 'andd' \(use one of: and, or, xor, \{partial: N\}, \{threads: N\}\)",
    ),
    Case(
        "unknown-split",
        spec("a: {split: nand, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.split",
        r"unknown split 'nand' \(use one of: and, xor, or, \{threads: N\}\)",
    ),
    # CEL
    Case(
        "bad-cel-in-when",
        spec("a:\n  split: xor\n  flows:\n    - {to: end, when: 'amount >'}"),
        11,
        "$.nets.main.tasks.a.flows[0].when",
        r"bad CEL: mismatched input '<EOF>' at column 9 of 'amount >'",
    ),
    Case(
        "bad-cel-in-loop",
        spec("a: {loop: {while: 'n <'}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.loop.while",
        r"bad CEL: ",
    ),
    Case(
        "bad-cel-in-input-mapping",
        spec("a: {input: {x: 'a +* b'}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.input.x",
        r"bad CEL: ",
    ),
    Case(
        "bad-cel-in-output-mapping",
        spec("a: {output: {x: '(('}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.output.x",
        r"bad CEL: ",
    ),
    Case(
        "bad-cel-in-instances-items",
        spec("a: {instances: {items: '[1, 2'}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.instances.items",
        r"bad CEL: ",
    ),
    Case(
        "bad-cel-in-instances-count",
        spec("a: {instances: {count: 'n >>'}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.instances.count",
        r"bad CEL: ",
    ),
    Case(
        "empty-cel",
        spec("a:\n  split: xor\n  flows:\n    - {to: end, when: ''}"),
        11,
        "$.nets.main.tasks.a.flows[0].when",
        r"expected a CEL expression, got an empty string",
    ),
    # references
    Case(
        "cancels-missing",
        spec("a: {cancels: [nope], flows: [end]}"),
        8,
        "$.nets.main.tasks.a.cancels[0]",
        r"no task or condition 'nope'",
    ),
    Case(
        "completes-not-multiple-instance",
        spec("a: {completes: [b], flows: [b]}\nb: {flows: [end]}"),
        8,
        "$.nets.main.tasks.a.completes[0]",
        r"'b' is not a multiple-instance task",
    ),
    Case(
        "milestone-names-a-task",
        spec("a: {milestone: [b], flows: [b]}\nb: {flows: [end]}"),
        8,
        "$.nets.main.tasks.a.milestone[0]",
        r"milestone names conditions, and 'b' is a task",
    ),
    Case(
        "milestone-missing",
        spec("a: {milestone: [gate], flows: [end]}"),
        8,
        "$.nets.main.tasks.a.milestone[0]",
        r"no condition 'gate'",
    ),
    Case(
        "net-missing",
        spec("a: {net: mian, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.net",
        r"no net 'mian' \(did you mean 'main'\?\)",
    ),
    Case(
        "mutex-missing-task",
        spec(OK, net_keys("mutex: {db: [a, nope]}")),
        9,
        "$.nets.main.mutex.db[1]",
        r"no task 'nope'",
    ),
    # attributes
    Case(
        "loop-with-instances",
        spec("a: {loop: {while: 'n < 3'}, instances: {count: 2}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.instances",
        r"loop and instances cannot be combined",
    ),
    Case(
        "loop-with-both",
        spec("a: {loop: {while: x, until: y}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.loop",
        r"a loop needs while or until, and has both",
    ),
    Case(
        "loop-with-neither",
        spec("a: {loop: {}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.loop",
        r"a loop needs while or until, and has neither",
    ),
    Case(
        "trigger-without-signal",
        spec("a: {trigger: {persistent: true}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.trigger",
        r"missing key 'signal'",
    ),
    Case(
        "partial-join-above-inputs",
        spec("a: {flows: [b, c]}\nb: {flows: [d]}\nc: {flows: [d]}\nd: {join: {partial: 3}, flows: [end]}"),
        11,
        "$.nets.main.tasks.d.join.partial",
        r"partial join needs 1 <= N <= 2 \(its incoming flows\), got N=3",
    ),
    Case(
        "partial-join-zero",
        spec("a: {join: {partial: 0}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.join.partial",
        r"join.partial must be at least 1, got 0",
    ),
    Case(
        "partial-and-threads",
        spec("a: {join: {partial: 1, threads: 2}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.join",
        r"a join mapping needs partial: N or threads: N, and has both",
    ),
    Case(
        "threads-join-zero",
        spec("a: {join: {threads: 0}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.join.threads",
        r"join.threads must be at least 1, got 0",
    ),
    Case(
        "threads-split-zero",
        spec("a: {split: {threads: 0}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.split.threads",
        r"split.threads must be at least 1, got 0",
    ),
    Case(
        "bad-duration",
        spec("a: {timeout: 10 parsecs, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.timeout",
        r"bad duration: not a duration: '10 parsecs' \(write e.g. '10s'",
    ),
    Case(
        "duration-in-years",
        spec("a: {timer: {after: P1Y}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.timer.after",
        r"bad duration: .*years or months",
    ),
    Case(
        "duration-as-number",
        spec("a: {timeout: 10, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.timeout",
        r"expected a duration, got int 10 \(write '10s' for 10 seconds\)",
    ),
    Case(
        "zero-timeout",
        spec("a: {timeout: 0s, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.timeout",
        r"a.timeout must be longer than zero",
    ),
    Case(
        "instances-min-above-max",
        spec("a: {instances: {min: 5, max: 3}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.instances.min",
        r"min 5 is greater than max 3",
    ),
    Case(
        "instances-count-and-items",
        spec("a: {instances: {count: 2, items: xs}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.instances",
        r"count and items both given",
    ),
    Case(
        "retry-attempts-zero",
        spec("a: {retry: {attempts: 0}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.retry.attempts",
        r"retry.attempts must be at least 1, got 0",
    ),
    Case(
        "unknown-strategy",
        spec("a: {strategy: rayy, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.strategy",
        r"unknown strategy 'rayy' \(did you mean 'ray'\? use one of: inline, thread, process, ray\)",
    ),
    Case(
        "run-and-external",
        spec("a: {run: h, external: true, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.external",
        r"a task runs a handler or is offered \(external\), not both",
    ),
    Case(
        "run-and-net",
        spec("a: {run: h, net: main, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.net",
        r"a composite task runs its sub-net, not a handler",
    ),
    Case(
        "bad-handler-reference",
        spec("a: {run: 'pkg.mod:', flows: [end]}"),
        8,
        "$.nets.main.tasks.a.run",
        r"bad handler reference 'pkg.mod:' \(write a registry name, or package.module:function\)",
    ),
    Case(
        "config-without-connector",
        spec("a: {run: {handler: h, config: {}}, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.run.config",
        r"config applies to a connector only",
    ),
    # YAML itself
    Case(
        "duplicate-yaml-key",
        spec("a: {flows: [end]}\na: {flows: [end]}"),
        9,
        "$.nets.main.tasks.a",
        r"duplicate key 'a' \(first on line 8\)",
    ),
    Case(
        "unsafe-yaml-tag",
        spec("a: {run: !!python/object/apply:os.system [ls], flows: [end]}"),
        8,
        "$.nets.main.tasks.a.run",
        r"unsupported YAML tag '!!python/object/apply:os.system'",
    ),
    Case(
        "unsafe-yaml-scalar-tag",
        spec("a: {run: !!python/name:os.system x, flows: [end]}"),
        8,
        "$.nets.main.tasks.a.run",
        r"unsupported YAML tag '!!python/name:os.system'",
    ),
    Case("top-level-list", "- a\n- b\n", 1, "$", r"expected a mapping at the top level, got a list"),
    Case("top-level-scalar", "hello\n", 1, "$", r"expected a mapping at the top level, got str 'hello'"),
]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 35
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed(case: Case) -> None:
    problems = problems_of(case.text)
    where = f"spec\\.yaml:{case.line}:\\d+" if case.line is not None else "spec\\.yaml"
    pattern = re.compile(f"{where}: {re.escape(case.path)}: {case.message}")
    listed = "\n".join(str(p) for p in problems)
    assert any(pattern.match(str(p)) for p in problems), (
        f"no problem matches {pattern.pattern!r} in:\n{listed}"
    )
    assert len(problems) == case.total, listed


def test_every_problem_is_reported_at_once() -> None:
    text = textwrap.dedent(
        """\
        yawlflow: 1
        id: orders
        nets:
          main:
            input: start
            output: end
            tasks:
              receive:
                run: receive_order
                split: xor
                flows:
                  - {to: chek, when: "amount >"}
                  - {to: ship, default: true}
              check_credit: {flows: [end]}
              ship:
                join: andd
                timeout: soon
                retry: {attempts: 0}
                flows: [end]
              orphan: {flows: [end], strategy: fast}
            mutex: {db: [ghost]}
        """
    )
    problems = problems_of(text)
    got = [(p.line, p.path, p.message.split(" (")[0]) for p in problems]
    assert got == [
        (12, "$.nets.main.tasks.receive.flows[0]", "no task or condition 'chek'"),
        (
            12,
            "$.nets.main.tasks.receive.flows[0].when",
            "bad CEL: mismatched input '<EOF>' at column 9 of 'amount >'",
        ),
        (16, "$.nets.main.tasks.ship.join", "unknown join 'andd'"),
        (17, "$.nets.main.tasks.ship.timeout", "bad duration: not a duration: 'soon'"),
        (18, "$.nets.main.tasks.ship.retry.attempts", "retry.attempts must be at least 1, got 0"),
        (20, "$.nets.main.tasks.orphan", "task 'orphan' cannot be reached from the input condition 'start'"),
        (20, "$.nets.main.tasks.orphan.strategy", "unknown strategy 'fast'"),
        (21, "$.nets.main.mutex.db[0]", "no task 'ghost'"),
    ]
    assert all(p.source == "spec.yaml" and p.column is not None for p in problems)
    assert all(p.hint for p in problems)


def test_problem_fields_and_text() -> None:
    (problem,) = problems_of(spec("a: {join: andd, flows: [end]}"))
    assert problem == Problem(
        source="spec.yaml",
        path="$.nets.main.tasks.a.join",
        message="unknown join 'andd'",
        hint="use one of: and, or, xor, {partial: N}, {threads: N}",
        line=8,
        column=17,
    )
    assert str(problem) == (
        "spec.yaml:8:17: $.nets.main.tasks.a.join: unknown join 'andd' "
        "(use one of: and, or, xor, {partial: N}, {threads: N})"
    )


def test_names_that_are_not_plain_are_quoted_in_paths() -> None:
    (problem,) = problems_of(spec('"ship it": {join: andd, flows: [end]}'))
    assert problem.path == '$.nets.main.tasks["ship it"].join'


# -- JSON ------------------------------------------------------------------------------------------------


def test_json_problems_are_located(tmp_path: Path) -> None:
    data = {
        "yawlflow": 1,
        "id": "t",
        "nets": {
            "main": {"input": "s", "output": "e", "tasks": {"a": {"join": "andd", "flows": ["e", "chek"]}}}
        },
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(SpecError) as info:
        load(path)
    got = [(p.line, p.column, p.path, p.message) for p in info.value.problems]
    assert got == [
        (10, 19, "$.nets.main.tasks.a.join", "unknown join 'andd'"),
        (13, 13, "$.nets.main.tasks.a.flows[1]", "no task or condition 'chek'"),
    ]


def test_json_syntax_error_is_located(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text('{\n  "yawlflow": 1,\n  "nets": {,}\n}\n')
    with pytest.raises(SpecError, match=r"spec\.json:3:\d+: \$: JSON syntax error: ") as info:
        load(path)
    assert info.value.problems[0].line == 3


def test_json_truncated(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text('{\n  "yawlflow": 1,\n  "nets": {')
    with pytest.raises(SpecError, match=r"spec\.json:3:\d+: \$: JSON syntax error: the JSON ends too early"):
        load(path)


# -- files -------------------------------------------------------------------------------------------------


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match=rf"^{re.escape(str(path))}: \$: no such file \(check the path"):
        load(path)


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "specs.yaml"
    path.mkdir()
    with pytest.raises(SpecError, match=r"specs\.yaml: \$: is a directory, not a spec file \(name a \.yaml"):
        load(path)


@pytest.mark.parametrize("name", ["spec.txt", "spec"])  # .ywc: tests/spec/test_ywc.py; .yawl, .xml: tests/yawl
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("yawlflow: 1\n")
    with pytest.raises(
        SpecError,
        match=r"unsupported spec file extension .* \(use one of: \.json, \.xml, \.yaml, \.yawl, \.yml, \.ywc\)",
    ):
        load(path)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_non_utf8_bytes(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"spec{suffix}"
    text = spec(OK) if suffix == ".yaml" else json.dumps({"yawlflow": 1, "id": "t"}, indent=1)
    raw = text.encode().replace(b"t", b"\xff", 1)  # the first 't': in "yawlflow", line 1 / line 2
    path.write_bytes(raw)
    with pytest.raises(
        SpecError, match=r"not UTF-8: byte 0xff at offset \d+ .*\(save the file as UTF-8\)"
    ) as info:
        load(path)
    (problem,) = info.value.problems
    assert problem.line == raw[: raw.index(b"\xff")].count(b"\n") + 1
    assert problem.column == raw.index(b"\xff") - raw.rfind(b"\n", 0, raw.index(b"\xff"))


def test_non_utf8_bytes_in_loads() -> None:
    with pytest.raises(SpecError, match=r"<string>:2:5: \$: not UTF-8: byte 0xc3 at offset 16"):
        loads(b"yawlflow: 1\nid: \xc3(\n")


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(spec(OK).replace("a: {flows: [end]}", "a: {flows: [end]"))
    with pytest.raises(
        SpecError, match=r"spec\.yaml:9:\d+: \$: YAML syntax error: .*\(check the indentation"
    ) as info:
        load(path)
    assert len(info.value.problems) == 1


def test_yaml_bad_indentation() -> None:
    problems = problems_of("yawlflow: 1\nnets:\n  main:\n   input: s\n  output: e\n    tasks: {}\n")
    assert problems[0].line == 6 and problems[0].message.startswith("YAML syntax error")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"spec{suffix}"
    path.write_text("")
    with pytest.raises(
        SpecError, match=r"spec\.(yaml|json): \$: the spec is empty \(a spec starts with yawlflow: 1"
    ):
        load(path)


@pytest.mark.parametrize(
    ("text", "fmt"), [("# only a comment\n", "yaml"), ("   \n", "json"), ("null", "json")]
)
def test_empty_documents(text: str, fmt: Any) -> None:
    with pytest.raises(SpecError, match=r"the spec is empty"):
        loads(text, format=fmt)


def test_several_yaml_documents() -> None:
    with pytest.raises(SpecError, match=r"<string>:\d+:1: \$: more than one YAML document"):
        loads(spec(OK) + "---\n" + spec(OK))


# -- hostile input: each is refused, with the limit it broke ---------------------------------------------


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_over_the_size_cap_is_refused_before_reading(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"big{suffix}"
    with path.open("wb") as handle:  # 50 MB, sparse: nothing is written but the size
        handle.truncate(50 * 1024 * 1024)
    with pytest.raises(
        SpecError, match=r"big\.(yaml|json): \$: the spec is 50\.0 MiB, over the limit of 16 MiB"
    ):
        load(path)


def test_text_over_the_size_cap() -> None:
    with pytest.raises(SpecError, match=r"over the limit of 16 MiB"):
        loads(" " * (16 * 1024 * 1024 + 1))


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".yaml", "[" * 10_000 + "]" * 10_000),
        (".yaml", "a:\n" + "".join(" " * i + "- \n" for i in range(1, 2_000)) + " " * 2000 + "x\n"),
        (".json", "[" * 10_000 + "]" * 10_000),
        (".json", '{"a":' * 10_000 + "1" + "}" * 10_000),
        (".json", "[" * 100 + "]" * 100),  # decodes, but deeper than a spec may be
    ],
    ids=["yaml-flow", "yaml-block", "json-lists", "json-objects", "json-100"],
)
def test_deep_nesting(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text(text)
    with pytest.raises(SpecError, match=r"nesting deeper than 64 levels \(a spec needs about ten levels"):
        load(path)


def test_deep_or_cyclic_python_data() -> None:
    deep: list[Any] = []
    for _ in range(10_000):
        deep = [deep]
    cyclic: dict[str, Any] = {"yawlflow": 1}
    cyclic["nets"] = cyclic
    for data in ({"nets": deep}, cyclic):
        with pytest.raises(SpecError, match=r"^<string>: \$: nesting deeper than 64 levels"):
            from_data(data)


BILLION_LAUGHS = """\
yawlflow: 1
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_alias_bomb(tmp_path: Path) -> None:
    path = tmp_path / "lol.yaml"
    path.write_text(BILLION_LAUGHS)
    with pytest.raises(
        SpecError, match=r"lol\.yaml:6:\d+: \$\.e\[\d+\]: aliases expand to more than 10,000 nodes"
    ) as info:
        load(path)
    assert len(info.value.problems) == 1


def test_recursive_and_undefined_aliases() -> None:
    with pytest.raises(SpecError, match=r"<string>:1:8: \$\.a\[0\]: alias \*a refers to itself"):
        loads("a: &a [*a]\n")
    with pytest.raises(SpecError, match=r"<string>:1:4: \$\.a: undefined alias \*nope"):
        loads("a: *nope\n")


def test_aliases_within_budget_are_fine() -> None:
    text = spec("a: &t {flows: [b]}\nb: {flows: [end]}\nc: *t").replace("c: *t\n", "")
    assert loads(text).net("main").task("a") is not None


def test_problems_never_escape_as_other_exceptions(tmp_path: Path) -> None:
    # a few more shapes that once were tracebacks in other loaders
    for text in ["? [a, b]\n: 1\n", "a: !!binary aGVsbG8=\n", "*x\n", "&a a: 1\n", "a: b: c\n", "\t\n"]:
        with pytest.raises(SpecError):
            loads(text)
    with pytest.raises(SpecError):
        from_data({1: 2})  # type: ignore[dict-item]
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.yaml"
        os.mkfifo(fifo)
        with pytest.raises(SpecError, match=r"not a regular file"):
            load(fifo)
