"""The work-stealing pool under a deterministic interleaving harness: no threads, no sleeps.

Each worker is the pool's own generator (:meth:`WorkStealingPool.steps`): one ``next()`` is one
atomic step (a pop, a grab from the injector, a steal, running a job, parking). A seeded
scheduler picks, at every step, which worker moves, or whether the outside (the event loop)
does its next action: submit a job or a batch, cancel a ticket, stop the pool. Parking is
simulated (:class:`SimParking`): a parked worker is not scheduled until a signal picks it, as a
``Condition.notify(n)`` would. So thousands of interleavings run in a second, each repeatable
from its seed (which every assertion message names).

Checked across seeds: no job lost or run twice; every job runs while workers steal from each
other; a parked worker wakes when work arrives, and no worker sleeps while work is queued;
shutdown drains or cancels everything; a cancelled pending job never runs. The last test breaks
the parking on purpose and checks that the harness notices.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Generator
from functools import partial

import pytest

from yawlflow import ConfigError
from yawlflow._steal import Park, Ticket, WorkStealingPool

SEEDS = range(300)


class SimParking:
    """:class:`~yawlflow._steal.Parking` for the harness: the scheduler parks and wakes workers."""

    def __init__(self, rng: random.Random) -> None:
        self._epoch = 0
        self.rng = rng
        self.sleeping: set[int] = set()

    @property
    def epoch(self) -> int:
        return self._epoch

    def signal(self, n: int) -> None:
        self._epoch += 1
        for w in self.rng.sample(sorted(self.sleeping), min(n, len(self.sleeping))):
            self.sleeping.discard(w)

    def signal_all(self) -> None:
        self._epoch += 1
        self.sleeping.clear()

    def wait(self, epoch: int) -> None:
        raise AssertionError("the harness parks its workers itself")

    def park(self, w: int, epoch: int) -> None:
        """What ``ThreadParking.wait`` does, as one atomic step: sleep only if nothing moved."""
        if self._epoch == epoch:
            self.sleeping.add(w)


class BrokenParking(SimParking):
    """Sleeps without checking the epoch: the lost wake-up the eventcount exists to prevent."""

    def park(self, w: int, epoch: int) -> None:
        self.sleeping.add(w)


class Sim:
    """A pool of ``workers`` driven step by step from ``seed``."""

    def __init__(self, seed: int, workers: int, *, parking: type[SimParking] = SimParking, grab: int = 32) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.parking = parking(self.rng)
        self.ran: Counter[int] = Counter()
        self.done: Counter[int] = Counter()
        self.discarded: Counter[int] = Counter()
        self.forks: dict[int, list[int]] = {}
        self.pool: WorkStealingPool[int] = WorkStealingPool(
            self._run, self._done, workers=workers, rng=random.Random(seed), discard=self._discard,
            parking=self.parking, start=False, grab=grab,
        )
        self.gens: dict[int, Generator[Park | None, None, None]] = {w: self.pool.steps(w) for w in range(workers)}
        self.exited: set[int] = set()
        self.parking_at: dict[int, int] = {}  # workers that found nothing, about to park
        self.steps = 0

    def _run(self, job: int, worker: int) -> int:
        assert self.pool.current_worker() == worker
        self.ran[job] += 1
        if job in self.forks:  # a handler that forks: onto this worker's own deque
            self.pool.submit_many(self.forks[job])
        return job * 10

    def _done(self, job: int, value: object, error: BaseException | None) -> None:
        assert value == job * 10 and error is None
        self.done[job] += 1

    def _discard(self, job: int, running: bool) -> None:
        self.discarded[job] += 1

    def runnable(self) -> list[int]:
        return [w for w in self.gens if w not in self.exited and w not in self.parking.sleeping]

    def step(self, w: int) -> None:
        self.steps += 1
        if w in self.parking_at:  # a step of its own, as a thread takes the lock after its search
            self.parking.park(w, self.parking_at.pop(w))
            self._check_no_lost_wake_up()
            return
        try:
            request = next(self.gens[w])
        except StopIteration:
            self.exited.add(w)
            return
        if isinstance(request, Park):
            self.parking_at[w] = request.epoch

    def _check_no_lost_wake_up(self) -> None:
        """Every worker asleep or gone while work is queued: nothing would ever run it."""
        if len(self.parking.sleeping) + len(self.exited) == len(self.gens):
            depth = self.pool.metrics().queue_depth
            assert depth == 0, (f"seed {self.seed}: every worker parked or exited with {depth} job(s) queued "
                                "(a lost wake-up, or a worker that stopped too early)")

    def run(self, script: list[Callable[[], object]] | None = None, max_steps: int = 200_000) -> None:
        """Interleave the workers' steps and the outside's ``script`` until nothing can move."""
        script = list(script or [])
        while True:
            actors: list[int | None] = [*self.runnable(), *([None] if script else [])]
            if not actors:
                break
            actor = self.rng.choice(actors)
            if actor is None:
                script.pop(0)()
            else:
                self.step(actor)
            assert self.steps < max_steps, f"seed {self.seed}: no end after {max_steps} steps (livelock?)"
        self._check_no_lost_wake_up()

    def submit(self, jobs: list[int]) -> Callable[[], object]:
        return lambda: self.pool.submit_many(jobs)


def _workload(sim: Sim, rng: random.Random) -> tuple[list[Callable[[], object]], set[int]]:
    """Outside submits (single jobs and batches), some jobs forking children (two levels)."""
    script: list[Callable[[], object]] = []
    expected: set[int] = set()
    next_id = 0
    for _ in range(rng.randint(1, 6)):
        batch = list(range(next_id, next_id + rng.randint(1, 12)))
        next_id += len(batch)
        script.append(sim.submit(batch))
        expected.update(batch)
    for job in sorted(expected):
        if rng.random() < 0.3:
            kids = list(range(next_id, next_id + rng.randint(1, 4)))
            next_id += len(kids)
            sim.forks[job] = kids
            for kid in kids:
                if rng.random() < 0.3:
                    sim.forks[kid] = [next_id]
                    next_id += 1
    return script, expected | {k for kids in sim.forks.values() for k in kids}


def _exactly_once(seed: int, workers: int) -> int:
    rng = random.Random(seed)
    sim = Sim(seed, workers, grab=rng.choice([1, 2, 32]))
    script, expected = _workload(sim, rng)
    sim.run([*script, sim.pool.stop])
    assert sim.exited == set(range(workers)), f"seed {seed}: a worker did not exit after stop()"
    assert set(sim.ran) == expected and set(sim.ran.values()) == {1}, f"seed {seed}: lost or repeated: {sim.ran}"
    assert sim.done == sim.ran and not sim.discarded, f"seed {seed}"
    m = sim.pool.metrics()
    assert (m.submitted, m.completed, m.failed, m.running, m.queue_depth) == (len(expected), len(expected), 0, 0, 0)
    return m.stolen


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_every_job_runs_exactly_once_while_workers_steal(workers: int) -> None:
    stolen = sum(_exactly_once(seed, workers) for seed in SEEDS)
    if workers > 1:
        assert stolen > 0, "the workload never made a worker steal: the test checks nothing about stealing"


def test_a_parked_worker_wakes_when_work_arrives() -> None:
    for seed in SEEDS:
        sim = Sim(seed, workers=3)
        sim.run()  # nothing to do: every worker parks
        assert sim.parking.sleeping == {0, 1, 2} and not sim.exited, f"seed {seed}"
        sim.run([sim.submit([1])])
        assert sim.ran == Counter({1: 1}), f"seed {seed}: the job did not run"
        assert sim.parking.sleeping == {0, 1, 2}, f"seed {seed}: parked again after it"
        sim.forks[2] = [3, 4, 5]  # a batch forked from inside, while the others sleep
        sim.run([sim.submit([2])])
        assert sim.ran == Counter({1: 1, 2: 1, 3: 1, 4: 1, 5: 1}), f"seed {seed}"


def _refusing(action: Callable[[], object], refused: list[int]) -> Callable[[], None]:
    def attempt() -> None:
        try:
            action()
        except ConfigError:
            refused.append(1)
    return attempt


def _cancel_pending(seed: int, workers: int) -> None:
    rng = random.Random(seed)
    sim = Sim(seed, workers)
    script, expected = _workload(sim, rng)
    at = rng.randint(0, len(script))  # stop somewhere among the submits; later ones are refused
    refused: list[int] = []
    script = [*script[:at], partial(sim.pool.stop, cancel_pending=True),
              *(_refusing(action, refused) for action in script[at:])]
    sim.run(script)
    assert sim.exited == set(range(workers)), f"seed {seed}"
    assert len(refused) == len(script) - at - 1, f"seed {seed}: a submit after stop() was accepted"
    both = set(sim.ran) & set(sim.discarded)
    assert not both, f"seed {seed}: ran and cancelled: {both}"
    assert set(sim.ran.values()) <= {1} and set(sim.discarded.values()) <= {1}, f"seed {seed}"
    m = sim.pool.metrics()
    assert m.completed == len(sim.ran) and m.failed == len(sim.discarded), f"seed {seed}: {m}"
    assert (m.running, m.queue_depth) == (0, 0), f"seed {seed}: {m}"
    assert m.submitted == len(sim.ran) + len(sim.discarded) <= len(expected), f"seed {seed}"


@pytest.mark.parametrize("workers", [1, 3])
def test_stop_with_cancel_pending_cancels_everything_not_started(workers: int) -> None:
    for seed in SEEDS:
        _cancel_pending(seed, workers)


def _submit_racing_stop(seed: int) -> None:
    sim = Sim(seed, workers=2)
    refused: list[int] = []
    submit = _refusing(partial(sim.pool.submit, 7), refused)
    sim.run([submit, sim.pool.stop] if seed % 2 else [sim.pool.stop, submit])
    assert sim.exited == {0, 1}, f"seed {seed}"
    assert bool(refused) != (sim.ran == Counter({7: 1})), f"seed {seed}: refused {refused}, ran {sim.ran}"


def test_a_submit_racing_stop_is_refused_or_runs() -> None:
    for seed in SEEDS:
        _submit_racing_stop(seed)


def _cancel_races(seed: int) -> None:
    rng = random.Random(seed)
    sim = Sim(seed, workers=rng.randint(1, 3))
    tickets: list[Ticket[int]] = []
    found: dict[int, str | None] = {}

    def submit() -> None:
        tickets.extend(sim.pool.submit_many(list(range(20))))

    def cancel() -> None:
        for t in rng.sample(tickets, 5):
            if t.item not in found:
                found[t.item] = sim.pool.cancel(t)

    sim.run([submit, cancel, cancel, sim.pool.stop])
    for job, state in found.items():
        if state == "pending":
            assert sim.ran[job] == 0, f"seed {seed}: job {job} ran after it was cancelled"
        elif state == "running":  # abandoned: it ran, its outcome was dropped
            assert sim.ran[job] == 1 and sim.done[job] == 0, f"seed {seed}"
        else:
            assert sim.ran[job] == 1 == sim.done[job], f"seed {seed}"
    assert {j for j in range(20) if j not in found or found[j] is None} <= set(sim.done), f"seed {seed}"


def test_a_cancelled_pending_job_never_runs_and_a_cancel_reports_what_it_found() -> None:
    for seed in SEEDS:
        _cancel_races(seed)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_harness_catches_a_lost_wake_up(workers: int) -> None:
    """Parking that ignores the epoch loses wake-ups under some interleavings: the harness must
    say so, or the tests above prove nothing about parking."""
    caught = []
    for seed in range(100):
        rng = random.Random(seed)
        sim = Sim(seed, workers, parking=BrokenParking)
        script, _ = _workload(sim, rng)
        try:
            sim.run(script)
        except AssertionError as exc:
            assert "lost wake-up" in str(exc)
            caught.append(seed)
    assert caught, "no seed in 100 exposed the broken parking"
