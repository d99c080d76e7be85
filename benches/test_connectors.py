"""Connectors: what the resilience wrapper costs per call, against a bare call to the same connector.

A connector whose ``call`` returns at once (the worst case for the ratio: nothing to hide the
wrapper's cost behind) is called ``N`` times in a row on one event loop (``_kit.LoopHost``),

* bare: ``await connector.call(config, input, ctx)``;
* through :func:`yawlflow.connectors.call_with_resilience` with the default policy (a breaker and
  a bulkhead, no timeout, no retries), then adding a timeout on the system clock, then a retry
  policy of 3 attempts (none needed);
* through :meth:`ConnectorHost.call` (the engine's path: the instance, its guards, the policy).

Each is timed interleaved with the bare loop and with ``N`` anyio task spawn+joins (what the
engine pays to run an async item at all, ARCHITECTURE.md §5). The ratio to the bare call is the
wrapper's cost made visible; the goal is that its overhead stays below one spawn+join, so that
resilience never costs more than the task that runs the item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec
import pytest
from _kit import LoopHost, Report, Row, compare, fmt_time, verdict_at_most

from yawlflow import SystemClock
from yawlflow.connectors import (
    Bulkhead,
    CircuitBreaker,
    ConnectorHost,
    Health,
    Policy,
    Registry,
    RetryPolicy,
    call_with_resilience,
)
from yawlflow.connectors.testing import item_context

N = 10_000


class NoopConfig(msgspec.Struct, frozen=True):
    pass


class Noop:
    """A connector whose call returns at once."""

    yawlflow_api = 1
    Config = NoopConfig

    async def call(self, config: NoopConfig, input: Any, ctx: Any) -> None:
        return None

    async def health(self) -> Health:
        return Health(ok=True)


POLICIES = {
    "default policy (breaker, bulkhead)": Policy(),
    "default + timeout (system clock)": Policy(timeout=30.0),
    "default + timeout + retry policy (3 attempts)": Policy(timeout=30.0, retry=RetryPolicy(attempts=3)),
}


def _hold_open(host: LoopHost, connectors: ConnectorHost) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """Enter ``connectors`` in a task on the host's loop that keeps it open across rounds (its task group
    must be left by the task that entered it)."""
    stop = asyncio.Event()

    async def start() -> asyncio.Task[None]:
        entered = asyncio.Event()

        async def hold() -> None:
            async with connectors:
                entered.set()
                await stop.wait()

        task = host.loop.create_task(hold())
        await entered.wait()
        return task

    return stop, host.run(start())


def _loop(call: Callable[[], Awaitable[object]], n: int) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for _ in range(n):
            await call()

    return run


async def _spawns(n: int) -> None:
    async def nothing() -> None:
        return None

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(nothing)


@pytest.mark.parametrize("subject", [*POLICIES, "ConnectorHost.call"])
def test_wrapper_overhead_vs_a_bare_call(benchmark: Any, report: Report, rounds: int, quick: bool, host: LoopHost,
                                         subject: str) -> None:
    n = N // 5 if quick else N
    connector, config, ctx, clock = Noop(), NoopConfig(), item_context("bench"), SystemClock()
    bare = _loop(lambda: connector.call(config, {}, ctx), n)
    registry = Registry(discover=False)
    registry.register("noop", connector)
    stop: asyncio.Event | None = None
    if subject == "ConnectorHost.call":
        connectors = ConnectorHost(registry=registry, clock=clock)
        stop, held = _hold_open(host, connectors)
        host.run(connectors.call("noop", config, {}, ctx))  # made and opened before timing
        wrapped = _loop(lambda: connectors.call("noop", config, {}, ctx), n)
    else:
        policy = POLICIES[subject]
        assert policy.breaker is not None and policy.bulkhead is not None
        breaker = CircuitBreaker(policy.breaker, clock, name="noop")
        bulkhead = Bulkhead(policy.bulkhead, clock, name="noop")
        wrapped = _loop(lambda: call_with_resilience(connector, config, {}, ctx, policy, clock, breaker=breaker,
                                                     bulkhead=bulkhead, name="noop"), n)
    try:
        total, base = compare(benchmark, lambda: host.run(wrapped()), {
            "bare": lambda: host.run(bare()),
            "spawn": lambda: host.run(_spawns(n)),
        }, rounds)
    finally:
        if stop is not None:
            stop.set()
            host.run(asyncio.wait([held]))
            held.result()
    per_call, per_bare, per_spawn = total / n, base["bare"] / n, base["spawn"] / n
    overhead = per_call - per_bare
    report.add(benchmark, Row(
        group="connectors", name=f"{subject}, {host.kind}",
        measured=f"{fmt_time(per_call)}/call (+{fmt_time(overhead)})",
        baseline=f"bare call {fmt_time(per_bare)}, anyio spawn+join {fmt_time(per_spawn)}",
        ratio=f"{per_call / per_bare:.3g}x the bare call; overhead {overhead / per_spawn:.2g}x a spawn+join",
        goal="overhead <= 1 spawn+join", verdict=verdict_at_most(overhead / per_spawn, 1.0),
        numbers={"s_per_call": per_call, "bare_s_per_call": per_bare, "spawn_s": per_spawn, "n": n,
                 "loop": host.kind},
    ))
