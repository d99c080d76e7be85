"""Seeded runs are deterministic: the same trace on every run and on every backend.

ARCHITECTURE.md §3 ("Determinism") and §4: with a seed, the order in which events are applied is
fixed by the seed, never by timing (handlers run one at a time in a seed-chosen order), so for
the same spec, data, seed and external calls the trace is identical on every run and on asyncio
and trio. And the seed really chooses: different seeds can interleave parallel branches
differently.
"""

from __future__ import annotations

from typing import Any

import pytest

import yawlflow
from yawlflow._spec import from_data
from yawlflow.testing import FakeClock

SEEDS = range(5)
BACKENDS = ("asyncio", "trio")


def spec(net: dict[str, Any], name: str) -> yawlflow.Spec:
    return from_data(
        {"yawlflow": 1, "id": name, "nets": {"main": {"input": "start", "output": "end", **net}}}
    )


def tag(name: str) -> Any:
    """A handler that records that it ran (and what it saw) in the case data."""

    def handler(data: dict[str, Any]) -> dict[str, Any]:
        return {name: data.get("n", 0) + 1, "n": data.get("n", 0) + 1}

    return handler


PARALLEL = spec(
    {
        "tasks": {
            "split": {"flows": ["a", "b", "c", "d"]},  # WCP-2 parallel split
            "a": {"run": "a", "flows": ["sync"]},
            "b": {"run": "b", "flows": ["sync"]},
            "c": {"run": "c", "flows": ["sync"]},
            "d": {"run": "d", "flows": ["sync"]},
            "sync": {"join": "and", "run": "sync", "flows": ["end"]},  # WCP-3 synchronisation
        }
    },
    "parallel",
)
PARALLEL_HANDLERS = {name: tag(name) for name in ("a", "b", "c", "d", "sync")}

DEFERRED = spec(
    {
        "conditions": {"waiting": {"flows": ["remind", "escalate", "approve"]}},
        "tasks": {
            "prepare": {"run": "prepare", "flows": ["waiting"]},
            # WCP-16: three tasks race for one token; the two timers are due at the same instant,
            # so only the (seeded, id-ordered) engine decides which one takes it.
            "remind": {"timer": {"after": "1s"}, "flows": ["end"]},
            "escalate": {"timer": {"after": "1s"}, "flows": ["end"]},
            "approve": {"external": True, "flows": ["end"]},
        },
    },
    "deferred",
)
DEFERRED_HANDLERS = {"prepare": tag("prepare")}

ORJOIN = spec(
    {
        "tasks": {
            "route": {
                "run": "route",
                "split": "or",  # WCP-6 multi-choice
                "flows": [
                    {"to": "a", "when": "n >= 1"},
                    {"to": "b", "when": "n >= 2"},
                    {"to": "c", "when": "n >= 100"},
                    {"to": "d", "default": True},
                ],
            },
            "a": {"run": "a", "flows": ["merge"]},
            "b": {"run": "b", "flows": ["merge"]},
            "c": {"run": "c", "flows": ["merge"]},
            "d": {"run": "d", "flows": ["merge"]},
            "merge": {"join": "or", "run": "merge", "flows": ["end"]},  # WCP-7 structured synchronising merge
        }
    },
    "orjoin",
)
ORJOIN_HANDLERS = {name: tag(name) for name in ("route", "a", "b", "c", "d", "merge")}

CASES = {
    "parallel": (PARALLEL, PARALLEL_HANDLERS, {"n": 0}),
    "deferred-choice": (DEFERRED, DEFERRED_HANDLERS, {"n": 0}),
    "or-join": (ORJOIN, ORJOIN_HANDLERS, {"n": 1}),
}


def run(name: str, seed: int, backend: str) -> yawlflow.Result:
    the_spec, handlers, data = CASES[name]
    return yawlflow.run(
        the_spec, data, seed=seed, handlers=handlers, backend=backend, clock=FakeClock(autojump=True)
    )


@pytest.mark.parametrize("name", list(CASES))
def test_same_seed_same_trace_on_every_run_and_backend(name: str) -> None:
    for seed in SEEDS:
        results = [run(name, seed, backend) for backend in BACKENDS for _ in range(2)]
        first = results[0]
        assert first.status == "completed", (name, seed, first.error)
        for other, label in zip(results[1:], ["asyncio again", "trio", "trio again"], strict=True):
            assert other.status == first.status, (name, seed, label)
            assert other.case_id == first.case_id, (name, seed, label)
            assert other.data == first.data, (name, seed, label)
            assert other.trace == first.trace, f"{name}: seed {seed}, {label} differs from asyncio"


def test_the_cases_do_what_they_say() -> None:
    # Guard the specs above: the deferred choice was won by exactly one timer, the OR-join merged
    # exactly the chosen branches, the parallel split ran all four.
    result = run("deferred-choice", 0, "asyncio")
    done = [r["task"] for r in result.trace if r["event"] == "item.completed"]
    assert done[0] == "prepare" and len(done) == 2 and done[1] in ("remind", "escalate")
    cancelled = sorted(r["task"] for r in result.trace if r["event"] == "item.cancelled")
    assert cancelled == sorted({"remind", "escalate", "approve"} - {done[1]})

    result = run("or-join", 0, "asyncio")
    done = [r["task"] for r in result.trace if r["event"] == "item.completed"]
    assert done[0] == "route" and sorted(done[1:3]) == ["a", "b"] and done[3:] == ["merge"]

    result = run("parallel", 0, "asyncio")
    done = [r["task"] for r in result.trace if r["event"] == "item.completed"]
    assert done[0] == "split" and sorted(done[1:5]) == ["a", "b", "c", "d"] and done[5] == "sync"


def test_different_seeds_interleave_parallel_branches_differently() -> None:
    orders = set()
    for seed in range(10):
        result = run("parallel", seed, "asyncio")
        assert result.status == "completed"
        orders.add(
            tuple(
                r["task"]
                for r in result.trace
                if r["event"] == "item.completed" and r["task"] in ("a", "b", "c", "d")
            )
        )
    assert len(orders) >= 2, orders
