"""WCP-14 Multiple Instances with a priori Run-Time Knowledge: n computed from the case's data
before the task starts; the successor waits for all n."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from ._catalogue import Pattern
from ._kit import ends, events, label, positions, steps, work

if TYPE_CHECKING:
    from yawlflow import Case, ItemContext, Result

    from ._catalogue import Trace

__all__ = ("PATTERN",)

SPEC = """\
yawlflow: 1
id: wcp14_multiple_instances_with_a_priori_run_time_knowledge
nets:
  main:
    input: start
    output: end
    tasks:
      receive: {external: true, flows: [price]}
      price: {run: price, instances: {items: lines, as: prices}, flows: [invoice]}
      invoice: {run: work, flows: [end]}
"""


async def price(data: dict[str, Any], ctx: ItemContext) -> dict[str, Any]:
    """Prices one order line (``item``): ten per unit."""
    return {"total": int(data["item"]) * 10}


async def _drive(case: Case, rng: random.Random) -> None:
    (item,) = case.work_items("offered")
    await case.complete(item.id, {"lines": [rng.randint(1, 9) for _ in range(rng.randint(1, 5))]})


def _lines(trace: Trace) -> list[int]:
    (done,) = events(trace, "item.completed", "receive")
    return [int(x) for x in done["data"]["lines"]]


def _n_from_data(trace: Trace, result: Result) -> None:
    lines = _lines(trace)
    made = [r for r in trace if r["event"] == "item.started" and r["task"] == "price" and r["instance"] is not None]
    if len(made) != len(lines):
        raise AssertionError(f"the data holds {len(lines)} lines, but {len(made)} instances were created")
    (opened,) = positions(trace, "item.started", "price", instance=None)
    step = steps(trace)
    late = [label(trace[i]) for i, r in enumerate(trace) if r in made and step[i] != step[opened]]
    if late:
        raise AssertionError(f"instances must all be created when price starts, not later: {late}")


def _after_all(trace: Trace, result: Result) -> None:
    (enabled,) = positions(trace, "item.enabled", "invoice")
    done = [i for i in positions(trace, "item.completed", "price") if trace[i]["instance"] is not None]
    if len(done) != len(_lines(trace)):
        raise AssertionError("not every instance completed")
    if max(done) >= enabled:
        raise AssertionError(f"invoice was enabled at {label(trace[enabled])}, before every instance completed")


def _gathered(trace: Trace, result: Result) -> None:
    want = [{"total": n * 10} for n in _lines(trace)]
    if result.data.get("prices") != want:
        raise AssertionError(
            f"the instances' outputs, gathered in instance order, must be {want}, not {result.data.get('prices')}"
        )


PATTERN = Pattern(
    number=14,
    name="Multiple Instances with a priori Run-Time Knowledge",
    definition=(
        "Within a given process instance, multiple instances of a task can be created; the required "
        "number depends on run-time factors (the case's data) and is known before the instances are "
        "created. All n instances are created when the task starts, each sees its own element of the "
        "data, and the successor is enabled only after all n have completed."
    ),
    spec=SPEC,
    handlers={"price": price, "work": work},
    drive=_drive,
    properties=(
        ends("completed"),
        ("n is taken from the data, and all n instances are created when the task starts", _n_from_data),
        ("the successor waits for all n instances", _after_all),
        ("each instance's output is gathered in instance order", _gathered),
    ),
    construct="instances: {count: <CEL>} or {items: <CEL list>, as: key}",
)
