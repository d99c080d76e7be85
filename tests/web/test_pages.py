"""The worklist page's shell and files, the routes it reads (``/me``, a case's marking) and the net
picture, in-process through httpx's ASGITransport, on every anyio backend.

What the page does in a browser is tests/web/test_browser.py.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

import yawlflow as yf
from yawlflow.web import app, hash_key

pytestmark = pytest.mark.anyio

SPEC = (Path(__file__).parents[2] / "examples" / "orders_external.yaml").read_text()
KEYS = {
    "op-a": {"sha256": hash_key("oa"), "role": "operator", "tenant": "a"},
    "view-a": {"sha256": hash_key("va"), "role": "viewer", "tenant": "a"},
    "op-b": {"sha256": hash_key("ob"), "role": "operator", "tenant": "b"},
}
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed "
                               "(apt install graphviz; bash .ci/run installs it)")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with yf.Engine() as engine:
        web = app(engine, keys=KEYS, specs=[yf.loads(SPEC)], rate_limit=(1000, 1000.0))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://t") as c:
            yield c


async def start(client: httpx.AsyncClient, key: str = "oa") -> str:
    r = await client.post("/api/v1/cases", json={"spec": "orders_external"}, headers=auth(key))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


class Shell(HTMLParser):
    """What the page's HTML holds: its tags with their attributes, and whether a script is inline."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]


async def test_the_pages_are_served_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    for path in ("/", "/cases/case-anything"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        policy = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
        assert policy["default-src"] == "'none'"
        assert policy["script-src"] == "'self'"
        assert "unsafe" not in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
    for name, media_type in (("worklist.js", "text/javascript"), ("worklist.css", "text/css")):
        r = await client.get(f"/static/{name}")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(media_type)
        assert r.headers["x-content-type-options"] == "nosniff"
    r = await client.get("/static/worklist.html")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert (await client.get("/static/../_app.py")).status_code == 404


async def test_the_shell_is_accessible_and_runs_no_inline_script(client: httpx.AsyncClient) -> None:
    shell = Shell()
    shell.feed((await client.get("/")).text)
    (page,) = shell.all("html")
    assert page["lang"] == "en"
    assert any(m.get("name") == "viewport" and "width=device-width" in str(m.get("content")) for m in shell.all("meta"))
    assert shell.all("header") and shell.all("main")
    assert [s["src"] for s in shell.all("script")] == ["/static/worklist.js"]
    assert not shell.inline_script
    assert not shell.all("style")  # inline style: the policy refuses it too
    assert not any("style" in attrs or any(a.startswith("on") for a in attrs) for _, attrs in shell.tags)
    labelled = {attrs["for"] for attrs in shell.all("label")}
    fields = [attrs for tag in ("input", "select", "textarea") for attrs in shell.all(tag)]
    assert fields
    assert all(f["id"] in labelled for f in fields), fields
    (status,) = [attrs for _, attrs in shell.tags if attrs.get("id") == "status"]
    assert status["aria-live"] == "polite"
    assert all(b.get("type") in ("button", "submit") for b in shell.all("button"))


async def test_a_mounted_app_points_its_page_under_its_prefix() -> None:
    async with yf.Engine() as engine:
        outer = Starlette(routes=[Mount("/workflow", app=app(engine, keys=KEYS))])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer), base_url="http://t") as c:
            r = await c.get("/workflow/")
            assert r.status_code == 200
            assert '<script src="/workflow/static/worklist.js" defer>' in r.text
            assert '<meta name="yawlflow-root" content="/workflow">' in r.text
            assert (await c.get("/workflow/static/worklist.css")).status_code == 200


async def test_me_names_the_key(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/me", headers=auth("va"))
    assert r.json() == {"name": "view-a", "role": "viewer", "tenant": "a"}
    assert (await client.get("/api/v1/me")).status_code == 401
    assert (await client.get("/api/v1/me", headers=auth("nope"))).status_code == 401


async def test_the_marking_of_a_case(client: httpx.AsyncClient) -> None:
    case_id = await start(client)
    r = await client.get(f"/api/v1/cases/{case_id}/marking", headers=auth("va"))
    assert r.status_code == 200, r.text
    assert r.json() == {"case": case_id, "net": "main", "status": "running", "tokens": {"waiting": 1},
                        "live": {"approve": {"offered": 1}, "withdraw": {"offered": 1}}, "done": {"receive": 1}}
    assert (await client.get(f"/api/v1/cases/{case_id}/marking", headers=auth("ob"))).status_code == 404
    assert (await client.get(f"/api/v1/cases/{case_id}/marking")).status_code == 401


def svg_text(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "script-src" not in r.headers["content-security-policy"]  # default-src 'none': no script runs
    assert "<svg" in r.text
    assert "<script" not in r.text
    return html.unescape(r.text)  # dot writes "-" as &#45;


@needs_dot
async def test_the_picture_of_a_spec_and_of_a_case(client: httpx.AsyncClient) -> None:
    plain = svg_text(await client.get("/api/v1/specs/orders_external/picture", headers=auth("va")))
    assert ">approve<" in plain
    assert "case " not in plain
    case_id = await start(client)
    drawn = svg_text(await client.get(f"/api/v1/specs/orders_external/picture?case={case_id}", headers=auth("va")))
    assert f"case {case_id} (running)" in drawn  # the overlay's title
    assert re.search(r"waiting: 1 token\b", drawn)  # the marked condition's tooltip


async def test_the_picture_answers_problems(client: httpx.AsyncClient) -> None:
    case_id = await start(client)
    url = "/api/v1/specs/orders_external/picture"
    cases: list[tuple[str, dict[str, str], int]] = [
        (url, {}, 401),
        (url, auth("wrong"), 401),
        ("/api/v1/specs/nope/picture", auth("va"), 404),
        (f"{url}?case=case-nope", auth("va"), 404),
        (f"{url}?case={case_id}", auth("ob"), 404),  # another tenant's case
        (f"/api/v1/specs/other/picture?case={case_id}", auth("va"), 404),  # not this spec's case
    ]
    for path, headers, status in cases:
        r = await client.get(path, headers=headers)
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = await client.post(url, headers=auth("oa"))
    assert r.status_code == 405


async def test_without_graphviz_the_picture_names_the_fix(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    r = await client.get("/api/v1/specs/orders_external/picture", headers=auth("va"))
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["title"] == "Graphviz missing"
    assert "install graphviz" in body["detail"]


async def test_the_document_describes_the_new_routes(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    picture = doc["paths"]["/api/v1/specs/{spec_id}/picture"]["get"]
    assert "image/svg+xml" in picture["responses"]["200"]["content"]
    assert [p["name"] for p in picture["parameters"]] == ["spec_id", "case"]
    assert {"401", "404", "503"} <= set(picture["responses"])
    assert doc["paths"]["/api/v1/me"]["get"]["x-role"] == "viewer"
    assert "/api/v1/cases/{case_id}/marking" in doc["paths"]
    assert not any(p in doc["paths"] for p in ("/", "/cases/{case_id}"))  # the pages are not API
