"""Execution strategies: what runs a work item's handler once the engine has decided to run it.

The engine routes; a strategy runs. Every strategy follows :class:`Strategy`: ``submit`` a
:class:`Job` and await its value (the handler's return value, or its exception raised again);
cancelling the awaiting task cancels the job (``cancel``); ``shutdown`` stops taking work, lets
running jobs finish within a drain time, then cancels the rest; ``metrics`` counts. Strategies
are chosen by configuration (``execution.strategy``, a task's ``strategy:``), never by code.

``inline`` runs an async handler in the case's task group (a sync one only if registered quick);
``thread`` and ``process`` run on a work-stealing pool (:mod:`yawlflow._steal`); ``ray`` runs
Ray tasks. A job names its handler (``handler``) so that a strategy that crosses a process
boundary resolves it there by name; in-process strategies call ``fn`` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import msgspec

__all__ = ("Forked", "Job", "Strategy", "StrategyMetrics")


class Job(msgspec.Struct, kw_only=True):
    """One call of a handler.

    Attributes:
        id: unique within the strategy's lifetime (the engine numbers them).
        handler: the handler's name as the spec writes it (``module:function`` or a registered
            name): what a worker process or a Ray task resolves.
        fn: the handler itself, for strategies in this process.
        args: the positional arguments: the item's input, and the item context if the handler
            takes one (a plain ``dict`` for strategies that cross a process boundary).
        key: the item's idempotency key (for logs and metrics).
    """

    id: int
    handler: str
    fn: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    key: str = ""


class StrategyMetrics(msgspec.Struct, kw_only=True):
    """What a strategy counts since it started.

    Attributes:
        submitted: jobs submitted.
        running: jobs running now.
        completed: jobs that returned.
        failed: jobs that raised (cancelled ones included).
        stolen: jobs a worker took from another worker's deque (work-stealing pools).
        batches: submissions of several jobs at once (``submit_many``, ``fork``: a
            multiple-instance task's instances), each handed to the scheduler in one step.
        queue_depth: jobs waiting to start.
        mean_s: the mean run time of finished jobs, in seconds.
        p99_s: the 99th percentile of their run times (over a bounded window of recent jobs).
    """

    submitted: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    stolen: int = 0
    batches: int = 0
    queue_depth: int = 0
    mean_s: float = 0.0
    p99_s: float = 0.0


class Forked(Protocol):
    """One job of a batch handed to a strategy by :meth:`Strategy.fork`: await its own outcome."""

    job: Job

    async def result(self) -> Any:
        """The job's value, or its exception raised again; cancelling the awaiting task cancels
        the job (as for :meth:`Strategy.submit`)."""
        ...

    def cancel(self) -> None:
        """Cancel the job without awaiting it (a no-op once it ended)."""
        ...


@runtime_checkable
class Strategy(Protocol):
    """What runs handlers (see the module docstring)."""

    name: str

    async def submit(self, job: Job) -> Any:
        """Run ``job``; return its value or raise its exception.

        Cancelling the awaiting task cancels the job: a job not started yet never starts; a
        running one is interrupted where the strategy can (an async handler, a Ray task, a worker
        process) or abandoned, its result dropped (a sync function in a thread).

        Raises:
            ConfigError: the strategy is shut down, or cannot run this handler (e.g. a handler
                that is not importable by name, submitted to a process strategy).
            Exception: what the handler raised.
        """
        ...

    async def submit_many(self, jobs: Sequence[Job]) -> list[Any]:
        """Run ``jobs`` as one batch (a multiple-instance task's instances: fork-join), their
        values in order; the first exception is raised after the others are cancelled."""
        ...

    def fork(self, jobs: Sequence[Job]) -> list[Forked]:
        """Hand ``jobs`` over as one batch (a multiple-instance task's instances) that the
        scheduler may split between its workers (a work-stealing pool spreads it over its
        deques, and idle workers steal parts of it), each job with an outcome of its own: one
        instance's failure neither cancels nor waits for the others.

        Raises:
            ConfigError: as :meth:`submit`, checked for every job before any is queued.
        """
        ...

    def cancel(self, job_id: int) -> bool:
        """Cancel one job; whether it was still pending or running."""
        ...

    async def shutdown(self, drain_s: float | None = None) -> None:
        """Stop taking jobs; wait up to ``drain_s`` seconds (``None``: as long as it takes) for
        running ones, then cancel the rest. Idempotent."""
        ...

    def metrics(self) -> StrategyMetrics:
        """The counts so far."""
        ...
