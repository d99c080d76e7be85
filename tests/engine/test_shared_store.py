"""Several engines on one PostgreSQL store (issue 6, item 9): a case runs on one engine at a time.
An engine creating a case holds its lease; ``resume()`` claims only the cases no live engine holds
(two engines resuming at once never share one); leaving an engine releases its leases, so another
takes its cases over; an engine whose lease passed to another stops running the case and says so.

Needs a server: ``YAWLFLOW_TEST_POSTGRES_URL`` (``bash .ci/run`` starts one); skipped without it."""

from __future__ import annotations

import anyio
import pytest
from kit import AUTO_EXTERNAL_AUTO, inc

import yawlflow as yf

pytestmark = pytest.mark.anyio

def engine(url: str, owner: str) -> yf.Engine:
    sep = "&" if "?" in url else "?"
    return yf.Engine(store=f"{url}{sep}owner={owner}", handlers={"inc": inc})


async def finish(case: yf.Case) -> yf.Result:
    [item] = case.work_items("offered")
    await case.complete(item.id, {"done": True})
    return await case.result()


async def test_a_live_engine_keeps_its_cases_and_leaving_hands_them_over(pg_url: str) -> None:
    async with engine(pg_url, "a") as a:
        case = await a.start(yf.loads(AUTO_EXTERNAL_AUTO))
        await case.idle()
        async with engine(pg_url, "b") as b:
            assert await b.resume() == []  # a holds the lease
    # a left: its leases are released
    async with engine(pg_url, "b") as b:
        [resumed] = await b.resume()
        assert resumed.id == case.id
        result = await finish(resumed)
    assert result.status == "completed"
    assert result.data == {"n": 2, "done": True}


async def test_engines_resuming_at_once_never_share_a_case(pg_url: str) -> None:
    async with engine(pg_url, "seed") as first:
        ids = {(await first.start(yf.loads(AUTO_EXTERNAL_AUTO))).id for _ in range(6)}
    got: dict[str, list[str]] = {}

    async def take(owner: str, ready: anyio.Event, go: anyio.Event) -> None:
        async with engine(pg_url, owner) as e:
            ready.set()
            await go.wait()
            got[owner] = [c.id for c in await e.resume()]
            for case in e._cases.values():
                if case._parent is None:
                    await finish(case)

    go = anyio.Event()
    ready = [anyio.Event() for _ in range(3)]
    async with anyio.create_task_group() as tg:
        for i, r in enumerate(ready):
            tg.start_soon(take, f"e{i}", r, go)
        for r in ready:
            await r.wait()
        go.set()
    taken = [c for cases in got.values() for c in cases]
    assert sorted(taken) == sorted(ids)  # every case once, none twice
    async with engine(pg_url, "check") as e:
        assert {r.status for r in await e.cases()} == {"completed"}


async def test_an_engine_whose_lease_passed_on_stops_running_the_case(pg_url: str) -> None:
    async with engine(pg_url, "a") as a:
        case = await a.start(yf.loads(AUTO_EXTERNAL_AUTO))
        await case.idle()
        store = a.store
        store.release()  # type: ignore[attr-defined]  # as if its lease had expired
        async with engine(pg_url, "b") as b:
            [taken] = await b.resume()
            with pytest.raises(yf.StoreError, match=r"leased|another engine"):
                [item] = case.work_items("offered")
                await case.complete(item.id, {"done": True})
            with pytest.raises(yf.StoreError, match="run by another engine"):
                await case.result()
            assert (await finish(taken)).status == "completed"
