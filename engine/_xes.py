"""XES export: the stored cases of a store as an IEEE 1849-2016 event log, for process mining.

Theory of operation. A store keeps, per case, the events the engine fed its runner (inputs), not
the trace (outputs). :func:`stored_case` rebuilds a root case's trace from them, its sub-cases'
records included and interleaved as :attr:`Case.trace <yawlflow._case.Case.trace>` shows them
(:func:`yawlflow._durable.tree_trace`), and gives every record the wall-clock time of the stored
event that produced it (:meth:`Store.times <yawlflow._store.Store.times>`; the engine's own clock
is monotonic or virtual, so it cannot date anything). :func:`write_xes` writes one ``<trace>`` per
root case and one ``<event>`` per trace record, in trace order. The times never go back along a
trace: a sub-case's records sit inside the parent step that started it (causality), though its
events were appended a moment later, so a record takes the time of the one before it when that
is later. Importers keep document order for equal timestamps.

Each ``<event>`` has ``concept:name`` (the task, or the record's event name, e.g.
``case.started``, for records without a task), ``lifecycle:transition`` (:data:`LIFECYCLE`),
``time:timestamp`` (ISO 8601 with milliseconds and the time-zone offset) and the ``yawlflow:``
attributes that tie it to the trace: ``event``, ``seq``, ``case``, ``net``, and ``item``,
``instance``, ``attempt``, ``error``, ``signal`` where the record has them (``data`` as JSON on
request). A ``<trace>`` has ``concept:name`` (the case id), ``yawlflow:status``, ``yawlflow:spec``
and ``yawlflow:net``. Values are escaped by ElementTree; characters XML 1.0 cannot carry (control
characters, lone surrogates) are written as ``\\uXXXX``.

Lifecycle (the XES standard model: schedule, assign, start, complete, withdraw, ate_abort,
pi_abort, suspend, resume, unknown). A work item's ``enabled`` is *schedule*, ``offered``
*assign*, ``started`` *start*, ``completed`` *complete*; ``cancelled`` is *withdraw* before the
item started and *ate_abort* after; ``failed`` (the last attempt failed) is *ate_abort*;
``retried`` (one attempt failed, another follows) is *unknown*, as it has no counterpart in the
standard model. ``case.started`` is *start*, ``case.completed`` *complete*, ``case.cancelled`` and
``case.failed`` *pi_abort*; a ``signal.received`` is *complete* (an instant). Suspending and
resuming map to *suspend* and *resume*. ``yawlflow:event`` keeps the exact record name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Final
from xml.etree import ElementTree as ET  # writing only: yawlflow parses XML with defusedxml

import msgspec

from ._compiled import compile_spec
from ._errors import InvalidEventError, StoreError, YawlflowError
from ._events import CaseStarted, Event
from ._runner import NetRunner, TraceRecord
from ._spec import Spec
from ._state import CaseState
from ._store import CaseRecord, Store

__all__ = (
    "EXTENSIONS",
    "FINISHED",
    "LIFECYCLE",
    "StoredCase",
    "XesSummary",
    "lifecycle",
    "root_cases",
    "stored_case",
    "timestamp",
    "write_xes",
)

XES_VERSION: Final = "1849-2016"
XES_NAMESPACE: Final = "http://www.xes-standard.org/"
YAWLFLOW_EXTENSION_URI: Final = "https://yawlflow.dev/xes/yawlflow.xesext"
"""The ``yawlflow:`` attributes' extension (declared so that their prefix is bound; no reader
needs to fetch it)."""

EXTENSIONS: Final = (
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("yawlflow", "yawlflow", YAWLFLOW_EXTENSION_URI),
)
"""The extensions a yawlflow XES log declares: (name, prefix, uri)."""

FINISHED: Final = ("completed", "cancelled", "failed")
"""The statuses of a finished case (what ``yawlflow export`` takes by default)."""

LIFECYCLE: Final[dict[str, str]] = {
    "item.enabled": "schedule",
    "item.offered": "assign",
    "item.started": "start",
    "item.completed": "complete",
    "item.failed": "ate_abort",
    "item.retried": "unknown",
    "item.suspended": "suspend",
    "item.resumed": "resume",
    "case.started": "start",
    "case.completed": "complete",
    "case.cancelled": "pi_abort",
    "case.failed": "pi_abort",
    "case.suspended": "suspend",
    "case.resumed": "resume",
    "signal.received": "complete",
}
"""A trace record's ``event`` -> its XES ``lifecycle:transition`` (``item.cancelled``: see
:func:`lifecycle`; an event not listed: ``unknown``)."""

_FOLD_ERRORS: Final = (InvalidEventError, YawlflowError, KeyError, IndexError, ValueError)
# what XML 1.0 cannot carry, even as a character reference
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_INVALID: Final = "__INVALID__"  # the XES convention for a global attribute's default


@dataclass(frozen=True, slots=True)
class StoredCase:
    """A root case read back from a store, ready to export.

    Attributes:
        record: the store's record of the case.
        trace: its trace records (its sub-cases' included), in the order ``Case.trace`` gives.
        times: the wall-clock time (ns since the Unix epoch) of each record of ``trace``: when the
            stored event that produced it was appended, or the time of the record before it when
            that is later (so the times never go back along the trace).
        spec: the spec the case ran.
        events: how many stored events the case tree has (its sub-cases' included).
    """

    record: CaseRecord
    trace: list[TraceRecord]
    times: list[int]
    spec: Spec
    events: int


@dataclass(frozen=True, slots=True)
class XesSummary:
    """What :func:`write_xes` wrote: how many traces and events."""

    traces: int
    events: int


def lifecycle(event: str, *, started: bool = False) -> str:
    """The XES ``lifecycle:transition`` of a trace record's ``event``.

    Args:
        event: the record's ``event`` (``item.completed``, ``case.started``, …).
        started: for ``item.cancelled``: whether the item had started (then the activity was
            aborted, ``ate_abort``; else it was withdrawn, ``withdraw``).
    """
    if event == "item.cancelled":
        return "ate_abort" if started else "withdraw"
    return LIFECYCLE.get(event, "unknown")


def timestamp(wall_ns: int, tz: tzinfo = UTC) -> str:
    """``wall_ns`` (ns since the Unix epoch) as XES writes a date: ISO 8601, milliseconds, offset.

    >>> timestamp(1_795_776_287_123_456_789)
    '2026-11-27T10:44:47.123+00:00'
    """
    seconds, ns = divmod(wall_ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz).replace(microsecond=ns // 1000)
    return moment.isoformat(timespec="milliseconds")


def root_cases(store: Store, *, cases: Sequence[str] | None = None, status: str | None = None) -> list[CaseRecord]:
    """The cases to export: ``cases`` by id (in the order given), else every root case (no parent)
    with ``status``, else every finished root case (:data:`FINISHED`), oldest first.

    Raises:
        StoreError: a case of ``cases`` is not in the store (the message names it).
    """
    if cases:
        out: list[CaseRecord] = []
        for case in cases:
            rec = store.record(case)
            if status is None or rec.status == status:
                out.append(rec)
        return out
    wanted = (status,) if status is not None else FINISHED
    return [r for r in store.records() if r.parent is None and r.status in wanted]


def stored_case(store: Store, record: CaseRecord, *, known: Collection[str] | None = None) -> StoredCase:
    """Read case ``record`` and its sub-cases back from ``store``: its trace and each record's time.

    ``known``: the ids of every case in ``store``, when the caller reads many cases (else each
    call lists the store's cases again: an export of n cases would read n x n records).

    A sub-case whose log does not fold all the way (a record the runner refuses) ends its part of
    the trace there, as in ``Case.trace``.

    Raises:
        StoreError: the case's spec is not a yawlflow spec or lacks its net, or a log cannot be
            read (a missing or undecodable record: the message names the case and the record).
    """
    from ._durable import tree_trace

    root = record.case
    spec = store.spec_of(root)
    if not isinstance(spec, Spec):
        raise StoreError(f"case {root!r}: its stored spec is not a yawlflow spec ({type(spec).__name__}); it was not "
                         "stored by an engine")
    compiled = compile_spec(spec)
    runners: dict[str, tuple[NetRunner, CaseState]] = {}

    def runner_for(net: str) -> tuple[NetRunner, CaseState]:
        hit = runners.get(net)
        if hit is None:
            if net not in compiled.nets:
                raise StoreError(f"case {root!r}: its tree runs net {net!r}, which its spec {spec.id!r} lacks")
            runner = NetRunner(compiled.net(net))
            hit = runners[net] = (runner, runner.initial_state(CaseStarted(case="", net=net)))
        return hit

    if known is None:
        known = {r.case for r in store.records()}
    logs: dict[str, list[Event]] = {}

    def load(case: str) -> list[Event] | None:
        if case not in known:  # a sub-case never stored: the tree goes on without it
            return None
        events = logs[case] = store.events(case)
        return events

    runner_for(record.net)
    trace = tree_trace(root, record.net, runner_for, load, {}).get(root, [])
    stamps = {case: _record_times(store, case, events, runner_for) for case, events in logs.items()}
    times: list[int] = []
    taken: dict[str, int] = {}
    last = 0
    for rec in trace:
        case = str(rec["case"])
        k = taken.get(case, 0)
        taken[case] = k + 1
        own = stamps.get(case, [])
        # never earlier than the record before: a sub-case's records sit inside the parent step
        # that started it, though its events were appended a moment after that step's
        last = max(last, own[k]) if k < len(own) else last
        times.append(last)
    return StoredCase(record=record, trace=trace, times=times, spec=spec,
                      events=sum(len(events) for events in logs.values()))


def _record_times(store: Store, case: str, events: list[Event],
                  runner_for: Callable[[str], tuple[NetRunner, CaseState]]) -> list[int]:
    """The wall-clock time of each of ``case``'s own trace records: its producing event's."""
    if not events or not isinstance(events[0], CaseStarted):
        return []
    walls = store.times(case)
    runner, blank = runner_for(events[0].net)
    state = blank.fresh(case)
    out: list[int] = []
    for event, wall in zip(events, walls, strict=False):
        try:
            step = runner.handle(state, event)
        except _FOLD_ERRORS:
            break  # tree_trace stops this case's part of the trace here too
        state = step.state
        out.extend(wall for rec in step.trace if rec.get("case") == case)
    return out


def write_xes(write: Callable[[bytes], object], cases: Iterable[StoredCase], *, tz: tzinfo = UTC,
              include_data: bool = False) -> XesSummary:
    """Write an IEEE 1849-2016 XES log of ``cases`` (one ``<trace>`` each) through ``write``.

    The document is written piece by piece (its head, then each trace as it comes), so a large
    export does not hold every trace in memory.

    Args:
        write: called with each piece of the UTF-8 document, in order (``file.write``).
        cases: the root cases, as :func:`stored_case` reads them.
        tz: the time zone of the timestamps (UTC by default); each carries its offset.
        include_data: add each record's ``data`` as a JSON string (``yawlflow:data``).
    """
    write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    write(f'<log xes.version="{XES_VERSION}" xmlns="{XES_NAMESPACE}">\n'.encode())
    head = ET.Element("head")
    for name, prefix, uri in EXTENSIONS:
        ET.SubElement(head, "extension", name=name, prefix=prefix, uri=uri)
    trace_globals = ET.SubElement(head, "global", scope="trace")
    _attr(trace_globals, "string", "concept:name", _INVALID)
    _attr(trace_globals, "string", "yawlflow:status", _INVALID)
    event_globals = ET.SubElement(head, "global", scope="event")
    _attr(event_globals, "string", "concept:name", _INVALID)
    _attr(event_globals, "string", "lifecycle:transition", "unknown")
    _attr(event_globals, "date", "time:timestamp", timestamp(0, tz))
    _attr(event_globals, "string", "yawlflow:event", _INVALID)
    _attr(event_globals, "int", "yawlflow:seq", "0")
    _attr(event_globals, "string", "yawlflow:case", _INVALID)
    ET.SubElement(head, "classifier", name="Activity", keys="concept:name")
    ET.SubElement(head, "classifier", name="Activity and transition", keys="concept:name lifecycle:transition")
    _attr(head, "string", "concept:name", "yawlflow cases")
    _attr(head, "string", "lifecycle:model", "standard")
    _attr(head, "string", "yawlflow:source", "yawlflow export")
    for child in head:
        _put(write, child, 1)
    traces = events = 0
    for stored in cases:
        element = _trace(stored, tz, include_data)
        _put(write, element, 1)
        traces += 1
        events += len(stored.trace)
    write(b"</log>\n")
    return XesSummary(traces=traces, events=events)


def _trace(stored: StoredCase, tz: tzinfo, include_data: bool) -> ET.Element:
    rec = stored.record
    trace = ET.Element("trace")
    _attr(trace, "string", "concept:name", rec.case)
    _attr(trace, "string", "yawlflow:status", rec.status)
    _attr(trace, "string", "yawlflow:spec", rec.spec_id)
    _attr(trace, "string", "yawlflow:net", rec.net)
    if rec.tenant is not None:
        _attr(trace, "string", "yawlflow:tenant", rec.tenant)
    started: set[tuple[str, int]] = set()
    for record, wall in zip(stored.trace, stored.times, strict=True):
        kind = str(record["event"])
        case = str(record["case"])
        item = record.get("item")
        key = (case, int(item)) if isinstance(item, int) else None
        if kind == "item.started" and key is not None:
            started.add(key)
        event = ET.SubElement(trace, "event")
        task = record.get("task")
        _attr(event, "string", "concept:name", str(task) if task is not None else kind)
        _attr(event, "string", "lifecycle:transition", lifecycle(kind, started=key in started))
        _attr(event, "date", "time:timestamp", timestamp(wall, tz))
        _attr(event, "string", "yawlflow:event", kind)
        _attr(event, "int", "yawlflow:seq", str(int(record["seq"])))
        _attr(event, "string", "yawlflow:case", case)
        if record.get("net") is not None:
            _attr(event, "string", "yawlflow:net", str(record["net"]))
        if key is not None:
            _attr(event, "int", "yawlflow:item", str(key[1]))
        instance = record.get("instance")
        if isinstance(instance, int):
            _attr(event, "int", "yawlflow:instance", str(instance))
        data = record.get("data")
        if isinstance(data, dict):
            if kind in ("item.failed", "item.retried", "case.failed"):
                if isinstance(data.get("attempt"), int):
                    _attr(event, "int", "yawlflow:attempt", str(data["attempt"]))
                if data.get("error") is not None:
                    _attr(event, "string", "yawlflow:error", str(data["error"]))
            elif kind == "signal.received" and isinstance(data.get("signal"), str):
                _attr(event, "string", "yawlflow:signal", data["signal"])
        if include_data and data is not None:
            _attr(event, "string", "yawlflow:data", _json(data))
    return trace


def _attr(parent: ET.Element, kind: str, key: str, value: str) -> None:
    ET.SubElement(parent, kind, key=key, value=_NOT_XML.sub(_escape_char, value))


def _escape_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _json(value: Any) -> str:
    try:
        return msgspec.json.encode(value, order="sorted").decode()
    except (TypeError, ValueError, OverflowError):
        return repr(value)


def _put(write: Callable[[bytes], object], element: ET.Element, level: int) -> None:
    ET.indent(element, space="  ", level=level)
    write(b"  " * level + ET.tostring(element, encoding="utf-8", xml_declaration=False) + b"\n")
