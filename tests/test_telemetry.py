"""OpenTelemetry (issue 9, item 5): a span per case and per work item (case -> item, sub-case ->
composite item), and metrics, all declared in docs/telemetry/registry.yaml: everything emitted is
declared there with its attributes, and every required attribute is present. Logs carry ids."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import yawlflow as yf

pytestmark = pytest.mark.anyio

REGISTRY = Path(__file__).resolve().parents[1] / "docs" / "telemetry" / "registry.yaml"

SPEC = """
yawlflow: 1
id: observed
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: work, split: and, flows: [sub, flaky, fans]}
      sub: {net: inner, flows: [z]}
      flaky: {run: flaky, retry: {attempts: 2, backoff: 1ms}, critical: false, flows: [z]}
      fans: {run: work, instances: {count: 2}, flows: [z]}
      z: {join: and, flows: [end]}
  inner:
    input: s
    output: e
    tasks:
      x: {external: true, flows: [e]}
"""


def registry() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(spans, metrics): name -> {attribute: requirement level}."""
    groups = yaml.safe_load(REGISTRY.read_text())["groups"]
    spans: dict[str, dict[str, str]] = {}
    metrics: dict[str, dict[str, str]] = {}
    for group in groups:
        attrs = {a["ref"]: (a["requirement_level"] if isinstance(a["requirement_level"], str)
                            else next(iter(a["requirement_level"])))
                 for a in group.get("attributes", []) if "ref" in a}
        if group["type"] == "span":
            spans[group["span_name"]] = attrs
        elif group["type"] == "metric":
            metrics[group["metric_name"]] = attrs
    declared = {a["id"] for g in groups if g["type"] == "attribute_group" for a in g["attributes"]}
    for attrs in (*spans.values(), *metrics.values()):
        assert set(attrs) <= declared, f"the registry refers to undeclared attributes: {set(attrs) - declared}"
    return spans, metrics


async def run_observed() -> tuple[list[ReadableSpan], Any, yf.Result]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    calls = {"n": 0}

    def flaky(data: dict[str, Any]) -> None:
        calls["n"] += 1
        raise ConnectionError("downstream reset")

    handlers = {"work": lambda data: {"w": 1}, "flaky": flaky}
    async with yf.Engine(handlers=handlers, tracer_provider=tracer_provider, meter_provider=meter_provider,
                         seed=3, config={"execution": {"strategy": "thread", "thread": {"workers": 2}}}) as engine:
        case = await engine.start(yf.loads(SPEC), tenant="acme")
        await case.idle()
        [sub] = case._children.values()
        [item] = sub.work_items("offered")
        await sub.complete(item.id, {"x": 1})
        result = await case.result()
        data = reader.get_metrics_data()  # while the strategies are there to be observed
    return list(spans.get_finished_spans()), data, result


async def test_every_span_and_attribute_emitted_is_declared_and_required_ones_are_there() -> None:
    declared_spans, _ = registry()
    spans, _, result = await run_observed()
    assert result.status == "completed"
    names = [s.name for s in spans]
    assert names.count("yawlflow.case") == 2  # the case and its sub-case
    assert set(names) <= set(declared_spans)
    for span in spans:
        declared = declared_spans[span.name]
        attributes = dict(span.attributes or {})
        assert set(attributes) <= set(declared), f"{span.name}: undeclared {set(attributes) - set(declared)}"
        missing = {a for a, level in declared.items() if level == "required"} - set(attributes)
        assert not missing, f"{span.name} lacks required {missing}"


async def test_spans_nest_case_item_and_sub_case_under_its_composite_item() -> None:
    spans, _, _ = await run_observed()
    by_id = {s.context.span_id: s for s in spans}
    [root] = [s for s in spans if s.name == "yawlflow.case" and s.parent is None]
    [sub] = [s for s in spans if s.name == "yawlflow.case" and s.parent is not None]
    assert root.attributes is not None and root.attributes["yawlflow.tenant"] == "acme"
    composite = by_id[sub.parent.span_id]  # type: ignore[union-attr]
    assert composite.name == "yawlflow.item" and composite.attributes["yawlflow.task"] == "sub"  # type: ignore[index]
    items = [s for s in spans if s.name == "yawlflow.item"]
    for item in items:
        assert item.parent is not None
        parent = by_id[item.parent.span_id]
        assert parent.name == "yawlflow.case"
        assert parent.attributes["yawlflow.case.id"] == item.attributes["yawlflow.case.id"]  # type: ignore[index]
    failed = [s for s in items if s.attributes["yawlflow.task"] == "flaky"]  # type: ignore[index]
    assert len(failed) == 1 and failed[0].attributes["yawlflow.item.status"] == "failed"  # type: ignore[index]
    assert failed[0].attributes["yawlflow.item.attempt"] == 2  # type: ignore[index]
    instances = sorted(s.attributes["yawlflow.item.instance"] for s in items  # type: ignore[index]
                       if "yawlflow.item.instance" in (s.attributes or {}))
    assert instances == [0, 1]


async def test_every_metric_emitted_is_declared_with_its_attributes() -> None:
    _, declared_metrics = registry()
    _, data, _ = await run_observed()
    seen: dict[str, list[dict[str, Any]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                seen[metric.name] = [dict(p.attributes or {}) for p in metric.data.data_points]
    assert set(seen) <= set(declared_metrics)
    assert {"yawlflow.cases.started", "yawlflow.cases.ended", "yawlflow.items.ended", "yawlflow.item.duration",
            "yawlflow.items.retried", "yawlflow.strategy.completed", "yawlflow.strategy.stolen"} <= set(seen)
    assert seen["yawlflow.strategy.completed"] == [{"yawlflow.strategy": "thread"}]
    for name, points in seen.items():
        declared = declared_metrics[name]
        required = {a for a, level in declared.items() if level == "required"}
        for attributes in points:
            assert set(attributes) <= set(declared), f"{name}: undeclared {set(attributes) - set(declared)}"
            assert required <= set(attributes), f"{name} lacks {required - set(attributes)}"
    assert {"yawlflow.item.status": "failed", "yawlflow.task": "flaky"} in seen["yawlflow.items.ended"]


async def test_without_a_provider_the_engine_keeps_no_telemetry() -> None:
    async with yf.Engine() as engine:
        assert engine._tel is None


async def test_logs_carry_the_case_and_item_ids(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="yawlflow")
    _, _, result = await run_observed()
    [failure] = [r for r in caplog.records if "attempt" in r.getMessage() and "failed" in r.getMessage()][:1]
    assert failure.case_id == result.case_id  # type: ignore[attr-defined]
    assert isinstance(failure.item_id, int)  # type: ignore[attr-defined]
