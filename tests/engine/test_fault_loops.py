"""Fault loops at the engine level (issue 6): fail the Nth store call of an engine operation, for
N = 1, 2, … until the operation succeeds; every run ends in a clean error or a whole commit.

SQLite tests itself this way, and ``tests/store/test_robustness.py`` does it for the store's own
calls. Here the operations are the engine's — ``engine.start``, ``case.start_item``,
``case.complete``, ``case.signal``, ``case.cancel_item``, ``case.cancel``, ``engine.resume()``
and a handler's completion — on a real ``sqlite:///`` store, with the fault injected three ways:

* ``dying``: the engine's store object is wrapped; its Nth call (any method: ``append``,
  ``durable``, ``needs_snapshot``, ``events``…) raises ``StoreError``, and so does every call after
  it — a store that died, which is what the thread writer's sticky failure looks like from above;
* ``disk-thread``: the Nth SQL statement of the store's write connection raises
  ``sqlite3.OperationalError`` inside the writer thread (a disk that fails at a commit);
* ``disk-inline``: the same with ``writer=inline``: the failing write raises in the caller and
  the store stays usable.

After each run: the operation returned, or the embedder got a ``StoreError`` (from the call, or
from leaving ``async with Engine``, possibly wrapped in the task groups' exception groups —
nothing else: no internal error, no ``InvalidEventError``); the file passes ``PRAGMA
integrity_check`` and ``verify`` finds no broken chain; a fresh Engine resumes it without
logging a warning, and the case is absent or ``failed`` (only when ``engine.start`` raised) or
folds to a state that, driven to its end by the same plan (what the failed call did not do is
done again), ends with the status and data of a fault-free run. What a call acknowledged (it
returned) is on disk: the plan's step it made is not pending after the resume.

With the thread writer the number of statements an operation costs depends on how the writer
batches what is queued (group commit), so that loop's length may differ from run to run; every
run is checked alike. The engines are unseeded, with quick handlers (called inline, so a fault
in what they cause reaches the API call) except where a handler's completion is the operation;
a single case, so the runs are deterministic; ``FakeClock`` keeps the recorded times virtual.
The strict xfails at the end are what the loops found wrong in the engine.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from kit import faulty_connection, inc, integrity

import yawlflow as yf
from yawlflow._provenance import verify
from yawlflow._sqlite import SqliteStore
from yawlflow.testing import FakeClock

SNAPSHOT_EVERY = 2  # snapshots are written inside the operations too

MAIN = """
yawlflow: 1
id: faults
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, split: and, flows: [b, c, s]}
      b: {external: true, flows: [j]}
      c: {external: true, flows: [j]}
      s: {trigger: go, flows: [j]}
      j: {join: and, run: fin, flows: [end]}
"""

# WCP-19: c is withdrawn, the case goes on through b
WITHDRAW = """
yawlflow: 1
id: withdraw
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, split: and, flows: [b, c]}
      b: {external: true, flows: [d]}
      c: {external: true, flows: [d]}
      d: {join: xor, run: fin, flows: [end]}
"""

# completing b starts a sub-case (its create, its start, its first auto item) in the same call
NESTED = """
yawlflow: 1
id: nested
root: main
nets:
  main:
    input: start
    output: end
    tasks:
      a: {run: inc, flows: [b]}
      b: {external: true, flows: [c]}
      c: {net: sub, flows: [d]}
      d: {run: fin, flows: [end]}
  sub:
    input: s
    output: t
    tasks:
      x: {run: inc, flows: [y]}
      y: {external: true, flows: [t]}
