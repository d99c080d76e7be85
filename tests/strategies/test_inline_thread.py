"""What only ``inline`` and ``thread`` do: where each kind of handler runs, quick handlers, settings."""

from __future__ import annotations

import threading

import anyio
import pytest
import strategy_handlers as h

from yawlflow import ConfigError
from yawlflow._strategies import InlineStrategy, ThreadStrategy, _Batch
from yawlflow._strategy import Job

pytestmark = pytest.mark.anyio


async def test_inline_refuses_a_sync_handler_not_marked_quick_and_runs_a_quick_one() -> None:
    s = InlineStrategy(quick=["strategy_handlers:add"])
    assert await s.submit(Job(id=1, handler="strategy_handlers:add", fn=h.add, args=(1, 2))) == 3
    blocking = Job(id=2, handler="strategy_handlers:thread_name", fn=h.thread_name)
    with pytest.raises(ConfigError, match=r"^inline strategy: handler 'strategy_handlers:thread_name' is a sync "
                                          r"function not marked quick.*register it with quick=True.*strategy: thread"):
        await s.submit(blocking)
    s.mark_quick("strategy_handlers:thread_name")
    assert await s.submit(blocking) == threading.current_thread().name, "a quick handler runs in the caller's thread"
    with pytest.raises(ConfigError, match=r"has no function to call"):
        await s.submit(Job(id=3, handler="m:f"))
    m = s.metrics()
    assert (m.submitted, m.completed, m.failed, m.stolen, m.queue_depth) == (2, 2, 0, 0, 0)


async def test_thread_runs_sync_handlers_on_its_workers_and_async_ones_in_the_callers_loop() -> None:
    async with ThreadStrategy(workers=2, seed=1) as s:
        here = threading.current_thread().name
        on_pool = await s.submit(Job(id=1, handler="t", fn=h.thread_name))
        in_loop = await s.submit(Job(id=2, handler="t", fn=h.thread_name_async))
        assert on_pool.startswith("yawlflow-thread-") and in_loop == here
        mixed = await s.submit_many([
            Job(id=3, handler="t", fn=h.thread_name), Job(id=4, handler="t", fn=h.thread_name_async),
            Job(id=5, handler="a", fn=h.add_async, args=(1, 1)), Job(id=6, handler="a", fn=h.add, args=(2, 2)),
        ])
        assert mixed[0].startswith("yawlflow-thread-") and mixed[1:] == [here, 2, 4], "values in order"
        m = s.metrics()
        assert (m.submitted, m.completed, m.failed, m.running, m.queue_depth) == (6, 6, 0, 0, 0), m


async def test_a_mixed_batch_raises_the_first_error() -> None:
    async with ThreadStrategy(workers=1) as s:
        with pytest.raises(ValueError, match="sync"):
            await s.submit_many([Job(id=1, handler="f", fn=h.fail_value, args=("sync",)),
                                 Job(id=2, handler="a", fn=h.sleep_forever_async)])


async def test_job_ids_in_use_are_refused() -> None:
    async with ThreadStrategy(workers=1) as s:
        with pytest.raises(ConfigError, match="job ids must be unique"):
            await s.submit_many([Job(id=7, handler="a", fn=h.add, args=(1, 1))] * 2)
    inline = InlineStrategy()

    async def slow() -> None:
        await inline.submit(Job(id=8, handler="s", fn=h.sleep_forever_async))

    async with anyio.create_task_group() as tg:
        tg.start_soon(slow)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(ConfigError, match="job id 8 is already running"):
            await inline.submit(Job(id=8, handler="s", fn=h.sleep_forever_async))
        tg.cancel_scope.cancel()


def test_bad_settings_are_refused() -> None:
    for bad in (0, -1, 1.5, True, "4"):
        with pytest.raises(ConfigError, match=r"^execution\.thread\.workers must be a whole number >= 1"):
            ThreadStrategy(workers=bad)  # type: ignore[arg-type]


async def test_a_wake_up_for_a_loop_that_is_gone_is_dropped() -> None:
    """A worker finishing a job after its loop closed (``call_soon_threadsafe`` raises
    RuntimeError; trio's RunFinishedError is one) must not die of it."""

    def closed(callback: object) -> None:
        raise RuntimeError("Event loop is closed")

    batch = _Batch(2, closed)
    batch.record(0, "a", None)
    batch.record(1, None, ValueError("b"))  # fires the wake-up, which raises: dropped
    assert batch.fired and batch.values[0] == "a" and isinstance(batch.error, ValueError)
