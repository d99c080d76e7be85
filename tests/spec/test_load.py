"""Good specs load to the normalised model: shorthand expanded, defaults filled, round trips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

import yawlflow as yf
from yawlflow._spec import (
    ConditionSpec,
    FlowSpec,
    InstancesSpec,
    JoinSpec,
    LoopSpec,
    NetSpec,
    RetrySpec,
    RunSpec,
    Spec,
    SplitSpec,
    TaskSpec,
    TimerSpec,
    TriggerSpec,
    from_data,
    load,
    loads,
    to_builtins,
)
from yawlflow._spec._yaml import compose

DATA = Path(__file__).parent / "data"


def one_task(attrs: str) -> str:
    """A one-net spec whose task ``t`` has the given attributes (YAML flow mapping body)."""
    return textwrap.dedent(
        f"""\
        yawlflow: 1
        id: t
        nets:
          main:
            input: start
            output: end
            tasks:
              t: {{{attrs}}}
              u: {{flows: [end]}}
        """
    )


def plain(text: str) -> Any:
    """YAML to plain data as the loader reads it (``yaml.safe_load`` reads the key ``on`` as True)."""
    return compose(text, "<test>")[0]


def task_of(text: str, name: str = "t") -> TaskSpec:
    task = loads(text).net("main").task(name)
    assert task is not None
    return task


# -- the example of ARCHITECTURE.md §3 ------------------------------------------------------------


def test_orders_example_loads_to_the_normalised_model() -> None:
    spec = load(DATA / "orders.yaml")
    expected = Spec(
        id="orders",
        root="main",
        source=str(DATA / "orders.yaml"),
        nets=(
            NetSpec(
                name="main",
                input="start",
                output="end",
                conditions=(
                    ConditionSpec(name="start", flows=(FlowSpec(to="receive"),)),
                    ConditionSpec(name="waiting", flows=(FlowSpec(to="approve"), FlowSpec(to="withdraw"))),
                ),
                tasks=(
                    TaskSpec(
                        name="receive",
                        run=RunSpec(handler="receive_order"),
                        split=SplitSpec(kind="xor"),
                        flows=(
                            FlowSpec(to="waiting", when="amount > 1000", order=1),
                            FlowSpec(to="ship", default=True),
                        ),
                    ),
                    TaskSpec(name="approve", external=True, flows=(FlowSpec(to="ship"),)),
                    TaskSpec(name="withdraw", external=True, flows=(FlowSpec(to="end"),)),
                    TaskSpec(name="ship", join=JoinSpec(kind="xor"), flows=(FlowSpec(to="end"),)),
                ),
            ),
        ),
    )
    assert spec == expected


def test_source_is_the_path_as_given(tmp_path: Path) -> None:
    (tmp_path / "orders.yaml").write_bytes((DATA / "orders.yaml").read_bytes())
    assert load(tmp_path / "orders.yaml").source == str(tmp_path / "orders.yaml")
    assert load(str(tmp_path / "orders.yaml")).source == str(tmp_path / "orders.yaml")


# -- shorthand and defaults -------------------------------------------------------------------------

SHORTHAND = [
    ("flows: [u]", "flows", (FlowSpec(to="u"),)),
    ("flows: [{to: u}]", "flows", (FlowSpec(to="u"),)),
    ("join: or, flows: [u]", "join", JoinSpec(kind="or")),
    ("join: and, flows: [u]", "join", JoinSpec(kind="and")),
    ("join: {threads: 3}, flows: [u]", "join", JoinSpec(kind="threads", n=3)),
    ("split: {threads: 4}, flows: [u]", "split", SplitSpec(kind="threads", n=4)),
    ("split: xor, flows: [u]", "split", SplitSpec(kind="xor")),
    ("run: receive_order, flows: [u]", "run", RunSpec(handler="receive_order")),
    ("run: 'pkg.mod:func', flows: [u]", "run", RunSpec(handler="pkg.mod:func")),
    ("run: {handler: h}, flows: [u]", "run", RunSpec(handler="h")),
    (
        "run: {connector: http, config: {url: 'https://x'}}, flows: [u]",
        "run",
        RunSpec(connector="http", config={"url": "https://x"}),
    ),
    ("run: {connector: shell, config: {command: echo}}, flows: [u]", "run",
     RunSpec(connector="shell", config={"command": "echo"})),
    ("run: {connector: not_installed_here}, flows: [u]", "run", RunSpec(connector="not_installed_here")),
    ("timeout: 10s, flows: [u]", "timeout_ns", 10_000_000_000),
    ("timeout: 100ms, flows: [u]", "timeout_ns", 100_000_000),
    ("timeout: 2m, flows: [u]", "timeout_ns", 120_000_000_000),
    ("timeout: 1h, flows: [u]", "timeout_ns", 3_600_000_000_000),
    ("timeout: 1d, flows: [u]", "timeout_ns", 86_400_000_000_000),
    ("timeout: PT30S, flows: [u]", "timeout_ns", 30_000_000_000),
    ("timeout: P1DT1H, flows: [u]", "timeout_ns", 90_000_000_000_000),
    ("timeout: 1h30m, flows: [u]", "timeout_ns", 5_400_000_000_000),
    ("timeout: 0.1s, flows: [u]", "timeout_ns", 100_000_000),
    ("timeout: PT30S, flows: [u]", "timeout", "PT30S"),
    ("timer: {after: 10s}, flows: [u]", "timer", TimerSpec(after="10s", after_ns=10_000_000_000)),
    ("timer: 250ms, flows: [u]", "timer", TimerSpec(after="250ms", after_ns=250_000_000)),
    ("loop: {while: 'n < 3'}, flows: [u]", "loop", LoopSpec(while_="n < 3")),
    ("loop: {until: done}, flows: [u]", "loop", LoopSpec(until="done")),
    ("trigger: paid, flows: [u]", "trigger", TriggerSpec(signal="paid")),
    (
        "trigger: {signal: paid, persistent: true}, flows: [u]",
        "trigger",
        TriggerSpec(signal="paid", persistent=True),
    ),
    (
        "instances: {items: orders, as: results, max: 5}, flows: [u]",
        "instances",
        InstancesSpec(items="orders", as_="results", max=5),
    ),
    ("instances: {count: 'n * 2'}, flows: [u]", "instances", InstancesSpec(count="n * 2")),
    ("instances: {count: 3, threshold: 2}, flows: [u]", "instances", InstancesSpec(count=3, threshold=2)),
    (
        "retry: {attempts: 3, backoff: 1s, on: [TimeoutError]}, flows: [u]",
        "retry",
        RetrySpec(attempts=3, backoff="1s", backoff_ns=1_000_000_000, on=("TimeoutError",)),
    ),
    ("retry: {}, flows: [u]", "retry", RetrySpec()),
    ("input: {total: 'amount * 2'}, flows: [u]", "input", {"total": "amount * 2"}),
    ("strategy: process, flows: [u]", "strategy", "process"),
    ("critical: false, flows: [u]", "critical", False),
    ("external: true, flows: [u]", "external", True),
]


@pytest.mark.parametrize(("attrs", "field", "expected"), SHORTHAND, ids=[c[0] for c in SHORTHAND])
def test_shorthand_is_expanded(attrs: str, field: str, expected: Any) -> None:
    assert getattr(task_of(one_task(attrs)), field) == expected


def test_partial_join_with_reset() -> None:
    text = textwrap.dedent(
        """\
        yawlflow: 1
        id: t
        nets:
          main:
            input: start
            output: end
            tasks:
              a: {split: and, flows: [b, c]}
              b: {flows: [d]}
              c: {flows: [d]}
              d: {join: {partial: 2, reset: cancel}, flows: [end]}
        """
    )
    assert task_of(text, "d").join == JoinSpec(kind="partial", n=2, reset="cancel")


def test_defaults() -> None:
    spec = loads(one_task("flows: [u]"))
    net = spec.net("main")
    task = net.task("t")
    assert task is not None
    assert task.join == JoinSpec(kind="xor")
    assert task.split == SplitSpec(kind="and")
    assert (task.critical, task.external, task.run, task.instances) == (True, False, None, None)
    assert net.termination == "explicit"
    assert net.mutex == {}
    assert spec.version == 1


def test_root_is_inferred_with_one_net() -> None:
    assert loads(one_task("flows: [u]")).root == "main"


def test_missing_version_and_id_default() -> None:
    text = one_task("flows: [u]").replace("yawlflow: 1\nid: t\n", "")
    spec = loads(text, source="dir/orders.yaml")
    assert (spec.version, spec.id) == (1, "orders")
    assert loads(text).id == "main"  # no file name: the root net's


def test_input_condition_flow_is_made_explicit() -> None:
    net = loads(one_task("flows: [u]")).net("main")
    assert net.conditions == (ConditionSpec(name="start", flows=(FlowSpec(to="t"),)),)


def test_explicit_input_condition_comes_first_and_keeps_its_flows() -> None:
    text = textwrap.dedent(
        """\
        yawlflow: 1
        id: t
        nets:
          main:
            input: start
            output: end
            conditions:
              later: {flows: [b]}
              start: {flows: [a, b]}
              sink:
            tasks:
              a: {flows: [later]}
              b: {flows: [end, sink]}
            termination: implicit
        """
    )
    net = loads(text).net("main")
    assert [c.name for c in net.conditions] == ["start", "later", "sink"]
    assert net.conditions[0].flows == (FlowSpec(to="a"), FlowSpec(to="b"))
    assert net.conditions[2].flows == ()


def test_mutex_regions_are_tuples_of_tuples() -> None:
    text = one_task("flows: [u]").replace("    tasks:", "    mutex: {db: [t, [u]], io: [[t, u]]}\n    tasks:")
    assert loads(text).net("main").mutex == {"db": (("t",), ("u",)), "io": (("t", "u"),)}


def test_choosing_split_without_default_is_allowed() -> None:
    task = task_of(one_task("split: xor, flows: [{to: u, when: 'a > 1'}, {to: end, when: 'a <= 1'}]"))
    assert task.flows == (FlowSpec(to="u", when="a > 1"), FlowSpec(to="end", when="a <= 1"))


def test_self_loop_is_allowed() -> None:
    task = task_of(one_task("split: xor, flows: [{to: t, when: again}, {to: u, default: true}]"))
    assert task.flows[0] == FlowSpec(to="t", when="again")


# -- YAML details -------------------------------------------------------------------------------------


def test_yaml_keys_are_taken_as_written() -> None:
    # YAML 1.1 reads a plain `on` as True; as a key it must stay "on" (retry.on)
    task = task_of(one_task("retry: {on: [TimeoutError]}, flows: [u]"))
    assert task.retry == RetrySpec(on=("TimeoutError",))


def test_yaml_dates_stay_strings() -> None:
    assert loads(one_task("flows: [u]").replace("id: t", "id: 2024-01-31")).id == "2024-01-31"


def test_yaml_merge_keys() -> None:
    text = textwrap.dedent(
        """\
        yawlflow: 1
        id: t
        nets:
          main:
            input: start
            output: end
            tasks:
              t: &common {retry: {attempts: 3}, strategy: thread, flows: [u]}
              u:
                <<: *common
                flows: [end]
        """
    )
    u = task_of(text, "u")
    assert (u.retry, u.strategy, u.flows) == (RetrySpec(attempts=3), "thread", (FlowSpec(to="end"),))


def test_yaml_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + one_task("flows: [u]").encode())
    assert load(path).id == "t"


# -- JSON -----------------------------------------------------------------------------------------------


def test_yaml_and_json_give_equal_specs(tmp_path: Path) -> None:
    for name in ("orders.yaml", "everything.yaml"):
        from_yaml = load(DATA / name)
        data = plain((DATA / name).read_text())
        json_path = tmp_path / name.replace(".yaml", ".json")
        json_path.write_text(json.dumps(data, indent=2))
        from_json = load(json_path)
        assert from_json == msgspec.structs.replace(from_yaml, source=str(json_path))
        assert loads(json.dumps(data), format="json") == loads((DATA / name).read_text())


def test_json_duplicate_keys_are_accepted() -> None:
    nets = '{"main": {"input": "s", "output": "e", "tasks": {"t": {"flows": ["e"]}}}}'
    text = '{"yawlflow": 1, "id": "a", "id": "b", "nets": ' + nets + "}"
    assert loads(text, format="json").id == "b"


def test_json_bytes_and_byte_order_mark() -> None:
    text = json.dumps(yaml.safe_load(one_task("flows: [u]"))).encode()
    assert loads(b"\xef\xbb\xbf" + text, format="json") == loads(text, format="json")


def test_json_with_suffix_in_capitals(tmp_path: Path) -> None:
    path = tmp_path / "SPEC.JSON"
    path.write_text(json.dumps(yaml.safe_load(one_task("flows: [u]"))))
    assert load(path).id == "t"


# -- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["orders.yaml", "everything.yaml"])
def test_round_trip_through_to_builtins(name: str) -> None:
    spec = load(DATA / name)
    data = to_builtins(spec)
    assert from_data(data, source=spec.source) == spec
    assert loads(yaml.safe_dump(data, sort_keys=False), source=spec.source) == spec
    assert loads(msgspec.json.encode(data), source=spec.source, format="json") == spec


def test_round_trip_from_data_default_source() -> None:
    spec = from_data(plain((DATA / "everything.yaml").read_text()))
    assert from_data(to_builtins(spec)) == spec


def test_to_builtins_is_short() -> None:
    data = to_builtins(load(DATA / "orders.yaml"))
    assert data["nets"]["main"]["tasks"]["approve"] == {"external": True, "flows": ["ship"]}
    assert "start" not in data["nets"]["main"]["conditions"]  # implicit: the loader adds it back


def test_everything_spec_is_fully_normalised() -> None:
    spec = load(DATA / "everything.yaml")
    main = spec.net("main")
    assert [c.name for c in main.conditions] == ["start", "paid_gate"]
    review = main.task("review")
    assert review is not None
    assert review.instances == InstancesSpec(
        items="orders",
        min=1,
        max=10,
        threshold=2,
        join="threshold",
        cancel_rest=True,
        creation="dynamic",
        as_="reviews",
    )
    assert review.retry == RetrySpec(
        attempts=3,
        backoff="200ms",
        backoff_ns=200_000_000,
        max_backoff="2s",
        max_backoff_ns=2_000_000_000,
        deadline="1m",
        deadline_ns=60_000_000_000,
        on=("TimeoutError",),
    )
    assert main.mutex == {"db": (("receive",), ("ship", "pack"))}
    assert spec.net("sub").termination == "implicit"
    withdraw = main.task("withdraw")
    assert withdraw is not None and withdraw.cancels == ("review", "main")


# -- cost ---------------------------------------------------------------------------------------------------


def test_specs_without_expressions_do_not_load_cel() -> None:
    code = textwrap.dedent(
        f"""
        import yawlflow._cel as cel
        from yawlflow._spec import loads
        loads({one_task("flows: [u]")!r})
        assert cel._module is None, "CEL was loaded for a spec without expressions"
        loads({one_task("split: xor, flows: [{to: u, when: 'a > 1'}]")!r})
        assert cel._module is not None
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_the_model_does_not_share_the_callers_data() -> None:
    data = plain(one_task("run: {connector: http, config: {url: 'https://x', headers: {a: '1'}}}, flows: [u]"))
    spec = from_data(data)
    data["nets"]["main"]["tasks"]["t"]["run"]["config"]["headers"]["a"] = "2"
    task = spec.net("main").task("t")
    assert task is not None and task.run == RunSpec(connector="http",
                                                    config={"url": "https://x", "headers": {"a": "1"}})


CONNECTOR_SPEC = """\
yawlflow: 1
id: c
nets:
  main:
    input: start
    output: end
    tasks:
      f:
        run:
          connector: http
          config: {url: "https://x", method: GETT}
        flows: [end]
      g: {run: {connector: shell}, flows: [end]}
"""


def test_a_connector_config_is_validated_as_the_spec_loads_with_located_errors() -> None:
    with pytest.raises(yf.SpecError) as info:
        yf.loads(CONNECTOR_SPEC)
    problems = {p.path: p for p in info.value.problems}
    method = problems["$.nets.main.tasks.f.run.config.method"]
    assert method.line == 11 and "GETT" in method.message and "GET" in method.hint
    shell = problems["$.nets.main.tasks.g.run.config"]
    assert shell.line == 13 and "command" in shell.message
