"""Embedding yawlflow in an asyncio application (docs/embedding.md).

One engine for the process, entered once around the application's lifetime; request handlers
(plain coroutines here, standing in for a web framework's) start cases and complete work items
with idempotency keys, so a retried request changes nothing.
"""

import asyncio
from typing import Any

import yawlflow as yf

SPEC = yf.load("examples/shipment.yaml")  # load and validate once, at start-up


def price(order: dict[str, Any]) -> dict[str, Any]:  # sync, no I/O: registered quick, called inline
    return {"amount": order["qty"] * 40}


async def pack(order: dict[str, Any], ctx: yf.ItemContext) -> dict[str, Any]:  # async: awaited in a task
    await asyncio.sleep(0)  # e.g. a call to the warehouse, keyed on ctx.idempotency_key
    return {"parcel": f"P{ctx.item_id}-{ctx.attempt}"}


async def post_order(engine: yf.Engine, body: dict[str, Any], request_id: str) -> dict[str, str]:
    """POST /orders: start a case; the same Request-Id starts nothing new."""
    case = await engine.start(SPEC, data=body, key=request_id)
    return {"case": case.id}


async def post_payment(engine: yf.Engine, case_id: str, ref: str) -> None:
    """POST /orders/{id}/payment: a signal; the payment's reference is its idempotency key."""
    await engine.case(case_id).signal("paid", {"payment": ref}, key=ref)


async def post_approval(engine: yf.Engine, case_id: str, who: str) -> None:
    """POST /orders/{id}/approval: complete the offered approval item."""
    case = engine.case(case_id)
    await case.idle()  # let the handlers run: the approval is offered once the case waits
    item = next(i for i in case.work_items("offered") if i.task == "approve")
    await case.complete(item.id, {"approved_by": who}, key=f"approve/{case_id}")


async def main() -> None:
    async with yf.Engine(seed=1) as engine:  # one engine per process, around the whole app
        engine.handlers.register("price", price, quick=True)
        engine.handlers.register("pack", pack)
        first = await post_order(engine, {"qty": 3}, request_id="req-1")
        again = await post_order(engine, {"qty": 3}, request_id="req-1")  # a client's retry
        assert again == first
        case_id = first["case"]
        await post_payment(engine, case_id, "pay-77")
        await post_payment(engine, case_id, "pay-77")  # delivered twice: applied once
        await post_approval(engine, case_id, "ana")
        result = await engine.case(case_id).result()
        print(result.status, result.data)
        print([e["task"] for e in result.trace if e["event"] == "item.completed"])


if __name__ == "__main__":
    asyncio.run(main())
