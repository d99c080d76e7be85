"""The keys file, an app that owns its engine (the lifespan ``yawlflow serve`` uses), and ``serve``'s bad input."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving import serving

import yawlflow as yf
from yawlflow.cli import EXIT_BAD_INPUT, main
from yawlflow.web import app, hash_key, load_keys

EXAMPLE = str(Path(__file__).parents[2] / "examples" / "orders_external.yaml")


def write_keys(tmp_path: Path) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  ops:\n    sha256: {hash_key('secret')}\n    role: operator\n    tenant: acme\n")
    return path


def test_the_keys_file_holds_hashes_only(tmp_path: Path) -> None:
    keys = load_keys(write_keys(tmp_path))
    assert [(k.name, k.role, k.tenant) for k in keys.values()] == [("ops", "operator", "acme")]
    bad = tmp_path / "bad.yaml"
    bad.write_text("keys:\n  ops: {key: secret, role: admin, tenant: t}\n")
    with pytest.raises(yf.ConfigError, match="plain key"):
        load_keys(bad)
    with pytest.raises(yf.ConfigError, match="role"):
        load_keys({"x": {"sha256": hash_key("k"), "role": "root", "tenant": "t"}})


@pytest.mark.anyio
async def test_an_app_that_owns_its_engine_enters_and_leaves_it(anyio_backend: object, tmp_path: Path) -> None:
    engine = yf.Engine()
    web = app(engine, keys=write_keys(tmp_path), specs=[yf.load(EXAMPLE)], own_engine=True)
    transport = httpx.ASGITransport(app=web)
    async with web.router.lifespan_context(web), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/api/v1/cases", json={"spec": "orders_external"}, headers={"Authorization": "Bearer secret"})
        assert r.status_code == 201, r.text
        assert r.json()["tenant"] == "acme"
    with pytest.raises(yf.ConfigError):
        await engine.start(yf.load(EXAMPLE))


def test_serve_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--keys", str(tmp_path / "none.yaml")]) == EXIT_BAD_INPUT
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("keys:\n  x: {sha256: nothex, role: admin, tenant: t}\n")
    assert main(["serve", "--keys", str(bad)]) == EXIT_BAD_INPUT
    assert "sha256" in capsys.readouterr().err


def test_a_first_run_without_keys_prints_a_one_time_admin_key(tmp_path: Path) -> None:
    # the README's one command: no keys.yaml in the folder, so the server makes a key and says it
    cmd = [sys.executable, "-m", "yawlflow", "serve", "--port", "0", "--spec", str(EXAMPLE)]
    with serving(cmd, cwd=tmp_path) as served:
        said = "".join(served.output)
        found = re.search(r"admin key \(tenant 'default'\) is\s+(\S+)", said)
        assert found is not None, said
        headers = {"Authorization": f"Bearer {found.group(1)}"}
        with httpx.Client(base_url=served.url + "/api/v1", timeout=30) as client:
            me = client.get("/me", headers=headers)
            assert me.status_code == 200 and me.json()["role"] == "admin" and me.json()["tenant"] == "default"
            started = client.post("/cases", json={"spec": "orders_external"}, headers=headers)
            assert started.status_code == 201, started.text
            assert client.get("/me", headers={"Authorization": "Bearer guess"}).status_code == 401
    assert not (tmp_path / "keys.yaml").exists()  # the key was kept nowhere


def test_a_server_others_can_reach_needs_a_keys_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--host", "0.0.0.0"]) == EXIT_BAD_INPUT  # noqa: S104 - refused, never bound
    err = capsys.readouterr().err
    assert "serve --host 0.0.0.0: no keys.yaml here" in err and "--keys FILE" in err


@pytest.mark.anyio
async def test_uploaded_specs_outlive_a_restart_and_stay_with_their_tenant(anyio_backend: object,
                                                                          tmp_path: Path) -> None:
    from yawlflow._sqlite import SqliteStore

    db = tmp_path / "cases.db"
    keys = {name: {"sha256": hash_key(name), "role": role, "tenant": tenant}
            for name, role, tenant in [("admin-a", "admin", "a"), ("op-a", "operator", "a"),
                                       ("admin-b", "admin", "b"), ("op-b", "operator", "b")]}
    text = Path(EXAMPLE).read_text()
    mine_a = text.replace("orders_external", "mine")
    mine_b = mine_a.replace("approve", "agree")  # b's own spec of the same id

    def by(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def ids(c: httpx.AsyncClient, key: str) -> list[str]:
        r = await c.get("/api/v1/specs", headers=by(key))
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["specs"]]

    def serve(specs: list[yf.Spec]) -> tuple[Any, httpx.AsyncClient]:
        web = app(yf.Engine(store=f"sqlite:///{db}"), keys=keys, specs=specs, own_engine=True)
        return web, httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://t")

    web, client = serve([yf.load(EXAMPLE)])
    async with web.router.lifespan_context(web), client as c:
        r = await c.post("/api/v1/specs", content=mine_a, headers={**by("admin-a"), "Content-Type": "application/yaml"})
        assert r.status_code == 201, r.text
        assert r.json() == {"id": "mine", "root": "main", "version": 1, "nets": ["main"]}
        with SqliteStore(db, readonly=True) as reader:  # on disk when the API answered
            assert [(t, s.id) for t, s in reader.published_specs()] == [("a", "mine")]
        assert await ids(c, "op-a") == ["mine", "orders_external"]
        assert await ids(c, "op-b") == ["orders_external"]

    web, client = serve([])  # a restart, on the same store, without --spec this time
    async with web.router.lifespan_context(web), client as c:
        assert await ids(c, "op-a") == ["mine"]
        assert await ids(c, "op-b") == []  # never another tenant's upload
        shown = await c.get("/api/v1/specs/mine", headers=by("op-a"))
        assert shown.status_code == 200 and shown.json()["spec"]["nets"]["main"]["tasks"].keys() >= {"approve"}
        for path in ("/api/v1/specs/mine", "/api/v1/specs/mine/picture"):
            assert (await c.get(path, headers=by("op-b"))).status_code == 404
        r = await c.post("/api/v1/cases", json={"spec": "mine"}, headers=by("op-a"))
        assert r.status_code == 201, r.text
        assert (r.json()["spec"], r.json()["tenant"]) == ("mine", "a")
        assert {i["task"] for i in r.json()["work_items"]} >= {"approve"}
        r = await c.post("/api/v1/cases", json={"spec": "mine"}, headers=by("op-b"))
        assert r.status_code == 404 and "no spec 'mine'" in r.json()["detail"]
        r = await c.post("/api/v1/specs", content=mine_b, headers={**by("admin-b"), "Content-Type": "application/yaml"})
        assert r.status_code == 201, r.text

    web, client = serve([])
    async with web.router.lifespan_context(web), client as c:
        for key, task in (("op-a", "approve"), ("op-b", "agree")):  # each tenant starts its own version
            r = await c.post("/api/v1/cases", json={"spec": "mine"}, headers=by(key))
            assert r.status_code == 201, r.text
            assert task in {i["task"] for i in r.json()["work_items"]}


@pytest.mark.parametrize("bad", ["0/10", "60/0", "sixty/10", "60", "60/inf", "60/-1"])
def test_a_bad_rate_limit_is_bad_input(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--rate-limit", bad]) == EXIT_BAD_INPUT
    assert f"serve --rate-limit {bad}: expected BURST/PER_S" in capsys.readouterr().err


def test_the_rate_limit_flag_sets_each_keys_bucket(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    cmd = [sys.executable, "-m", "yawlflow", "serve", "--port", "0", "--keys", str(keys), "--rate-limit", "3/0.001"]
    with serving(cmd, cwd=tmp_path) as served, httpx.Client(base_url=served.url, timeout=30) as client:
        answers = [client.get("/api/v1/specs", headers={"Authorization": "Bearer secret"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3"
