import anyio

import yawlflow as yf


def receive_order(order: dict[str, int]) -> dict[str, int]:  # sync and quick: called inline
    return {"amount": order["qty"] * 40}


async def check_credit(order: dict[str, int]) -> dict[str, bool]:  # async: awaited in a task
    await anyio.sleep(0)  # e.g. a call to a credit service
    return {"credit_ok": order["amount"] <= 5_000}


async def main() -> None:
    async with yf.Engine() as engine:
        engine.handlers.register("receive_order", receive_order, quick=True)
        engine.handlers.register("check_credit", check_credit)
        case = await engine.start("examples/approval.yaml", data={"qty": 30})
        await case.idle()  # the handlers ran; the approval is offered
        item = next(i for i in case.work_items("offered") if i.task == "approve")
        await case.complete(item.id, {"approved_by": "ana"})
        result = await case.result()
        print(result.status, result.data)


anyio.run(main)
