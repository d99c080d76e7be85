"""yawlflow.testing: a virtual clock and engine fixtures for tests (also a pytest plugin).

``FakeClock`` only moves when told to: ``await clock.advance(seconds)`` wakes every sleeper due
in that span, in deadline order, letting the engine settle after each (``anyio``'s
``wait_all_tasks_blocked``), so a 30-day timer fires at once and in a fixed order. With
``autojump=True`` an engine that uses the clock jumps straight to the next deadline whenever all
its tasks are blocked (like trio's ``MockClock(autojump_threshold=0)``).

The pytest plugin (entry point ``pytest11: yawlflow``) provides the fixtures ``fake_clock`` (a
FakeClock, usable at any scope: it binds to no event loop until used) and ``engine`` (an
in-memory Engine on that clock, for ``anyio`` async tests).

It also certifies CPU ticks per operation (``yawlflow._ticks`` has the theory):

* the fixture ``ticks`` (a ``TickMeter``): ``ticks(fn, args=..., ops=...)`` measures ``fn`` in
  batches and returns a ``TickStats`` (``.median`` ticks per operation, ``.p10``, ``.p90``, ...);
* the marker ``@pytest.mark.tick_budget(8)``: the test fails when the median ticks per operation
  of anything it measured with ``ticks`` is over 8 (or when it measured nothing);
* ``--tick-certify`` writes, at the end of the session, a certificate (JSON: machine, CPU,
  compiler, versions, each kernel's ticks per operation with its spread) to
  ``--tick-certificate PATH`` (default ``tick-certificate.json`` in the rootdir).

The plugin loads in every pytest run where yawlflow is installed, so the measuring code is
imported only when a test asks for ``ticks`` or ``--tick-certify`` is given.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from ._ticks import TickMeter, TickStats

__all__ = ("FakeClock", "TickMeter", "TickStats")


def __getattr__(name: str) -> Any:
    # the tick types load on first use: the plugin is imported by every pytest run
    if name in ("TickMeter", "TickStats"):
        from . import _ticks

        return getattr(_ticks, name)
    raise AttributeError(f"module 'yawlflow.testing' has no attribute {name!r}")


class FakeClock:
    """A virtual clock for tests.

    Args:
        start: the initial time in seconds.
        autojump: when used by an Engine, jump to the next deadline once every task is blocked.
    """

    def __init__(self, start: float = 0.0, *, autojump: bool = False) -> None:
        self._now = int(start * 1e9)
        self._heap: list[tuple[int, int, anyio.Event]] = []
        self._counter = itertools.count()
        self.autojump = autojump
        self._new_sleeper: anyio.Event | None = None

    def now_ns(self) -> int:
        """The virtual time in nanoseconds."""
        return self._now

    def now(self) -> float:
        """The virtual time in seconds."""
        return self._now / 1e9

    async def sleep_until(self, deadline_ns: int) -> None:
        """Block until the clock is advanced to ``deadline_ns``."""
        if deadline_ns <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._heap, (deadline_ns, next(self._counter), event))
        if self._new_sleeper is not None:
            self._new_sleeper.set()
        try:
            await event.wait()
        finally:
            event.set()  # a cancelled sleeper is dropped, so it cannot attract a jump

    async def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` of virtual time."""
        await self.sleep_until(self._now + int(seconds * 1e9))

    def next_deadline(self) -> float | None:
        """The earliest pending deadline in seconds, or ``None``."""
        self._drop_done()
        return self._heap[0][0] / 1e9 if self._heap else None

    def _drop_done(self) -> None:
        while self._heap and self._heap[0][2].is_set():
            heapq.heappop(self._heap)

    async def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``, waking the due sleepers in deadline order.

        After each wake-up, and at the end, wait until every other task is blocked, so the
        engine has settled when this returns.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("a clock cannot go backwards: advance by a non-negative number of seconds")
        target = self._now + round(seconds * 1e9)
        await anyio.wait_all_tasks_blocked()
        while True:
            self._drop_done()
            if not self._heap or self._heap[0][0] > target:
                break
            deadline, _, event = heapq.heappop(self._heap)
            self._now = max(self._now, deadline)
            event.set()
            await anyio.wait_all_tasks_blocked()
        self._now = target
        await anyio.wait_all_tasks_blocked()

    async def run(self) -> None:
        """The autojump service an Engine starts for its clock (does nothing unless ``autojump``)."""
        if not self.autojump:
            return
        while True:
            await anyio.wait_all_tasks_blocked()
            self._drop_done()
            if not self._heap:
                self._new_sleeper = anyio.Event()
                await self._new_sleeper.wait()
                self._new_sleeper = None
                continue
            deadline, _, event = heapq.heappop(self._heap)
            self._now = max(self._now, deadline)
            event.set()


