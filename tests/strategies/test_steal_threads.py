"""The work-stealing pool on real threads: thousands of small jobs, batches from outside, jobs
forked from inside workers; every job completes exactly once. The test waits for completion on
a ``threading.Event`` (set by the last job), never by sleeping; the seed is in every message.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import anyio
import pytest
import strategy_handlers as h

from yawlflow._steal import WorkStealingPool
from yawlflow._strategies import ThreadStrategy
from yawlflow._strategy import Job


class Load:
    """Jobs ``0..outside-1`` come from outside in batches; every 7th forks 3 children from its
    worker (ids from ``outside`` up), and every 5th child forks one more."""

    def __init__(self, outside: int) -> None:
        self.outside = outside
        self.forks: dict[int, list[int]] = {}
        next_id = outside
        for job in range(0, outside, 7):
            self.forks[job] = list(range(next_id, next_id + 3))
            next_id += 3
        for kid in range(outside, next_id, 5):
            self.forks[kid] = [next_id]
            next_id += 1
        self.total = next_id
        self.counts: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.all_done = threading.Event()
        self.workers_seen: set[int] = set()
        self.pool: WorkStealingPool[int] | None = None

    def run(self, job: int, worker: int) -> int:
        assert self.pool is not None
        kids = self.forks.get(job)
        if kids:
            self.pool.submit_many(kids)
        return sum(i * i for i in range(50))  # a little CPU

    def done(self, job: int, value: object, error: BaseException | None) -> None:
        assert error is None, error
        with self.lock:
            self.counts[job] += 1
            if sum(self.counts.values()) == self.total:
                self.all_done.set()


@pytest.mark.parametrize(("workers", "seed"), [(2, 1), (4, 2), (8, 3)])
def test_thousands_of_jobs_complete_exactly_once(workers: int, seed: int) -> None:
    load = Load(outside=4_000)
    pool = load.pool = WorkStealingPool(load.run, load.done, workers=workers, rng=random.Random(seed))
    rng = random.Random(seed)
    start = 0
    while start < load.outside:  # batches of 1-200 from outside
        size = rng.randint(1, 200)
        pool.submit_many(range(start, min(start + size, load.outside)))
        start += size
    assert load.all_done.wait(60), f"seed {seed}: {load.total - sum(load.counts.values())} jobs never completed"
    assert pool.shutdown(timeout=10), f"seed {seed}: workers did not exit"
    assert set(load.counts) == set(range(load.total)), f"seed {seed}: jobs lost"
    assert set(load.counts.values()) == {1}, f"seed {seed}: jobs run twice"
    m = pool.metrics()
    assert (m.submitted, m.completed, m.failed, m.running, m.queue_depth) == (load.total, load.total, 0, 0, 0), m


def test_shutdown_under_load_cancels_or_runs_every_job_exactly_once() -> None:
    ran: Counter[int] = Counter()
    cancelled: Counter[int] = Counter()
    lock = threading.Lock()

    def run(job: int, worker: int) -> None:
        with lock:
            ran[job] += 1

    def discard(job: int, running: bool) -> None:
        with lock:
            cancelled[job] += 1

    pool: WorkStealingPool[int] = WorkStealingPool(run, lambda *_: None, workers=4, rng=random.Random(5),
                                                   discard=discard)
    pool.submit_many(range(20_000))
    assert pool.shutdown(cancel_pending=True, timeout=30)
    assert not set(ran) & set(cancelled), "a job both ran and was cancelled"
    assert set(ran) | set(cancelled) == set(range(20_000)), "a job was neither run nor cancelled"
    assert set(ran.values()) <= {1} and set(cancelled.values()) <= {1}
    m = pool.metrics()
    assert (m.completed, m.failed, m.running, m.queue_depth) == (len(ran), len(cancelled), 0, 0), m


@pytest.mark.anyio
async def test_the_thread_strategy_returns_every_value_of_a_large_batch() -> None:
    async with ThreadStrategy(workers=4, seed=9) as s:
        jobs = [Job(id=i, handler="strategy_handlers:add", fn=h.add, args=(i, 1)) for i in range(3_000)]
        assert await s.submit_many(jobs) == [i + 1 for i in range(3_000)]
        m = s.metrics()
        assert (m.submitted, m.completed, m.failed, m.running, m.queue_depth) == (3_000, 3_000, 0, 0, 0), m


@pytest.mark.anyio
async def test_many_tasks_submitting_at_once_each_get_their_own_value() -> None:
    async with ThreadStrategy(workers=3, seed=4) as s:
        results: dict[int, int] = {}

        async def one(i: int) -> None:
            results[i] = await s.submit(Job(id=i, handler="strategy_handlers:add", fn=h.add, args=(i, i)))

        async with anyio.create_task_group() as tg:
            for i in range(500):
                tg.start_soon(one, i)
        assert results == {i: 2 * i for i in range(500)}