"""

START_DATA = {"n": 0}


def fin(data: dict[str, Any]) -> dict[str, Any]:
    return {"fin": data.get("n", 0) * 10}


def register_quick(engine: yf.Engine) -> None:
    engine.handlers.register("inc", inc, quick=True)
    engine.handlers.register("fin", fin, quick=True)


# -- the plans: what an embedder does to a case, step by step --------------------------------
def items(case: yf.Case, task: str, states: tuple[str, ...]) -> list[tuple[yf.Case, yf.WorkItem]]:
    """The live items of ``task`` in ``states``, in the case or its running sub-cases."""
    return [(c, w) for c in case._tree() for w in c.work_items() if w.task == task and w.state in states]


@dataclass(frozen=True)
class Act:
    """One call of a plan; ``pending`` says whether the case still needs it (so a retry is safe)."""

    kind: str  # start (the plan's first), start_item, complete, cancel_item, signal, cancel
    target: str = ""  # the item's task, or the signal's name
    data: dict[str, Any] | None = None

    def pending(self, case: yf.Case) -> bool:
        if case.status != "running":
            return False
        if self.kind == "cancel":
            return True
        if self.kind == "signal":
            return not set(self.data or {}) <= set(case.data)
        if self.kind == "start_item":
            return bool(items(case, self.target, ("offered",)))
        return bool(items(case, self.target, ("offered", "started")))

    async def do(self, case: yf.Case) -> None:
        if self.kind == "cancel":
            await case.cancel()
        elif self.kind == "signal":
            await case.signal(self.target, self.data)
        else:
            [(owner, item)] = items(case, self.target, ("offered",) if self.kind == "start_item"
                                    else ("offered", "started"))
            if self.kind == "start_item":
                await owner.start_item(item.id)
            elif self.kind == "complete":
                await owner.complete(item.id, self.data)
            else:
                await owner.cancel_item(item.id)

    def __str__(self) -> str:
        return f"{self.kind}({self.target})"


START = Act("start")
MAIN_PLAN = (START, Act("start_item", "b"), Act("complete", "b", {"b": 1}), Act("signal", "go", {"went": True}),
             Act("complete", "c", {"c": 1}))


@dataclass(frozen=True)
class Scenario:
    """A spec, its plan, and the operation under faults: the plan's step ``op``, or ``resume`` or
    ``handler`` (after the whole plan, the auto item ``j`` in flight)."""

    name: str
    spec: str
    plan: tuple[Act, ...]
    op: int | str

    @property
    def setup(self) -> tuple[Act, ...]:
        """The plan's steps before the operation (after ``start``)."""
        return self.plan[1:self.op] if isinstance(self.op, int) else self.plan[1:]


SCENARIOS = [
    Scenario("engine.start", MAIN, MAIN_PLAN, 0),
    Scenario("case.start_item", MAIN, MAIN_PLAN, 1),
    Scenario("case.complete", MAIN, MAIN_PLAN, 2),
    Scenario("case.signal", MAIN, MAIN_PLAN, 3),
    Scenario("case.complete-ending-the-case", MAIN, MAIN_PLAN, 4),
    Scenario("case.cancel_item", WITHDRAW, (START, Act("cancel_item", "c"), Act("complete", "b", {"b": 1})), 1),
    Scenario("case.cancel", MAIN, (START, Act("start_item", "b"), Act("cancel")), 2),
    Scenario("case.complete-starting-a-sub-case", NESTED,
             (START, Act("complete", "b", {"b": 1}), Act("complete", "y", {"y": 1})), 1),
    Scenario("engine.resume", MAIN, MAIN_PLAN, "resume"),
    Scenario("handler-completion", MAIN, MAIN_PLAN, "handler"),
]


async def drive(case: yf.Case, plan: tuple[Act, ...]) -> None:
    """Do what is still pending of ``plan`` (its start aside), in order."""
    for act in plan[1:]:
        await case.idle()
        if act.pending(case):
            await act.do(case)
    await case.idle()


