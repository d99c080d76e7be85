"""The keys file, an app that owns its engine (the lifespan ``yawlflow serve`` uses), and ``serve``'s bad input."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

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
