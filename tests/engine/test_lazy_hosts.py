"""Lazy hosts (ADR 0002, "Lazy hosts"): a case gets its host task, and with it its task group,
only the first time it must run something asynchronously. Routing-only cases, quick handlers,
external items and signals need none; the first async handler, timer or hosted sub-case starts
one, in the engine's root group (a root case) or in its parent's group (a sub-case), so the tree
of task groups keeps its shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import yawlflow as yf
from yawlflow._case import Case
from yawlflow.testing import FakeClock

pytestmark = pytest.mark.anyio

ROUTING = yf.loads(
    """
yawlflow: 1
id: routing
nets:
  main:
    input: s
    output: e
    tasks:
      a: {flows: [b]}
      b: {split: and, flows: [c, d]}
      c: {flows: [f]}
      d: {flows: [f]}
      f: {join: and, flows: [e]}
"""
)

WAITING = yf.loads(
    """
yawlflow: 1
id: waiting
nets:
  main:
    input: s
    output: e
    tasks:
      approve: {external: true, flows: [e]}
"""
)

# an external item first, then an async handler: the host comes with the handler
LATER = yf.loads(
    """
yawlflow: 1
id: later
nets:
  main:
    input: s
    output: e
    tasks:
      approve: {external: true, flows: [work]}
      work: {run: work, flows: [e]}
"""
)

# three levels: main -> mid (a sub-case) -> leaf (a sub-case of mid); only the leaf has auto work,
# behind an external item
TREE = yf.loads(
    """
yawlflow: 1
id: tree
root: main
nets:
  main:
    input: s
    output: e
    tasks:
      call: {net: mid, flows: [e]}
  mid:
    input: s
    output: e
    tasks:
      call: {net: leaf, flows: [e]}
  leaf:
    input: s
    output: e
    tasks:
      approve: {external: true, flows: [work]}
      work: {run: work, flows: [e]}
"""
)

TIMER = yf.loads(
    """
yawlflow: 1
id: timer
nets:
  main:
    input: s
    output: e
    tasks:
      wait: {timer: {after: 1h}, flows: [e]}
"""
)

SIGNAL = yf.loads(
    """
yawlflow: 1
id: signal
nets:
  main:
    input: s
    output: e
    tasks:
      go: {trigger: {signal: go}, flows: [e]}
