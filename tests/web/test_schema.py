"""Schemathesis fuzzing of the OpenAPI document against the app, in-process: no 5xx, every
response's status, content type and body are ones the document gives the operation, and a request
the document calls invalid is refused.

Schemathesis reaches an ASGI app through a client of its own that runs every request on one
event loop (a portal thread), after starting the app's lifespan there. So the app owns its
engine (``own_engine=True``, as under ``yawlflow serve``): the engine is entered in the lifespan,
in the loop every request runs in, and left when the module's fixture shuts the lifespan down.

``GET /items/events`` is not fuzzed: the worklist stream never ends by itself and nothing
changes while one synchronous request waits on it (tests/web/test_api.py drives it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.python import asgi

import yawlflow as yf
from yawlflow.web import app, hash_key, openapi
from yawlflow.web._app import MAX_BODY

SPEC = (Path(__file__).parents[2] / "examples" / "orders_external.yaml").read_text()
SPECS = ("orders_external", "mine")
KEYS = {"admin-a": {"sha256": hash_key("ka"), "role": "admin", "tenant": "a"}}
ADMIN = {"Authorization": "Bearer ka"}
EVENTS = "/api/v1/cases/{case_id}/events"
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance,
          schemathesis.checks.negative_data_rejection]

WEB = app(yf.Engine(), keys=KEYS, specs=[yf.loads(SPEC)], own_engine=True, rate_limit=(10**9, 10.0**9))
"""The app: its lifespan (and so its engine) starts on the first request, in schemathesis's loop."""
schema = schemathesis.openapi.from_dict(openapi())
schema.app = WEB
schema.config.update(headers=ADMIN)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
REAL: dict[str, list[Any]] = {}
"""Objects that exist now, by kind: refilled (by ``objects``) before each operation is fuzzed."""


@pytest.fixture(scope="module")
def client() -> Iterator[asgi.ASGIClient]:
    """A client of the running app (the served document is the one fuzzed) with the spec ``mine`` uploaded."""
    try:
        with asgi.get_client(WEB) as client:  # starts the lifespan: enters the engine
            assert client.get("/openapi.json").json() == openapi()
            r = client.post("/api/v1/specs", data=SPEC.replace("orders_external", "mine"),
                            headers={**ADMIN, "Content-Type": "application/yaml"})
            assert r.status_code == 201, r.text
            yield client
    finally:
        asgi.shutdown_lifespans()  # stops and leaves the engine


@pytest.fixture
def objects(client: asgi.ASGIClient) -> dict[str, Any]:
    """Four new cases: one waiting (``approve`` and ``withdraw`` offered), one with ``approve`` started,
    one cancelled and one completed; their ids and their items' go in :data:`REAL`."""

    def post(url: str, body: Any = None) -> Any:
        r = client.post(url, json=body, headers=ADMIN)
        assert r.status_code in (200, 201), r.text
        return r.json()

    cases = [post("/api/v1/cases", {"spec": spec}) for spec in (*SPECS, *SPECS)]
    waiting, started, cancelled, completed = cases
    approve = {c["id"]: next(i["id"] for i in c["work_items"] if i["task"] == "approve") for c in cases}
    assert post(f"/api/v1/cases/{started['id']}/items/{approve[started['id']]}/start")["item"]["state"] == "started"
    assert post(f"/api/v1/cases/{cancelled['id']}/cancel")["status"] == "cancelled"
    done = post(f"/api/v1/cases/{completed['id']}/items/{approve[completed['id']]}/complete", {"approved": True})
    assert done["case"]["status"] == "completed"
    REAL.update(cases=[c["id"] for c in cases], ended=[cancelled["id"], completed["id"]],
                items=[(c["id"], i["id"]) for c in cases for i in c["work_items"]])
    return {"waiting": waiting, "started": started, "cancelled": cancelled, "completed": completed,
            "approve": approve}