# -- the faults --------------------------------------------------------------------------------
class DyingStore:
    """The engine's store, wrapped: once armed, its Nth call raises ``StoreError``, and every call after it."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.countdown: int | None = None
        self.fired = False
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if name in ("close", "aclose") or not callable(attr):
            return attr
        if inspect.iscoroutinefunction(attr):
            async def acall(*args: Any, **kwargs: Any) -> Any:
                self._tick(name)
                return await attr(*args, **kwargs)

            return acall

        def call(*args: Any, **kwargs: Any) -> Any:
            self._tick(name)
            return attr(*args, **kwargs)

        return call

    def _tick(self, name: str) -> None:
        if self.fired:
            raise yf.StoreError(f"injected fault: the store died (at {self.calls[-1]})")
        if self.countdown is None:
            return
        self.calls.append(name)
        self.countdown -= 1
        if self.countdown == 0:
            self.fired = True
            raise yf.StoreError(f"injected fault at store call {len(self.calls)}: {name}")


MODES = ["dying", "disk-thread", "disk-inline"]


class Fault:
    """Puts one mode's fault into an engine; ``arm(n)`` fails the Nth call or statement from then on."""

    def __init__(self, mode: str, path: Path, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.mode = mode
        self.path = path
        self.snapshot_every = snapshot_every
        self.faulty = faulty_connection()
        self.dying: DyingStore | None = None

    def engine(self, **kwargs: Any) -> yf.Engine:
        engine = yf.Engine(store=url(self.path, self.snapshot_every), clock=FakeClock(autojump=True), **kwargs)
        if self.mode != "dying":  # the engine enters with this store instead of opening its own
            engine._store = SqliteStore(self.path, synchronous="OFF", snapshot_every=self.snapshot_every,
                                        writer="thread" if self.mode == "disk-thread" else "inline",
                                        _factory=self.faulty)
        return engine

    def arm(self, engine: yf.Engine, n: int) -> None:
        if self.mode == "dying":
            self.dying = DyingStore(engine._store)
            engine._store = self.dying  # type: ignore[assignment]
            self.dying.countdown = n
        else:
            self.faulty.countdown = n

    async def settle(self, engine: yf.Engine) -> None:
        """Wait until the writer thread has committed, or failed, every write queued so far.

        Writes no call waited for (what ``engine.start`` did after its acknowledgement, a handler's
        result) are then counted in the run, whatever the threads' timing. A failure is left for
        the engine to report (``durable()`` would mark it reported).
        """
        store = engine._store
        if self.mode != "disk-thread" or not isinstance(store, SqliteStore):
            return

        def committed_or_failed() -> None:
            with store._mutex:
                while store._committed < store._issued and store._failure is None and not store._closed:
                    store._done.wait()

        await anyio.to_thread.run_sync(committed_or_failed)

    def disarm(self) -> bool:
        """Stop counting (a store that died stays dead); whether the fault fired."""
        if self.dying is not None:
            self.dying.countdown = None
            return self.dying.fired
        self.faulty.countdown = None
        return bool(self.faulty.fired)


def url(path: Path, snapshot_every: int = SNAPSHOT_EVERY) -> str:
    return f"sqlite:///{path}?synchronous=OFF&snapshot_every={snapshot_every}"


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


# -- one run -----------------------------------------------------------------------------------
@dataclass
class Run:
    ok: bool = False  # the operation returned
    fired: bool = False  # the fault was hit
    raised: BaseException | None = None  # what the operation raised
    escaped: BaseException | None = None  # what leaving `async with Engine` raised
    skipped: bool = False  # resume() returned without the case (it logged that it cannot be resumed)
    start_raised: bool = False  # Engine.start itself raised (not what came after it)


async def stuck(data: dict[str, Any]) -> dict[str, Any]:
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


async def prepare(engine: yf.Engine, sc: Scenario) -> yf.Case:
    case = await engine.start(yf.loads(sc.spec), START_DATA)
    for act in sc.setup:
        await case.idle()
        await act.do(case)
    return case


async def run_once(sc: Scenario, fault: Fault, n: int) -> Run:
    run = Run()
    if sc.op == "resume":  # a first engine stops with the auto item j in flight
        first = yf.Engine(store=url(fault.path, fault.snapshot_every), clock=FakeClock(autojump=True))
        first.handlers.register("inc", inc, quick=True)
        first.handlers.register("fin", stuck)
        async with first:
            await prepare(first, sc)
    gate = anyio.Event()

    async def gated(data: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()
        return fin(data)

    engine = fault.engine()
    engine.handlers.register("inc", inc, quick=True)
    engine.handlers.register("fin", gated if sc.op == "handler" else fin, quick=sc.op != "handler")
    try:
        async with engine:
            case: yf.Case | None = None
            if sc.op != "resume" and sc.op != 0:
                case = await prepare(engine, sc)
                if sc.op != "handler":  # (its handler waits for the gate)
                    await case.idle()
            await engine.store.durable()  # what came before is on disk before the fault is armed
            fault.arm(engine, n)
            try:
                if sc.op == "resume":
                    resumed = await engine.resume()
                    if not resumed:  # a read failed, resume() skipped the case: test_resume_raises_when_a_read_fails
                        run.skipped = True
                        return run
                    [case] = resumed
                elif sc.op == "handler":
                    assert case is not None
                    gate.set()
                elif sc.op == 0:
                    try:
                        case = await engine.start(yf.loads(sc.spec), START_DATA)
                    except yf.StoreError:
                        run.start_raised = True
                        raise
                else:
                    assert case is not None and isinstance(sc.op, int)
                    await sc.plan[sc.op].do(case)
                await case.idle()
                run.ok = True
            except yf.StoreError as exc:
                run.raised = exc
            finally:
                with anyio.CancelScope(shield=True):
                    await fault.settle(engine)
                run.fired = fault.disarm()
    except Exception as exc:
        run.escaped = exc
    return run


def check_clean(run: Run, where: str) -> None:
    """The embedder got nothing but StoreErrors (possibly inside the task groups' exception groups)."""
    if run.escaped is not None:
        bad = [e for e in leaves(run.escaped) if not isinstance(e, yf.StoreError)]
        assert not bad, f"{where}: leaving the engine raised {run.escaped!r}, not only StoreErrors"
        assert not run.ok or run.fired, f"{where}: {run.escaped!r} without a fault"
    if run.raised is not None:
        assert "injected fault" in str(run.raised), f"{where}: {run.raised}"


async def recover(sc: Scenario, path: Path, run: Run, caplog: pytest.LogCaptureFixture,
                  expected: tuple[str, dict[str, Any]], where: str, snapshot_every: int = SNAPSHOT_EVERY) -> None:
    """Resume the file in a fresh engine; the case ends as a fault-free run does."""
    caplog.clear()
    async with yf.Engine(store=url(path, snapshot_every), clock=FakeClock(autojump=True)) as engine:
        register_quick(engine)
        await engine.resume()
        logged = [r.getMessage() for r in caplog.records
                  if r.levelno >= logging.WARNING and "its start never reached the store" not in r.getMessage()]
        assert not logged, f"{where}: resume logged {logged}"
        roots = [r for r in await engine.cases() if r.parent is None]
        assert len(roots) <= 1, roots
        case = engine.case(roots[0].case) if roots else None
        if case is None or case.status == "failed":  # start never acknowledged: none, or marked failed
            assert sc.op == 0 and not run.ok, f"{where}: the case is {case and case.status} after an acknowledged run"
            if case is not None:
                assert case.data == {}, case.data
            case = await engine.start(yf.loads(sc.spec), START_DATA)  # the embedder starts it again
        elif run.ok and isinstance(sc.op, int) and sc.op > 0:  # what the call acknowledged is on disk
            assert not sc.plan[sc.op].pending(case), f"{where}: {sc.plan[sc.op]} returned but is not on disk"
        elif run.ok and sc.op == "resume" and not run.skipped:
            assert case.status == expected[0], f"{where}: resume() returned but what it did is not on disk"
        await drive(case, sc.plan)
        assert (case.status, case.data) == expected, where
        assert all(r.status != "running" for r in await engine.cases()), where


async def fault_free(sc: Scenario, path: Path) -> tuple[str, dict[str, Any]]:
    async with yf.Engine(store=url(path), clock=FakeClock(autojump=True)) as engine:
        register_quick(engine)
        case = await engine.start(yf.loads(sc.spec), START_DATA)
        await drive(case, sc.plan)
        return case.status, case.data


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fault_loop(tmp_path: Path, caplog: pytest.LogCaptureFixture, sc: Scenario, mode: str) -> None:
    caplog.set_level(logging.WARNING, logger="yawlflow")
    expected = anyio.run(fault_free, sc, tmp_path / "fault-free.db")
    assert expected[0] in ("completed", "cancelled"), expected
    outcomes: list[str] = []
    for n in range(1, 200):
        path = tmp_path / f"run{n}.db"
        where = f"{sc.name}, {mode}, fault at {n}"
        fault = Fault(mode, path)
        run = anyio.run(run_once, sc, fault, n)
        check_clean(run, where)
        assert integrity(path) == "ok", where
        assert verify(path) == [], where
        anyio.run(recover, sc, path, run, caplog, expected, where)
        outcomes.append("ok" if run.ok and run.escaped is None else "error")
        if not run.fired:
            assert run.ok and run.escaped is None, where
            break
    else:
        pytest.fail(f"{sc.name} never ran without a fault within 200 store calls")
    assert "error" in outcomes, f"{sc.name}: no fault made the operation fail"


# -- what the loops found (fixed: the engine stops writing after a store failure) -------------
BY_NAME = {s.name: s for s in SCENARIOS}


@pytest.mark.parametrize("snapshot_every", [0, SNAPSHOT_EVERY])
def test_after_a_failed_write_the_stored_case_still_folds(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          snapshot_every: int) -> None:
    caplog.set_level(logging.WARNING, logger="yawlflow")
    sc = BY_NAME["case.complete"]
    assert isinstance(sc.op, int)
    op = sc.op
    expected = anyio.run(fault_free, sc, tmp_path / "fault-free.db")
    path = tmp_path / "cases.db"

    refused: list[str] = []

    async def main() -> None:
        fault = Fault("disk-inline", path, snapshot_every)
        engine = fault.engine()
        register_quick(engine)
        with pytest.raises(yf.StoreError, match="the engine's store failed while it ran"):
            async with engine:
                case = await prepare(engine, sc)
                await case.idle()
                fault.arm(engine, 2)  # the INSERT of b's completion
                with pytest.raises(yf.StoreError, match="injected fault"):
                    await sc.plan[op].do(case)
                fault.disarm()  # the store works again, but the engine writes nothing more
                for act in sc.plan[op + 1:]:  # the embedder goes on with the case: every call is refused
                    if act.pending(case):
                        with pytest.raises(yf.StoreError, match="resume the unfinished cases") as info:
                            await act.do(case)
                        refused.append(str(info.value))
                with pytest.raises(yf.StoreError, match="store failed earlier"):
                    await case.idle()

    anyio.run(main)
    assert refused, "no call came after the failed one: the test does not test what it says"
    assert integrity(path) == "ok"
    assert verify(path) == []
    caplog.clear()
    anyio.run(recover, sc, path, Run(), caplog, expected, "carrying on after a failed write", snapshot_every)
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not logged, logged  # e.g. "record 5 does not apply …; its trace stops there"


def test_engine_start_raises_only_for_a_case_that_never_runs(tmp_path: Path) -> None:
    sc = BY_NAME["engine.start"]

    async def resumed(path: Path) -> list[yf.Case]:
        async with yf.Engine(store=url(path), clock=FakeClock(autojump=True)) as engine:
            register_quick(engine)
            return await engine.resume()

    started_anyway = []
    raised = []
    for n in range(1, 200):
        path = tmp_path / f"run{n}.db"
        run = anyio.run(run_once, sc, Fault("disk-inline", path), n)
        if run.start_raised:
            raised.append(n)
            if anyio.run(resumed, path):
                started_anyway.append(n)
        if not run.fired:
            break
    assert raised, "no fault made Engine.start raise: the loop tests nothing"
    assert not started_anyway, f"engine.start raised, yet the case runs after a resume (faults at {started_anyway})"


def test_resume_raises_when_a_read_fails(tmp_path: Path) -> None:
    sc = BY_NAME["engine.resume"]
    skipped = []
    for n in range(1, 200):
        run = anyio.run(run_once, sc, Fault("disk-inline", tmp_path / f"run{n}.db"), n)
        if run.skipped:
            skipped.append(n)
        if not run.fired:
            break
    assert not skipped, f"resume() returned without the case (faults at {skipped})"


@pytest.mark.parametrize("mode", ["dying", "disk-inline"])
def test_a_failed_write_of_a_handlers_result_reaches_the_embedder_as_a_store_error(tmp_path: Path,
                                                                                     mode: str) -> None:
    run = anyio.run(run_once, BY_NAME["handler-completion"], Fault(mode, tmp_path / "cases.db"), 1)
    assert run.fired
    assert isinstance(run.escaped, yf.StoreError), repr(run.escaped)


def test_a_handler_finishing_after_the_thread_writer_failed_reaches_the_embedder_as_a_store_error(
        tmp_path: Path) -> None:
    gate = anyio.Event()

    async def slow(data: dict[str, Any]) -> dict[str, Any]:
        await gate.wait()
        return {"slow": True}

    async def main() -> BaseException | None:
        fault = Fault("disk-thread", tmp_path / "cases.db")
        engine = fault.engine()
        register_quick(engine)
        engine.handlers.register("slow", slow)
        try:
            async with engine:
                waiting = await engine.start(yf.loads(MAIN), START_DATA)
                await waiting.idle()
                running = await engine.start(yf.loads(MAIN.replace("run: inc", "run: slow")), START_DATA)
                await engine.store.durable()
                fault.arm(engine, 1)  # the next commit fails: the store is sticky-failed
                with pytest.raises(yf.StoreError, match="injected fault"):
                    await Act("start_item", "b").do(waiting)
                gate.set()  # the other case's handler finishes now
                await running.idle()
        except Exception as exc:
            return exc
        return None

    escaped = anyio.run(main)
    assert isinstance(escaped, yf.StoreError), repr(escaped)
