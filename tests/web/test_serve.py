"""The keys file, an app that owns its engine (the lifespan ``yawlflow serve`` uses), and ``serve``'s bad input."""

from __future__ import annotations

import re
import sys
from pathlib import Path

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
