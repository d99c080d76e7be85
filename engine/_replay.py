"""Replay: re-run a recorded case history against the current code, event by event.

Theory of operation. The net runner is a pure function of (state, event) (ADR 0001), so a
case's event log determines its trace. A *history* (``ReplayLog``) keeps, for a root case and
each of its sub-cases, the spec it ran (as plain data), the net, the events the engine fed the
runner and the trace records the runner produced for that case. :func:`replay` folds each
case's events through a fresh :class:`~yawlflow._runner.NetRunner` and compares the records it
produces with the recorded ones; the first difference (a record that changed, one missing, one
extra, or an event the runner now refuses) is reported with its place. Recorded histories of
every workflow pattern live in ``tests/golden/`` and are replayed by the test suite, so a change
of behaviour shows up as a named difference instead of a silently different trace.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from ._compiled import compile_spec
from ._errors import InvalidEventError, SpecError, YawlflowError
from ._events import CaseStarted, Event
from ._runner import NetRunner, TraceRecord
from ._spec import Spec, from_data, to_builtins

__all__ = ("FORMAT", "CaseLog", "Difference", "ReplayError", "ReplayLog", "dump_log", "load_log", "record", "replay")

FORMAT = 1
"""The version of the history format written by :func:`record`."""


class ReplayError(YawlflowError):
    """A history could not be read or replayed (not a difference: a broken input)."""


class CaseLog(msgspec.Struct, kw_only=True):
    """One case of a history: its net, the events it was fed and the records it produced."""

    case: str
    net: str
    events: list[Event]
    trace: list[dict[str, Any]]


class ReplayLog(msgspec.Struct, kw_only=True):
    """A recorded history: the spec (as plain data) and the root case's and sub-cases' logs."""

    format: int
    spec: dict[str, Any]
    cases: list[CaseLog]


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    """The first place where a replay differs from its recording.

    Attributes:
        case: the case id.
        event: the index of the event being replayed in the case's log (its position in
            ``CaseLog.events``).
        record: the index of the first differing trace record of that case.
        expected: the recorded record (``None`` if the replay produced an extra one).
        got: the replayed record (``None`` if the replay is missing one), or the error the
            runner raised for the event.
    """

    case: str
    event: int
    record: int
    expected: dict[str, Any] | None
    got: dict[str, Any] | str | None

    def __str__(self) -> str:
        if isinstance(self.got, str):
            return f"case {self.case!r}, event {self.event}: the runner refused it: {self.got}"
        if self.got is None:
            return f"case {self.case!r}, event {self.event}, record {self.record}: missing {self.expected}"
        if self.expected is None:
            return f"case {self.case!r}, event {self.event}, record {self.record}: extra {self.got}"
        changed = sorted(k for k in {*self.expected, *self.got} if self.expected.get(k) != self.got.get(k))
        return (f"case {self.case!r}, event {self.event}, record {self.record}: {', '.join(changed)} differ: "
                f"recorded {self.expected}, replayed {self.got}")


def record(spec: Spec, store: Any, root: str, trace: Sequence[TraceRecord]) -> ReplayLog:
    """The history of case ``root`` and its sub-cases.

    Args:
        spec: the spec the case ran.
        store: the engine's store (``engine.store``), which holds every case's events.
        root: the root case's id.
        trace: the root case's trace as the engine produced it (``case.trace`` or
            ``Result.trace``: its sub-cases' records included); each case keeps its own records.

    Raises:
        ReplayError: a case of the tree has no ``case_started`` event in the store.
    """
    ids = [root]
    for rec in store.records():  # creation order: a sub-case comes after its parent
        if rec.parent is not None and rec.parent in ids:
            ids.append(rec.case)
    logs: list[CaseLog] = []
    for case in ids:
        events = store.events(case)
        started = next((e for e in events if isinstance(e, CaseStarted)), None)
        if started is None:
            raise ReplayError(f"case {case!r} has no case_started event in the store: it cannot be replayed")
        own = [_plain(r) for r in trace if r.get("case") == case]
        logs.append(CaseLog(case=case, net=started.net, events=list(events), trace=own))
    return ReplayLog(format=FORMAT, spec=_plain(to_builtins(spec)), cases=logs)


def replay(log: ReplayLog) -> Difference | None:
    """Replay every case of ``log``; return the first difference, or ``None`` if there is none.

    Raises:
        ReplayError: the history's spec no longer loads, or names a net it does not have.
    """
    try:
        spec = from_data(log.spec, source="<replayed spec>")
    except SpecError as exc:
        raise ReplayError(f"the recorded spec does not load any more: {exc}") from None
    for case in log.cases:
        if case.net not in {n.name for n in spec.nets}:
            raise ReplayError(f"case {case.case!r} ran net {case.net!r}, which the recorded spec does not have")
        runner = NetRunner(compile_spec(spec).net(case.net))
        state = None
        got: list[TraceRecord] = []
        for i, event in enumerate(case.events):
            try:
                step = runner.start(event) if state is None and isinstance(event, CaseStarted) else (
                    runner.handle(state, event) if state is not None else None
                )
            except InvalidEventError as exc:
                return Difference(case=case.case, event=i, record=len(got), expected=None, got=str(exc))
            if step is None:
                return Difference(case=case.case, event=i, record=0, expected=None,
                                  got=f"the first event is {type(event).__name__}, not CaseStarted")
            state = step.state
            before = len(got)
            got.extend(_plain(r) for r in step.trace if r.get("case") == case.case)
            for k in range(before, len(got)):
                expected = case.trace[k] if k < len(case.trace) else None
                if expected != got[k]:
                    return Difference(case=case.case, event=i, record=k, expected=expected, got=got[k])
        if len(got) < len(case.trace):
            return Difference(case=case.case, event=len(case.events) - 1, record=len(got),
                              expected=case.trace[len(got)], got=None)
    return None


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as it reads back from JSON (tuples become lists, and so on)."""
    out: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(value))
    return out


def dump_log(log: ReplayLog) -> bytes:
    """``log`` as JSON (indented, one history per file)."""
    return msgspec.json.format(msgspec.json.encode(log), indent=1)


def load_log(path: str | os.PathLike[str]) -> ReplayLog:
    """Read a history written by :func:`dump_log`.

    Raises:
        ReplayError: the file is missing, not JSON, not a history, or of a newer format.
    """
    where = Path(path)
    try:
        raw = where.read_bytes()
    except OSError as exc:
        raise ReplayError(f"{where}: cannot read the history: {exc.strerror or exc}") from None
    try:
        log = msgspec.json.decode(raw, type=ReplayLog)
    except msgspec.ValidationError as exc:
        raise ReplayError(f"{where}: not a yawlflow history: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ReplayError(f"{where}: not JSON: {exc}") from None
    if log.format > FORMAT:
        raise ReplayError(f"{where}: history format {log.format} is newer than this yawlflow reads ({FORMAT}): "
                          "upgrade yawlflow")
    return log
