"""The HTTP API (yawlflow.web) in-process, through httpx's ASGITransport, on every anyio backend.

The embedder runs the engine (``async with``); the app does not own it, so no lifespan is needed.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import yawlflow as yf
from yawlflow.web import ROUTES, app, hash_key

pytestmark = pytest.mark.anyio

SPEC = (Path(__file__).parents[2] / "examples" / "orders_external.yaml").read_text()
KEYS = {
    "admin-a": {"sha256": hash_key("ka"), "role": "admin", "tenant": "a"},
    "op-a": {"sha256": hash_key("oa"), "role": "operator", "tenant": "a"},
    "view-a": {"sha256": hash_key("va"), "role": "viewer", "tenant": "a"},
    "op-b": {"sha256": hash_key("ob"), "role": "operator", "tenant": "b"},
    "view-b": {"sha256": hash_key("vb"), "role": "viewer", "tenant": "b"},
}


class Clock:
    """A fake monotonic clock for the rate limiter."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def auth(key: str, idem: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return headers


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with yf.Engine() as engine:
        web = app(engine, keys=KEYS, specs=[yf.loads(SPEC)], rate_limit=(1000, 1000.0))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://t") as c:
            yield c


async def start(client: httpx.AsyncClient, key: str = "oa", idem: str | None = None) -> dict[str, Any]:
    r = await client.post("/api/v1/cases", json={"spec": "orders_external", "data": {}}, headers=auth(key, idem))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_persons_path(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/specs", content=SPEC.replace("orders_external", "mine"),
                          headers={**auth("ka"), "Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "mine"
    ids = [s["id"] for s in (await client.get("/api/v1/specs", headers=auth("va"))).json()["specs"]]
    assert ids == ["mine", "orders_external"]
    r = await client.post("/api/v1/cases", json={"spec": "mine"}, headers=auth("oa"))
    assert r.status_code == 201
    case_id = r.json()["id"]
    items = (await client.get("/api/v1/items?state=offered", headers=auth("va"))).json()["items"]
    approve = next(i for i in items if i["task"] == "approve")
    base = f"/api/v1/cases/{case_id}/items/{approve['id']}"
    r = await client.post(f"{base}/start", headers=auth("oa"))
    assert r.status_code == 200, r.text
    assert r.json()["item"]["state"] == "started"
    r = await client.post(f"{base}/complete", json={"approved": True}, headers=auth("oa"))
    assert r.status_code == 200, r.text
    shown = (await client.get(f"/api/v1/cases/{case_id}", headers=auth("va"))).json()
    assert shown["status"] == "completed"
    assert shown["data"]["approved"] is True
    assert shown["trace"][-1]["event"] == "case.completed"
    listed = (await client.get("/api/v1/cases?status=completed", headers=auth("va"))).json()
    assert [c["id"] for c in listed["cases"]] == [case_id]


async def test_idempotent_posts_answer_the_same_and_change_nothing(client: httpx.AsyncClient) -> None:
    first = await start(client, idem="k1")
    again = await start(client, idem="k1")
    assert again == first
    assert len((await client.get("/api/v1/cases", headers=auth("va"))).json()["cases"]) == 1
    item = next(i for i in first["work_items"] if i["task"] == "approve")
    url = f"/api/v1/cases/{first['id']}/items/{item['id']}/complete"
    one = await client.post(url, json={"x": 1}, headers=auth("oa", "c1"))
    two = await client.post(url, json={"x": 1}, headers=auth("oa", "c1"))
    assert one.status_code == two.status_code == 200
    assert one.json() == two.json()
    trace = (await client.get(f"/api/v1/cases/{first['id']}", headers=auth("va"))).json()["trace"]
    assert sum(1 for e in trace if e["event"] == "item.completed" and e["task"] == "approve") == 1


async def test_problem_details(client: httpx.AsyncClient) -> None:
    bad = "yawlflow: 1\nid: x\nroot: main\nnets:\n  main:\n    input: start\n    tasks:\n      a: {flows: [nowhere]}\n"
    r = await client.post("/api/v1/specs", content=bad, headers=auth("ka"))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "status", "detail", "problems"} <= set(body)
    assert body["problems"] and all("path" in p and "message" in p for p in body["problems"])
    r = await client.post("/api/v1/specs", content=b"{not json", headers={**auth("ka"), "Content-Type":
                                                                          "application/json"})
    assert r.status_code == 422
    r = await client.post("/api/v1/cases", json={"spec": "orders_external", "data": [1]}, headers=auth("oa"))
    assert r.status_code == 400
    r = await client.post("/api/v1/cases", json={"spec": "orders_external", "data": None}, headers=auth("oa"))
    assert r.status_code == 400 and '"data" must be a JSON object' in r.json()["detail"]
    r = await client.post("/api/v1/cases", content=b"{", headers=auth("oa"))
    assert r.status_code == 400
    r = await client.post("/api/v1/cases", json={"spec": "nope"}, headers=auth("oa"))
    assert r.status_code == 404
    assert (await client.get("/api/v1/cases/case-nope", headers=auth("va"))).status_code == 404
    case = await start(client)
    for item in ("999", "abc"):
        r = await client.post(f"/api/v1/cases/{case['id']}/items/{item}/start", headers=auth("oa"))
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
    approve = next(i for i in case["work_items"] if i["task"] == "approve")
    withdraw = next(i for i in case["work_items"] if i["task"] == "withdraw")
    await client.post(f"/api/v1/cases/{case['id']}/items/{approve['id']}/start", headers=auth("oa"))
    r = await client.post(f"/api/v1/cases/{case['id']}/items/{withdraw['id']}/start", headers=auth("oa"))
    assert r.status_code == 409  # withdrawn by the deferred choice
    assert (await client.get("/api/v1/items?state=bogus", headers=auth("va"))).status_code == 400
    assert (await client.get("/api/v1/cases?limit=0", headers=auth("va"))).status_code == 400
    assert (await client.get("/api/v1/nope", headers=auth("va"))).status_code == 404


async def test_roles_and_keys(client: httpx.AsyncClient) -> None:
    case = await start(client)
    item = case["work_items"][0]
    r = await client.post(f"/api/v1/cases/{case['id']}/items/{item['id']}/complete", json={}, headers=auth("va"))
    assert r.status_code == 403
    assert (await client.post("/api/v1/specs", content=SPEC, headers=auth("oa"))).status_code == 403
    assert (await client.get("/api/v1/cases")).status_code == 401
    r = await client.get("/api/v1/cases", headers=auth("wrong"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


async def test_a_tenant_never_sees_another(client: httpx.AsyncClient) -> None:
    case = await start(client, "oa")
    assert (await client.get(f"/api/v1/cases/{case['id']}", headers=auth("ob"))).status_code == 404
    assert (await client.get("/api/v1/cases", headers=auth("ob"))).json()["cases"] == []
    assert (await client.get("/api/v1/items", headers=auth("ob"))).json()["items"] == []
    item = case["work_items"][0]
    for action in ("start", "complete", "cancel"):
        r = await client.post(f"/api/v1/cases/{case['id']}/items/{item['id']}/{action}", headers=auth("ob"))
        assert r.status_code == 404
    assert (await client.post(f"/api/v1/cases/{case['id']}/cancel", headers=auth("ob"))).status_code == 404
    # the same idempotency key in two tenants starts two cases
    a, b = await start(client, "oa", "same"), await start(client, "ob", "same")
    assert a["id"] != b["id"]


async def test_cancel_signal_and_pages(client: httpx.AsyncClient) -> None:
    ids = [(await start(client))["id"] for _ in range(3)]
    page = (await client.get("/api/v1/cases?limit=2", headers=auth("va"))).json()
    rest = (await client.get(f"/api/v1/cases?limit=2&cursor={page['next_cursor']}", headers=auth("va"))).json()
    assert [c["id"] for c in page["cases"] + rest["cases"]] == ids
    assert rest["next_cursor"] is None
    r = await client.post(f"/api/v1/cases/{ids[0]}/signals", json={"signal": "ping", "data": {"a": 1}},
                          headers=auth("oa"))
    assert r.status_code == 202, r.text
    r = await client.post(f"/api/v1/cases/{ids[0]}/cancel", headers=auth("oa"))
    assert r.json()["status"] == "cancelled"


async def test_rate_limit() -> None:
    clock = Clock()
    async with yf.Engine() as engine:
        web = app(engine, keys=KEYS, rate_limit=(2, 1.0), clock=clock)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://t") as c:
            one = await c.get("/api/v1/cases", headers=auth("va"))
            assert one.headers["RateLimit-Limit"] == "2"
            assert one.headers["RateLimit-Remaining"] == "1"
            assert (await c.get("/api/v1/cases", headers=auth("va"))).headers["RateLimit-Remaining"] == "0"
            three = await c.get("/api/v1/cases", headers=auth("va"))
            assert three.status_code == 429
            assert three.headers["content-type"] == "application/problem+json"
            assert int(three.headers["RateLimit-Reset"]) >= 1
            assert (await c.get("/api/v1/cases", headers=auth("oa"))).status_code == 200  # per key
            clock.now += 1.0
            assert (await c.get("/api/v1/cases", headers=auth("va"))).status_code == 200


async def test_the_openapi_document_lists_every_route(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/api/v1/cases/{case_id}/events", "/api/v1/items/events"):
        assert "text/event-stream" in doc["paths"][path]["get"]["responses"]["200"]["content"]
    for route in ROUTES:
        op = doc["paths"]["/api/v1" + route.path][route.method.lower()]
        assert op["responses"] and op["summary"]
        if route.method == "POST":
            assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])
        if route.body is not None:
            assert op["requestBody"]["content"]
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(r.method, "/api/v1" + r.path) for r in ROUTES}


def sse(text: str) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a Server-Sent Events body."""
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


async def test_the_case_event_stream_is_the_trace_then_ends(client: httpx.AsyncClient) -> None:
    case_id = (await start(client))["id"]
    approve = next(i for i in (await client.get("/api/v1/items", headers=auth("va"))).json()["items"]
                   if i["task"] == "approve")
    streamed: list[httpx.Response] = []

    async def stream() -> None:  # ASGITransport answers once the stream has ended: when the case ends
        streamed.append(await client.get(f"/api/v1/cases/{case_id}/events", headers=auth("va")))

    async with anyio.create_task_group() as tg:
        tg.start_soon(stream)
        r = await client.post(f"/api/v1/cases/{case_id}/items/{approve['id']}/complete", json={"approved": True},
                              headers=auth("oa"))
        assert r.status_code == 200, r.text
    (response,) = streamed
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    trace = (await client.get(f"/api/v1/cases/{case_id}", headers=auth("va"))).json()["trace"]
    assert trace[-1]["event"] == "case.completed"
    assert sse(response.text) == [(r["event"], r) for r in trace]
    later = await client.get(f"/api/v1/cases/{case_id}/events", headers={**auth("va"), "Last-Event-ID": "2"})
    assert sse(later.text) == [(r["event"], r) for r in trace[3:]]
    assert (await client.get(f"/api/v1/cases/{case_id}/events?after=x", headers=auth("va"))).status_code == 400
    other = await client.get(f"/api/v1/cases/{case_id}/events", headers=auth("vb"))
    assert other.status_code == 404
    assert other.headers["content-type"] == "application/problem+json"


async def test_the_worklist_stream_shows_items_offered_then_completed() -> None:
    async with yf.Engine() as engine:
        web = app(engine, keys=KEYS, specs=[yf.loads(SPEC)], rate_limit=(1000, 1000.0))
        chunks_in, chunks_out = anyio.create_memory_object_stream[bytes](100)
        disconnect = anyio.Event()
        started: list[int] = []

        async def receive() -> dict[str, Any]:
            await disconnect.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.append(message["status"])
            elif message.get("body"):
                with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):  # after the end
                    await chunks_in.send(message["body"])

        scope = {"type": "http", "method": "GET", "path": "/api/v1/items/events", "raw_path": b"/api/v1/items/events",
                 "query_string": b"", "headers": [(b"authorization", b"Bearer va"), (b"host", b"t")],
                 "scheme": "http", "server": ("t", 80), "client": ("c", 1), "root_path": "", "http_version": "1.1"}
        async with (httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://t") as client,
                    anyio.create_task_group() as tg):
            with chunks_in, chunks_out:
                tg.start_soon(web, scope, receive, send)
                assert await chunks_out.receive() == b": subscribed\n\n"  # subscribed: nothing is missed now
                assert started == [200]
                case_id = (await start(client))["id"]
                await start(client, key="ob")  # another tenant's: not shown
                text = ""
                while text.count("event: item.offered") < 2:
                    text += (await chunks_out.receive()).decode()
                offered = [d for e, d in sse(text) if e == "item.offered"]
                assert {d["task"] for d in offered} == {"approve", "withdraw"}
                assert {d["case"] for d in offered} == {case_id}
                approve = next(d["item"] for d in offered if d["task"] == "approve")
                r = await client.post(f"/api/v1/cases/{case_id}/items/{approve}/complete", json={},
                                      headers=auth("oa"))
                assert r.status_code == 200, r.text
                while ("item.completed", "approve") not in (events := [(e, d["task"]) for e, d in sse(text)]):
                    text += (await chunks_out.receive()).decode()
                assert events.index(("item.offered", "approve")) < events.index(("item.completed", "approve"))
                disconnect.set()