@schema.hook
def flatmap_path_parameters(ctx: schemathesis.HookContext, params: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """Half the time, an object that exists (for the event stream, a case that has ended: the stream
    of a running case goes on until it ends)."""
    if not params:
        return st.just(params)
    if "item_id" in params:
        real = st.sampled_from(REAL["items"]).map(lambda ci: {"case_id": ci[0], "item_id": ci[1]})
    elif ctx.operation is not None and ctx.operation.path == EVENTS:
        real = st.sampled_from(REAL["ended"]).map(lambda c: {"case_id": c})
    elif "case_id" in params:
        real = st.sampled_from(REAL["cases"]).map(lambda c: {"case_id": c})
    elif "spec_id" in params:
        real = st.sampled_from(SPECS).map(lambda s: {"spec_id": s})
    else:
        return st.just(params)
    return st.one_of(st.just(params), real)


@schema.hook
def flatmap_body(ctx: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Half the time, a case of a spec that exists (with the generated data)."""
    if ctx.operation is None or ctx.operation.path != "/api/v1/cases" or not isinstance(body, dict) \
            or not isinstance(body.get("spec"), str):  # (a body without a spec stays one)
        return st.just(body)
    return st.one_of(st.just(body), st.sampled_from(SPECS).map(lambda s: {**body, "spec": s}))


@settings(max_examples=25, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # ``objects``: made once per operation
@schema.exclude(path="/api/v1/items/events").parametrize()
def test_every_response_is_documented(case: schemathesis.Case, objects: dict[str, Any]) -> None:
    case.call_and_validate(checks=CHECKS)


def test_every_success_is_documented(objects: dict[str, Any]) -> None:
    """Each operation (but the worklist stream) on objects that exist: its success, as documented; and
    a body too large, refused as documented."""
    waiting, started, completed = objects["waiting"]["id"], objects["started"]["id"], objects["completed"]["id"]
    approve = objects["approve"][waiting]
    withdraw = next(i["id"] for i in objects["started"]["work_items"] if i["task"] == "withdraw")
    item = "/api/v1/cases/{case_id}/items/{item_id}/"
    calls: list[tuple[str, str, dict[str, Any], int]] = [
        ("POST", "/api/v1/specs", {"body": {**yaml.safe_load(SPEC), "id": "third"}, "media_type": "application/json"},
         201),  # (as JSON: a YAML dumper sorts the keys, and the first task written is the one the input flows to)
        ("GET", "/api/v1/specs", {}, 200),
        ("GET", "/api/v1/specs/{spec_id}", {"path_parameters": {"spec_id": "third"}}, 200),
        ("POST", "/api/v1/cases", {"body": {"spec": "third", "data": {"n": 1}}}, 201),
        ("GET", "/api/v1/cases", {"query": {"status": "running", "limit": 1}}, 200),
        ("GET", "/api/v1/cases/{case_id}", {"path_parameters": {"case_id": waiting}}, 200),
        ("GET", EVENTS, {"path_parameters": {"case_id": completed}, "query": {"after": 1}}, 200),
        ("GET", "/api/v1/items", {"query": {"state": "offered"}}, 200),
        ("POST", "/api/v1/cases/{case_id}/signals",
         {"path_parameters": {"case_id": waiting}, "body": {"signal": "ping", "data": {"a": 1}}}, 202),
        ("POST", item + "start", {"path_parameters": {"case_id": waiting, "item_id": approve}}, 200),
        ("POST", item + "complete", {"path_parameters": {"case_id": waiting, "item_id": approve},
                                     "body": {"approved": True}}, 200),
        ("POST", item + "cancel", {"path_parameters": {"case_id": started, "item_id": objects["approve"][started]}},
         200),
        ("POST", "/api/v1/cases/{case_id}/cancel", {"path_parameters": {"case_id": started}}, 200),
        ("POST", item + "cancel", {"path_parameters": {"case_id": started, "item_id": withdraw}}, 409),
        ("POST", "/api/v1/specs", {"body": {"id": "big", "nets": {"x": "x" * MAX_BODY}},
                                   "media_type": "application/yaml"}, 413),
        ("POST", "/api/v1/cases", {"body": {"spec": "mine", "data": {"x": "x" * MAX_BODY}}}, 413),
    ]
    for method, path, parts, status in calls:
        response = schema[path][method].Case(**parts).call_and_validate(headers=ADMIN, checks=CHECKS)
        assert response.status_code == status, (method, path, response.text[:500])
    shown = schema["/api/v1/cases/{case_id}"]["GET"].Case(path_parameters={"case_id": waiting}).call(headers=ADMIN)
    assert shown.json()["status"] == "completed"
    assert shown.json()["data"]["approved"] is True
