"""Embedding yawlflow in a trio application, tested on a virtual clock (docs/embedding.md).

The engine's ``async with`` is a task group: its cases live inside it. Here a nursery runs one
task per order, each waiting for its case's result; nobody approves, so after two (virtual)
days each case escalates. The FakeClock jumps there at once. Then a graceful shutdown:
``engine.stop()`` takes no new work, and leaving the engine lets running items finish for up to
``execution.drain`` before it cancels what is left. The case left unfinished is in the durable
store, and the next engine on that store resumes it.
"""

import tempfile
from typing import Any

import trio

import yawlflow as yf
from yawlflow.testing import FakeClock

SPEC = yf.load("examples/shipment.yaml")


async def pack(order: dict[str, Any]) -> dict[str, Any]:
    await trio.sleep(0)  # anything trio can await
    return {"packed": True}


async def run_order(engine: yf.Engine, qty: int, results: dict[int, str]) -> None:
    case = await engine.start(SPEC, data={"qty": qty}, key=f"order-{qty}")
    await case.signal("paid", {"payment": f"pay-{qty}"})
    result = await case.result()  # no approval: the two-day timer fires on the fake clock
    path = [e["task"] for e in result.trace if e["event"] == "item.completed"]
    results[qty] = f"{result.status} by {path[-1]}"


def make_engine(store: str) -> yf.Engine:
    clock = FakeClock(autojump=True)  # jumps to the next deadline whenever every task is blocked
    engine = yf.Engine(store=store, clock=clock, seed=7, config={"execution": {"drain": "30s"}})
    engine.handlers.register("price", lambda order: {"amount": order["qty"] * 40}, quick=True)
    engine.handlers.register("pack", pack)
    return engine


async def main(store: str) -> None:
    async with make_engine(store) as engine:
        results: dict[int, str] = {}
        async with trio.open_nursery() as nursery:
            for qty in (1, 2, 3):
                nursery.start_soon(run_order, engine, qty, results)
        print(sorted(results.items()))
        waiting = await engine.start(SPEC, data={"qty": 9})  # left waiting for its payment
        engine.stop()  # e.g. on SIGTERM: no new case, no new item
        try:
            await engine.start(SPEC, data={"qty": 4})
        except yf.ConfigError as exc:
            print("refused:", exc)
    async with make_engine(store) as engine:  # a restart: the next process on the same store
        [case] = await engine.resume()
        assert case.id == waiting.id
        await case.signal("paid", {"payment": "pay-9"})
        print("resumed:", (await case.result()).status)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(main, f"sqlite:///{tmp}/cases.db")
