"""OpenTelemetry: a span per case and per work item, and the engine's metrics.

Every name emitted here is declared in ``docs/telemetry/registry.yaml`` (a test checks both
ways). Spans: ``yawlflow.case`` (a root case's is a root span; a sub-case's is a child of its
composite item's span) and ``yawlflow.item`` (a child of its case's span), opened when the item
starts and ended when it completes, fails or is withdrawn; a routing task's firing gets no span.
Metrics: cases started and ended, items ended, item durations, retries, breaker transitions.

Telemetry costs nothing unless a real provider is there: the engine asks for one when it is
entered (its ``tracer_provider``/``meter_provider`` arguments, else the global ones); with only
the API's no-op or proxy providers it keeps no spans and calls no instrument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from ._case import Case
    from ._runner import TraceRecord

__all__ = ("Telemetry", "telemetry_for")

SCOPE = "yawlflow"
_ENDING = {"item.completed": "completed", "item.failed": "failed", "item.cancelled": "cancelled"}
_CASE_ENDING = {"case.completed": "completed", "case.failed": "failed", "case.cancelled": "cancelled"}


def _real(provider: object) -> bool:
    """Whether ``provider`` records anything (not the API's no-op or proxy provider)."""
    name = type(provider).__name__
    return name not in ("NoOpTracerProvider", "ProxyTracerProvider", "NoOpMeterProvider", "_ProxyMeterProvider")


def telemetry_for(tracer_provider: Any = None, meter_provider: Any = None) -> Telemetry | None:
    """The engine's telemetry, or ``None`` when no real provider is configured (then it costs nothing)."""
    tracer_provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    meter_provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    tracing, metering = _real(tracer_provider), _real(meter_provider)
    if not tracing and not metering:
        return None
    return Telemetry(tracer_provider if tracing else None, meter_provider if metering else None)


class Telemetry:
    """Spans and instruments of one engine, fed with the trace records its cases produce."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from . import __version__

        self._tracer = tracer_provider.get_tracer(SCOPE, __version__) if tracer_provider is not None else None
        self._cases: dict[str, Span] = {}
        self._items: dict[tuple[str, int], Span] = {}
        self._meter = meter_provider.get_meter(SCOPE, __version__) if meter_provider is not None else None
        if self._meter is not None:
            m = self._meter
            self.cases_started = m.create_counter("yawlflow.cases.started", unit="{case}",
                                                  description="Cases started (sub-cases included).")
            self.cases_ended = m.create_counter("yawlflow.cases.ended", unit="{case}",
                                                description="Cases that ended, by status.")
            self.items_ended = m.create_counter("yawlflow.items.ended", unit="{item}",
                                                description="Work items that ended, by status.")
            self.item_duration = m.create_histogram("yawlflow.item.duration", unit="s",
                                                    description="From an item's start to its end.")
            self.retries = m.create_counter("yawlflow.items.retried", unit="{attempt}",
                                            description="Failed attempts that were retried.")
            self.breaker = m.create_counter("yawlflow.connector.breaker.transitions", unit="{transition}",
                                            description="Circuit breaker state changes, by connector and state.")
        self._started_ns: dict[tuple[str, int], int] = {}

    def observe_strategies(self, read: Callable[[], dict[str, Any]]) -> None:
        """Report each execution strategy's counts (``read()``: name -> StrategyMetrics) as gauges."""
        if self._meter is None:
            return

        def gauge(field: str) -> Callable[[Any], list[Observation]]:
            def callback(options: Any) -> list[Observation]:
                return [Observation(getattr(m, field), {"yawlflow.strategy": name}) for name, m in read().items()]

            return callback

        for field, unit, what in (("submitted", "{job}", "Jobs submitted to the strategy."),
                                  ("running", "{job}", "Jobs running now."),
                                  ("completed", "{job}", "Jobs that returned."),
                                  ("failed", "{job}", "Jobs that raised or were cancelled."),
                                  ("stolen", "{job}", "Jobs a worker stole from another's deque."),
                                  ("batches", "{batch}", "Batches of several jobs handed over at once."),
                                  ("queue_depth", "{job}", "Jobs waiting to start."),
                                  ("mean_s", "s", "Mean run time of finished jobs."),
                                  ("p99_s", "s", "99th percentile of recent jobs' run times.")):
            self._meter.create_observable_gauge(f"yawlflow.strategy.{field}", callbacks=[gauge(field)], unit=unit,
                                                description=what)

    # -- fed by the engine ----------------------------------------------------------------------
    def records(self, case: Case, records: list[TraceRecord]) -> None:
        """Open and end spans, count, for ``records`` of ``case`` (its own, in the order applied)."""
        now = case._now()
        for r in records:
            event = r["event"]
            if event == "case.started":
                self._case_started(case)
            elif event in _CASE_ENDING:
                self._case_ended(case, _CASE_ENDING[event], r)
            elif event == "item.started":
                self._item_started(case, r, now)
            elif event in _ENDING and r["item"] is not None:
                self._item_ended(case, r, _ENDING[event], now)
            elif event == "item.retried" and self._meter is not None:
                self.retries.add(1, {"yawlflow.task": str(r["task"])})

    def breaker_changed(self, connector: str, old: str, new: str, reason: str) -> None:
        """Count a circuit breaker's transition."""
        if self._meter is not None:
            self.breaker.add(1, {"yawlflow.connector": connector, "yawlflow.breaker.state": new})

    def close(self) -> None:
        """End what is still open (the engine stops: its cases stay unfinished)."""
        for span in list(self._items.values()) + list(self._cases.values()):
            span.set_attribute("yawlflow.interrupted", True)
            span.end()
        self._items.clear()
        self._cases.clear()

    # -- inside ------------------------------------------------------------------------------------
    def _case_started(self, case: Case) -> None:
        if self._meter is not None:
            self.cases_started.add(1, {"yawlflow.spec.id": case.spec_id})
        if self._tracer is None:
            return
        parent_ctx = None
        parent = case._parent
        if parent is not None and case._parent_item is not None:
            item_span = self._items.get((parent.id, case._parent_item))
            if item_span is not None:
                parent_ctx = trace.set_span_in_context(item_span, otel_context.Context())
        attributes: dict[str, Any] = {"yawlflow.case.id": case.id, "yawlflow.spec.id": case.spec_id,
                                      "yawlflow.net": case.net}
        if case._root.tenant is not None:
            attributes["yawlflow.tenant"] = case._root.tenant
        if parent is not None:
            attributes["yawlflow.case.parent"] = parent.id
        self._cases[case.id] = self._tracer.start_span("yawlflow.case", context=parent_ctx, kind=SpanKind.INTERNAL,
                                                       attributes=attributes)

    def _case_ended(self, case: Case, status: str, r: TraceRecord) -> None:
        if self._meter is not None:
            self.cases_ended.add(1, {"yawlflow.spec.id": case.spec_id, "yawlflow.case.status": status})
        span = self._cases.pop(case.id, None)
        if span is None:
            return
        span.set_attribute("yawlflow.case.status", status)
        if status == "failed":
            data = r["data"] if isinstance(r["data"], dict) else {}
            span.set_status(Status(StatusCode.ERROR, str(data.get("error", ""))))
        span.end()

    def _item_started(self, case: Case, r: TraceRecord, now: int) -> None:
        item = r["item"]
        if item is None:
            return
        key = (case.id, int(item))
        self._started_ns[key] = now
        if self._tracer is None:
            return
        case_span = self._cases.get(case.id)
        ctx = trace.set_span_in_context(case_span, otel_context.Context()) if case_span is not None else None
        attributes: dict[str, Any] = {"yawlflow.case.id": case.id, "yawlflow.task": str(r["task"]),
                                      "yawlflow.item.id": int(item), "yawlflow.net": str(r["net"])}
        if r["instance"] is not None:
            attributes["yawlflow.item.instance"] = int(r["instance"])
        self._items[key] = self._tracer.start_span("yawlflow.item", context=ctx, kind=SpanKind.INTERNAL,
                                                   attributes=attributes)

    def _item_ended(self, case: Case, r: TraceRecord, status: str, now: int) -> None:
        key = (case.id, int(r["item"]))
        started = self._started_ns.pop(key, None)
        if self._meter is not None:
            attributes = {"yawlflow.task": str(r["task"]), "yawlflow.item.status": status}
            self.items_ended.add(1, attributes)
            if started is not None:
                self.item_duration.record(max(0, now - started) / 1e9, attributes)
        span = self._items.pop(key, None)
        if span is None:
            return
        span.set_attribute("yawlflow.item.status", status)
        if status == "failed":
            data = r["data"] if isinstance(r["data"], dict) else {}
            span.set_attribute("yawlflow.item.attempt", int(data.get("attempt", 1)))
            span.set_status(Status(StatusCode.ERROR, str(data.get("error", ""))))
        span.end()
