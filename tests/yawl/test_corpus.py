"""The YAWL corpus (``../shared/corpora/yawl``): every file imports, or fails with a located error;
what imports matches ``expected.json``, exports schema-valid, round-trips, and runs to its end.

The expectations below are the ones ``docs/yawl-compat.md`` lists, with their reasons; a file not
named in them must import, round-trip and run to completion. Files whose predicates or timers
cannot be translated are imported a second time with the CEL side files in ``overrides/``.

The run driver completes every offered item until the case ends: each atomic task's item with the
default values of its decomposition's output parameters (``YawlImport.outputs``), codelet
handlers return nothing, timers are jumped to on a fake clock, and of several offered items the
one whose task was completed least often goes first (so a deferred choice inside a loop takes its
exit sooner or later). The case starts with the root net's declared variables
(``YawlImport.start_data``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow import Engine
from yawlflow._yawl import YawlImport, export_yawl, import_yawl, loads_yawl
from yawlflow.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpora" / "yawl"
OVERRIDES = Path(__file__).parent / "overrides"
XSD = Path(__file__).parent / "data" / "YAWL_Schema4.0.xsd"
DOCS = ("FORMAT.md", "README.md", "expected.json")

if not CORPUS.is_dir():
    pytest.skip(
        f"the YAWL corpus is not at {CORPUS} (../shared/corpora/yawl from the repository root)", allow_module_level=True
    )

FILES = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file() and p.name not in DOCS)
EXPECTED: dict[str, Any] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))["files"]

# files that do not import, and why (a located SpecError, never a traceback)
IMPORT_FAILS = {
    "yawlfoundation-yawl/history/yawl1-test/persistence/TestFlowDetailed.xml": "a net needs at least one task",
    "yawlfoundation-yawl/test/elements/BadNetSpecification.xml": "a flow into the input condition",
}
# files that import once the side file in overrides/ supplies what has no CEL translation
NEEDS_OVERRIDES = {
    "yawlfoundation-yawl/exampleSpecs/Beta2-7/MakeRecordings_Beta3.xml": "has no CEL translation",
    "yawlfoundation-yawl/exampleSpecs/Beta2-7/MakeRecordings_Beta4.xml": "has no CEL translation",
    "yawlfoundation-yawl/test/unmarshal/MakeRecordings_Beta6.xml": "has no CEL translation",
    "yawlfoundation-yawl/test/unmarshal/YAWL_Specification.xml": "has no CEL translation",
    "yawlfoundation-yawl/exampleSpecs/orderfulfillment/orderfulfillment.yawl": "known only at run time",
    "yawlfoundation-yawl/exampleSpecs/orderfulfillment/orderfulfillment_customforms.yawl": "known only at run time",
}
# files that import but are not run, and why
NOT_RUN = {
    "yawlfoundation-yawl/test/engine/MarlonsEagerExperiment.xml": (
        "a cycle of routing tasks that never waits; the runner stops it after 5,000,000 firings (~8 s)"
    ),
}
# files whose run ends otherwise than completed, and how
RUN_ENDS = {
    "yawlfoundation-yawl/test/engine/DeadlockingSpecification.xml": ("failed", "deadlock in net 'top'"),
    # composite tasks that start each other without end (YAWL's verifier rejects it)
    "yawlfoundation-yawl/test/elements/infiniteDecomps.xml": ("failed", "(at most 50)"),
    "yawlfoundation-yawl/exampleSpecs/Beta2-7/makeTrip2.xml": ("failed", "Undefined variable or function: 'leg'"),
    "yawlfoundation-yawl/exampleSpecs/Beta2-7/MakeRecordings_Beta3.xml": ("failed", "'songLocal'"),
    "yawlfoundation-yawl/exampleSpecs/Beta2-7/MakeRecordings_Beta4.xml": ("failed", "'songLocal'"),
    "yawlfoundation-yawl/test/unmarshal/MakeRecordings_Beta6.xml": ("failed", "'songLocal'"),
    "yawlfoundation-yawl/history/filmYAWL/filmYAWLproc_v2_3_1.xml": ("failed", "KeyError: 'scheduledShootingDays'"),
}

MAX_STEPS = 400


@dataclass
class Outcome:
    """How a driven case ended: its status, the error (failed), the items completed."""

    status: str
    error: str | None = None
    completed: list[str] = field(default_factory=list)


def _handlers(found: YawlImport) -> dict[str, Any]:
    names = {t.run.handler for n in found.spec.nets for t in n.tasks if t.run is not None and t.run.handler}

    def done(data: dict[str, Any]) -> None:
        return None

    return {name: done for name in names if name is not None}


def _vary(output: dict[str, Any], repeat: int) -> dict[str, Any]:
    """The default output, with its booleans flipped on every second repeat: a loop that waits
    for a yes (or a no) from a person gets one."""
    if repeat < 2 or repeat % 2:
        return dict(output)
    return {k: (not v if isinstance(v, bool) else v) for k, v in output.items()}


async def drive(found: YawlImport, *, max_steps: int = MAX_STEPS) -> Outcome:
    """Run one case of ``found.spec`` to its end, completing offered items as they come."""
    clock = FakeClock()
    outcome = Outcome(status="running")
    async with Engine(seed=7, clock=clock, handlers=_handlers(found)) as engine:
        case = await engine.start(found.spec, dict(found.start_data))
        for _ in range(max_steps):
            await case.idle()
            if case.status != "running":
                break
            waits = case.why()
            offered = [w for w in waits if w.kind in ("offered", "started") and w.item is not None]
            if offered:
                items = []
                for wait in offered:
                    holder = engine.case(wait.case)
                    item = next(i for i in holder.work_items() if i.id == wait.item)
                    items.append((outcome.completed.count(f"{item.net}/{item.task}"), len(items), holder, item))
                _, _, holder, item = min(items, key=lambda found: found[:2])  # a deferred choice: the least taken
                done = f"{item.net}/{item.task}"
                output = _vary(found.outputs.get(item.net, {}).get(item.task, {}), outcome.completed.count(done))
                await holder.complete(item.id, output)
                outcome.completed.append(done)
                continue
            deadline = clock.next_deadline()
            if deadline is None:
                break
            await clock.advance(max(deadline - clock.now(), 0.0))
        else:
            await case.cancel()
        result = await case.result()
        outcome.status = result.status
        if result.status == "failed":
            errors = [r["data"] for r in result.trace if r["event"] == "case.failed"]
            outcome.error = str(errors[-1]) if errors else None
        if len(outcome.completed) >= max_steps:
            outcome.error = f"still running after {max_steps} completions (a loop under default data)"
    return outcome


def side_file(name: str) -> Path | None:
    found = OVERRIDES / (name.removeprefix("yawlfoundation-yawl/") + ".cel.yaml")
    return found if found.is_file() else None


_imports: dict[str, YawlImport] = {}


def imported(name: str) -> YawlImport:
    """The file imported (with its side file from overrides/, if it has one), once per session."""
    if name not in _imports:
        _imports[name] = import_yawl(CORPUS / name, overrides=side_file(name))
    return _imports[name]


IMPORTING = [f for f in FILES if f not in IMPORT_FAILS]


def test_the_corpus_is_the_one_expected_json_describes() -> None:
    assert len(FILES) == 64
    assert sorted(EXPECTED) == FILES
    for name in FILES:
        data = (CORPUS / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (EXPECTED[name]["bytes"], EXPECTED[name]["sha256"]), (
            name
        )
    assert all(side_file(name) is not None for name in NEEDS_OVERRIDES)


@pytest.mark.parametrize("name", FILES)
def test_every_file_imports_or_fails_with_located_problems(name: str) -> None:
    expected = IMPORT_FAILS.get(name) or NEEDS_OVERRIDES.get(name)
    if expected is None:
        assert import_yawl(CORPUS / name).spec.nets
        return
    with pytest.raises(yf.SpecError) as caught:
        import_yawl(CORPUS / name)
    problems = caught.value.problems
    assert any(expected in p.message for p in problems), [str(p) for p in problems]
    assert all(p.line is not None and p.path.startswith("$") and p.hint for p in problems)


@pytest.mark.parametrize("name", IMPORTING)
def test_what_imports_matches_expected_json(name: str) -> None:
    want = EXPECTED[name]
    found = imported(name)
    spec = found.spec
    tasks = [t for net in spec.nets for t in net.tasks]
    made = [
        c.name for net in spec.nets for c in net.conditions if c.name.startswith("c{")
    ]  # from removesTokensFromFlow
    assert found.namespace == want["namespace"]
    assert found.version == (want["version_attribute"] or "Beta 2")
    assert spec.id == want["specifications"][0]
    assert len(spec.nets) == want["nets"]
    assert spec.root == re.sub(r"[^\w.\-]", "_", want["root_nets"][0])
    assert len(tasks) == want["tasks"]
    assert sum(t.net is not None for t in tasks) == want["composite_tasks"]
    assert dict(Counter(t.join.kind for t in tasks)) == {k: v for k, v in want["joins"].items() if v}
    assert dict(Counter(t.split.kind for t in tasks)) == {k: v for k, v in want["splits"].items() if v}
    assert sum(len(net.conditions) + 1 for net in spec.nets) - len(made) == want["conditions"]
    flows = sum(len(t.flows) for t in tasks) + sum(len(c.flows) for net in spec.nets for c in net.conditions)
    assert flows - len(made) == want["flows"]
    assert sum(bool(t.cancels) for t in tasks) == want["cancellation_sets"]
    assert len(made) <= want["removes_tokens_from_flow"]
    assert sum(t.instances is not None for t in tasks) == want["mi_tasks"]
    modes = Counter(t.instances.creation for t in tasks if t.instances is not None)
    assert dict(modes) == want["mi_creation_modes"]
    assert sum(t.timer is not None for t in tasks) == want["timers"]


@pytest.mark.parametrize("name", IMPORTING)
def test_yawl_to_spec_to_yawl_to_spec_is_equal(name: str) -> None:
    spec = imported(name).spec
    document = export_yawl(spec)
    assert loads_yawl(document, source=spec.source).spec == spec
    etree = pytest.importorskip("lxml.etree", reason="validating against YAWL's XSD needs lxml")
    schema = _schema(etree)
    assert schema.validate(etree.fromstring(document)), [str(e) for e in schema.error_log][:5]


_xsd: list[Any] = []


def _schema(etree: Any) -> Any:
    if not _xsd:
        _xsd.append(etree.XMLSchema(etree.parse(str(XSD))))
    return _xsd[0]


@pytest.mark.parametrize("name", [f for f in IMPORTING if f not in NOT_RUN])
def test_runs_to_completion_with_auto_completed_items(name: str) -> None:
    outcome = anyio.run(drive, imported(name))
    status, error = RUN_ENDS.get(name, ("completed", None))
    assert outcome.status == status, outcome.error
    if error is not None:
        assert outcome.error is not None and error in outcome.error
    else:
        assert outcome.error is None