# -- the pytest plugin --------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover - pytest is only needed for the plugin
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def fake_clock() -> FakeClock:
        """A FakeClock at time 0 (no autojump)."""
        return FakeClock()

    @pytest.fixture
    async def engine(fake_clock: FakeClock) -> AsyncIterator[Any]:
        """An in-memory Engine on ``fake_clock``; needs an async test (``anyio`` marker)."""
        from . import Engine

        async with Engine(clock=fake_clock) as eng:
            yield eng

    # -- tick certification -----------------------------------------------------------------------
    _RESULTS = pytest.StashKey[list["TickStats"]]()  # per test: what its `ticks` measured
    _CERTIFIED = pytest.StashKey[list["TickStats"]]()  # per session, with --tick-certify

    def pytest_addoption(parser: pytest.Parser) -> None:
        group = parser.getgroup("yawlflow", "yawlflow tick certification")
        group.addoption(
            "--tick-certify", action="store_true", default=False,
            help="write a certificate of the ticks per operation measured with the `ticks` fixture",
        )
        group.addoption(
            "--tick-certificate", metavar="PATH", default=None,
            help="where --tick-certify writes its JSON (default: tick-certificate.json in the rootdir)",
        )

    def pytest_configure(config: pytest.Config) -> None:
        config.addinivalue_line(
            "markers",
            "tick_budget(n): fail when the median CPU ticks per operation measured with the `ticks` "
            "fixture exceeds n (yawlflow.testing)",
        )
        if config.getoption("tick_certify", False):
            config.stash[_CERTIFIED] = []

    @pytest.fixture
    def ticks(request: pytest.FixtureRequest) -> TickMeter:
        """Measure CPU ticks per operation of a callable, amortised over batches.

        ``ticks(fn, args=seq)`` calls ``fn(a)`` for each ``a`` in ``seq``; ``ticks(fn, ops=n)``
        calls ``fn()``, which does ``n`` operations. Returns a ``TickStats`` (``.median`` ticks per
        operation, ``.p10``, ``.p90``, ``.describe()``). A ``tick_budget(n)`` marker on the test
        checks every result; ``--tick-certify`` puts them in the certificate.
        """
        from ._ticks import TickMeter

        meter = TickMeter(test=request.node.nodeid)
        request.node.stash[_RESULTS] = meter.results
        return meter

    def _budget(item: pytest.Item) -> float | None:
        marker = item.get_closest_marker("tick_budget")
        if marker is None:
            return None
        value = marker.args[0] if marker.args else marker.kwargs.get("ticks")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            pytest.fail(
                f"tick_budget takes a positive number of ticks per operation, e.g. "
                f"@pytest.mark.tick_budget(8), not {value!r}",
                pytrace=False,
            )
        return float(value)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(item: pytest.Item) -> Any:
        budget = _budget(item)
        try:
            result = yield
        finally:
            measured = item.stash.get(_RESULTS, [])
            for stats in measured:
                stats.budget = budget
            certified = item.config.stash.get(_CERTIFIED, None)
            if certified is not None:
                certified.extend(measured)
        if budget is not None:
            if not measured:
                pytest.fail(
                    f"tick_budget({budget:g}) on a test that measured nothing: measure with the `ticks` fixture",
                    pytrace=False,
                )
            over = [s for s in measured if s.median > budget]
            if over:
                lines = [
                    f"{s.describe()}\n  measured {s.median:.1f} > budget {budget:g} {s.unit}s/op "
                    f"({s.median / budget:.1f}x the budget)" + (f"\n  note: {s.note}" if s.note else "")
                    for s in over
                ]
                pytest.fail("tick budget exceeded:\n" + "\n".join(lines), pytrace=False)
        return result

    def _certificate_path(config: pytest.Config) -> Path:
        given = config.getoption("tick_certificate", None)
        return Path(given) if given else config.rootpath / "tick-certificate.json"

    def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
        certified = session.config.stash.get(_CERTIFIED, None)
        if certified is None:
            return
        import json

        from ._ticks import certificate

        path = _certificate_path(session.config)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(certificate(certified), indent=2) + "\n", encoding="utf-8")

    def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        certified = config.stash.get(_CERTIFIED, None)
        if certified is None:
            return
        from ._ticks import counter

        c = counter()
        tr = terminalreporter
        tr.write_sep("=", "yawlflow tick certificate")
        tr.write_line(f"counter: {c.source} at {c.hz / 1e9:.3f} GHz ({c.hz_source}); {c.driver} batch loop")
        if not certified:
            tr.write_line("no test measured anything with the `ticks` fixture")
        for s in certified:
            verdict = "" if s.budget is None else ("  within budget" if s.median <= s.budget else "  OVER BUDGET")
            budget = "" if s.budget is None else f" (budget {s.budget:g})"
            tr.write_line(
                f"{s.name:<48} {s.median:9.1f} {s.unit}s/op  p10-p90 {s.p10:.1f}-{s.p90:.1f}{budget}{verdict}"
            )
        tr.write_line(f"certificate: {_certificate_path(config)}")