"""
)


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, tuple[int, int | None]]]:
    """Every host task that ran, by case id: (its task id, its parent task's id)."""
    seen: dict[str, tuple[int, int | None]] = {}
    original = Case._host

    async def spy(self: Case) -> None:
        task = anyio.get_current_task()
        seen[self.id] = (task.id, task.parent_id)
        await original(self)

    monkeypatch.setattr(Case, "_host", spy)
    yield seen


def _never_hosted(case: yf.Case) -> bool:
    return not case._hosted and case._tg is None and case._done is None


async def _hosts_left(*cases: yf.Case) -> None:
    """Wait until the cases' hosts have left their task groups (a few scheduler passes)."""
    with anyio.fail_after(5):  # a guard, not a sleep: each pass is one checkpoint
        while any(c._tg is not None for c in cases):
            await anyio.lowlevel.checkpoint()


async def test_a_routing_only_case_finishes_in_start_without_a_task(hosts: dict[str, Any]) -> None:
    async with yf.Engine() as engine:
        tasks = len(anyio.get_running_tasks())
        case = await engine.start(ROUTING)
        assert case.status == "completed"  # no await between: it finished inside start
        assert len(anyio.get_running_tasks()) == tasks
        await anyio.wait_all_tasks_blocked()
        assert len(anyio.get_running_tasks()) == tasks
        assert (await case.result()).status == "completed"
        await case.idle()
        assert _never_hosted(case)
    assert hosts == {}


async def test_quick_handlers_need_no_host(hosts: dict[str, Any]) -> None:
    spec = yf.loads(
        """
yawlflow: 1
id: quick
nets:
  main:
    input: s
    output: e
    tasks:
      a: {run: inc, flows: [b]}
      b: {run: inc, flows: [e]}
"""
    )
    async with yf.Engine() as engine:
        engine.handlers.register("inc", lambda d: {"n": d.get("n", 0) + 1}, quick=True)
        case = await engine.start(spec)
        assert case.status == "completed" and case.data == {"n": 2}
        assert _never_hosted(case)
    assert hosts == {}


async def test_a_case_waiting_for_external_work_or_a_signal_has_no_task(hosts: dict[str, Any]) -> None:
    async with yf.Engine() as engine:
        tasks = len(anyio.get_running_tasks())
        waiting = [await engine.start(WAITING) for _ in range(20)]
        signalled = await engine.start(SIGNAL)
        await anyio.wait_all_tasks_blocked()
        assert len(anyio.get_running_tasks()) == tasks
        for case in [*waiting, signalled]:
            await case.idle()  # nothing runs: idle at once
            assert case.status == "running" and _never_hosted(case)
        item = waiting[0].work_items("offered")[0]
        await waiting[0].complete(item.id, {"ok": True})
        await signalled.signal("go", {"went": True})
        assert waiting[0].status == "completed" and signalled.status == "completed"
        assert (await signalled.result()).data == {"went": True}
        await waiting[1].cancel()
        assert (await waiting[1].result()).status == "cancelled"
        assert all(_never_hosted(c) for c in [*waiting, signalled])
    assert hosts == {}


async def test_the_host_comes_with_the_first_async_handler(hosts: dict[str, Any]) -> None:
    async def work(data: dict[str, Any]) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        return {"worked": True}

    async with yf.Engine() as engine:
        engine.handlers.register("work", work)
        case = await engine.start(LATER)
        await anyio.wait_all_tasks_blocked()
        assert _never_hosted(case) and hosts == {}
        await case.complete(case.work_items("offered")[0].id)
        assert case._hosted  # asked for at once; it runs at the next checkpoint
        result = await case.result()
        assert result.status == "completed" and result.data == {"worked": True}
        await _hosts_left(case)  # the host leaves with the case
    assert list(hosts) == [case.id]


async def test_a_root_host_runs_in_the_engines_group(hosts: dict[str, Any]) -> None:
    async with yf.Engine() as engine:
        engine.handlers.register("work", lambda d: None)  # a sync handler: a worker thread, so a task
        case = await engine.start(LATER)
        await case.complete(case.work_items("offered")[0].id)
        await case.result()
        # the engine's root group is hosted by the task that entered the engine
        assert hosts[case.id][1] == anyio.get_current_task().id


async def test_cancelling_a_lazily_hosted_case_cancels_its_work() -> None:
    entered, stopped = anyio.Event(), anyio.Event()

    async def work(data: dict[str, Any]) -> None:
        entered.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    async with yf.Engine() as engine:
        engine.handlers.register("work", work)
        case = await engine.start(LATER)
        await case.complete(case.work_items("offered")[0].id)
        await entered.wait()
        await case.cancel()
        result = await case.result()
        await anyio.wait_all_tasks_blocked()
        assert stopped.is_set()
        assert result.status == "cancelled"
        assert ("item.cancelled", "work") in [(e["event"], e["task"]) for e in result.trace]
        await _hosts_left(case)


async def test_a_case_that_ends_before_its_host_runs_leaves_nothing_running() -> None:
    async def work(data: dict[str, Any]) -> None:
        await anyio.sleep_forever()

    async with yf.Engine() as engine:
        engine.handlers.register("work", work)
        tasks = len(anyio.get_running_tasks())
        case = await engine.start(LATER)
        await case.complete(case.work_items("offered")[0].id)  # asks for a host...
        await case.cancel()  # ...and ends before it ran
        assert case._hosted and case._tg is None
        assert (await case.result()).status == "cancelled"
        await _hosts_left(case)
        await anyio.wait_all_tasks_blocked()
        assert len(anyio.get_running_tasks()) == tasks


async def test_sub_cases_get_hosts_through_their_parents(hosts: dict[str, tuple[int, int | None]]) -> None:
    handler_tasks: list[int | None] = []

    async def work(data: dict[str, Any]) -> dict[str, Any]:
        handler_tasks.append(anyio.get_current_task().parent_id)
        await anyio.lowlevel.checkpoint()
        return {"leaf": True}

    async with yf.Engine() as engine:
        engine.handlers.register("work", work)
        root = await engine.start(TREE)
        mid = root._children[next(iter(root._children))]
        leaf = mid._children[next(iter(mid._children))]
        await anyio.wait_all_tasks_blocked()
        assert all(_never_hosted(c) for c in (root, mid, leaf)) and hosts == {}
        (item,) = leaf.work_items("offered")
        await leaf.complete(item.id)
        assert root._hosted and mid._hosted and leaf._hosted
        result = await root.result()
        assert result.status == "completed" and result.data == {"leaf": True}
        # one task group per case, each inside its parent's: leaf's host runs in mid's group,
        # mid's in root's, root's in the engine's; the handler runs in leaf's group
        assert hosts[root.id][1] == anyio.get_current_task().id
        assert hosts[mid.id][1] == hosts[root.id][0]
        assert hosts[leaf.id][1] == hosts[mid.id][0]
        assert handler_tasks == [hosts[leaf.id][0]]
        await _hosts_left(root, mid, leaf)


async def test_a_sub_case_tree_with_nothing_asynchronous_has_no_task(hosts: dict[str, Any]) -> None:
    async with yf.Engine() as engine:
        engine.handlers.register("work", lambda d: {"quick": True}, quick=True)
        root = await engine.start(TREE)
        mid = root._children[next(iter(root._children))]
        leaf = mid._children[next(iter(mid._children))]
        await leaf.complete(leaf.work_items("offered")[0].id)
        assert root.status == "completed" and root.data == {"quick": True}
        assert all(_never_hosted(c) for c in (root, mid, leaf))
    assert hosts == {}


async def test_cancelling_the_root_cancels_a_hosted_sub_case() -> None:
    entered, stopped = anyio.Event(), anyio.Event()

    async def work(data: dict[str, Any]) -> None:
        entered.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    async with yf.Engine() as engine:
        engine.handlers.register("work", work)
        root = await engine.start(TREE)
        leaf = next(iter(next(iter(root._children.values()))._children.values()))
        await leaf.complete(leaf.work_items("offered")[0].id)
        await entered.wait()
        await root.cancel()
        assert (await root.result()).status == "cancelled"
        assert leaf.status == "cancelled"
        await anyio.wait_all_tasks_blocked()
        assert stopped.is_set()


async def test_a_timer_starts_the_host() -> None:
    clock = FakeClock()
    async with yf.Engine(clock=clock) as engine:
        case = await engine.start(TIMER)
        assert case._hosted  # the timer loop needs a task
        await clock.advance(3599)
        assert case.status == "running"
        await clock.advance(1)
        assert (await case.result()).status == "completed"


async def test_leaving_the_engine_ends_hosted_and_never_hosted_cases(hosts: dict[str, Any]) -> None:
    entered, stopped = anyio.Event(), anyio.Event()

    async def work(data: dict[str, Any]) -> None:
        entered.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()

    with anyio.fail_after(5):
        async with yf.Engine() as engine:
            engine.handlers.register("work", work)
            busy = await engine.start(LATER)
            await busy.complete(busy.work_items("offered")[0].id)
            idle = await engine.start(WAITING)
            done = await engine.start(ROUTING)
            root = await engine.start(TREE)
            await entered.wait()
    assert stopped.is_set()  # the hosted case's handler was cancelled with the root group
    assert busy._tg is None and idle._tg is None and root._tg is None
    assert list(hosts) == [busy.id]
    assert idle.status == "running" and root.status == "running" and done.status == "completed"
    assert _never_hosted(idle) and _never_hosted(root)


async def test_seeded_mode_starts_its_driver_with_the_first_ready_item(hosts: dict[str, Any]) -> None:
    async def work(data: dict[str, Any]) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        return {"worked": True}

    async with yf.Engine(seed=3) as engine:
        engine.handlers.register("work", work)
        waiting = await engine.start(WAITING)
        case = await engine.start(LATER)
        await anyio.wait_all_tasks_blocked()
        assert _never_hosted(waiting) and _never_hosted(case) and not case._driving
        await case.complete(case.work_items("offered")[0].id)
        assert case._driving and case._hosted
        assert (await case.result()).data == {"worked": True}
    assert list(hosts) == [case.id]


SEEDED = yf.loads(
    """
yawlflow: 1
id: seeded
root: main
nets:
  main:
    input: s
    output: e
    tasks:
      fan: {split: and, flows: [a, b, c, call]}
      a: {run: work, flows: [join]}
      b: {run: work, flows: [join]}
      c: {flows: [join]}
      call: {net: sub, flows: [join]}
      join: {join: and, flows: [e]}
  sub:
    input: s
    output: e
    tasks:
      x: {split: and, flows: [y, z]}
      y: {run: work, flows: [w]}
      z: {run: work, flows: [w]}
      w: {join: and, flows: [e]}
"""
)


def test_seeded_traces_with_lazy_hosts_agree_across_runs_and_backends() -> None:
    order: list[str] = []

    async def work(data: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:
        for _ in range(ctx.item_id % 3):
            await anyio.lowlevel.checkpoint()
        order.append(ctx.case_id)
        return {"last": ctx.task, "n": data.get("n", 0) + 1}

    def run(backend: str) -> list[dict[str, Any]]:
        result = yf.run(SEEDED, seed=11, handlers={"work": work}, backend=backend)
        assert result.status == "completed"
        return result.trace

    first = run("asyncio")
    assert run("asyncio") == first
    assert run("trio") == first
    assert len({e["case"] for e in first}) == 2  # the sub-case's events are in the root's trace
