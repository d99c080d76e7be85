"""The registry: built-ins, explicit registration, lazy discovery through entry points, and refusals.

Plugins here are real distributions: a ``*.dist-info`` folder and a module in a temporary
directory put on ``sys.path``, read by ``importlib.metadata`` as pip's installs are.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import yawlflow as yf
from yawlflow.connectors import (
    ConnectorConfigError,
    IncompatiblePluginError,
    PluginError,
    Registry,
    UnknownConnectorError,
)
from yawlflow.connectors.testing import ScriptedConnector

GOOD = '''
import msgspec
from yawlflow.connectors import Health

class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    table: str

class LedgerConnector:
    yawlflow_api = API
    Config = Config

    async def call(self, config, input, ctx):
        return {"table": config.table}

    async def health(self):
        return Health(ok=True)
'''


def make_dist(root: Path, dist: str, module: str, code: str, entry_points: dict[str, str],
              requires: tuple[str, ...] = (), version: str = "1.0") -> Path:
    """A distribution as pip leaves it in site-packages: the module and its dist-info."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\n" f"Name: {dist}\n" f"Version: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    )
    (info / "entry_points.txt").write_text(
        "[yawlflow.connectors]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    )
    return root


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site directory on sys.path; the modules it holds are forgotten after the test."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_the_builtins_are_known_and_resolve() -> None:
    registry = Registry(discover=False)
    assert registry.names() == ["http", "python", "shell"]
    assert registry.connector_class("python").__name__ == "PythonConnector"
    assert registry.connector_class("http") is yf.connectors.HttpConnector  # type: ignore[attr-defined]


def test_an_unknown_name_lists_the_known_ones_and_says_what_to_do() -> None:
    with pytest.raises(UnknownConnectorError) as info:
        Registry(discover=False).resolve("htp")
    assert str(info.value) == (
        "no connector named 'htp' (did you mean 'http'?); known: http, python, shell. Register one with "
        "yawlflow.connectors.register('htp', cls), or install a package with a 'yawlflow.connectors' entry point "
        "named 'htp'"
    )
    assert isinstance(info.value, yf.ConnectorError) and not info.value.retryable


def test_explicit_registration_comes_first_and_is_checked() -> None:
    registry = Registry(discover=False)
    registry.register("http", ScriptedConnector)
    assert registry.connector_class("http") is ScriptedConnector
    with pytest.raises(yf.ConfigError, match="'http' is registered already: pass replace=True"):
        registry.register("http", ScriptedConnector)
    registry.register("http", ScriptedConnector(), replace=True)
    assert registry.connector_class("http") is ScriptedConnector

    class NotOne:
        def call(self) -> None: ...

    with pytest.raises(PluginError, match=r"^connector 'x' \(registered explicitly\) is not a connector: it needs "
                                          r"a `Config` class attribute that is a msgspec.Struct; an `async def "
                                          r"call`; an `async def health`"):
        registry.register("x", NotOne)


def test_a_child_registry_asks_its_parent() -> None:
    parent = Registry(discover=False)
    parent.register("scripted", ScriptedConnector)
    child = Registry(parent=parent)
    assert child.connector_class("scripted") is ScriptedConnector
    assert "scripted" in child.names() and "http" in child.names()


def test_configs_are_validated_with_located_errors() -> None:
    registry = Registry(discover=False)
    config = registry.validate_config("http", {"url": "https://x/{id}", "timeout": "2s"}, "$.t.run.config")
    assert config.timeout == 2.0  # type: ignore[attr-defined]
    with pytest.raises(ConnectorConfigError) as info:
        registry.validate_config("http", {"url": "https://x", "methd": "POST"}, "$.nets.main.tasks.t.run.config")
    assert info.value.path == "$.nets.main.tasks.t.run.config.methd"
    assert info.value.below == ("methd",)
    assert info.value.reason == "unknown field 'methd'"
    assert info.value.hint.startswith("did you mean 'method'? the 'http' connector's config takes: url: str, method:")
    with pytest.raises(ConnectorConfigError, match=r"^\$\.c: missing required field 'url' \(add url: <str>;"):
        registry.validate_config("http", {}, "$.c")
    with pytest.raises(ConnectorConfigError, match=r"^\$\.c: url 'ftp://x' must start with http:// or https://"):
        registry.validate_config("http", {"url": "ftp://x"}, "$.c")
    with pytest.raises(ConnectorConfigError, match=r"^\$\.c\.headers\[\.\.\.\]: Expected `str`, got `int`") as bad:
        registry.validate_config("http", {"url": "https://x", "headers": {"a": 1}}, "$.c")
    assert bad.value.below == ("headers",)
    with pytest.raises(ConnectorConfigError) as bad:
        registry.validate_config("http", {"url": "https://x", "response_headers": ["a", 2]}, "$.c")
    assert bad.value.below == ("response_headers", 1)


# -- discovery ------------------------------------------------------------------------------------


def test_a_plugin_is_discovered_and_imported_only_on_first_use(site: Path) -> None:
    make_dist(site, "yawlflow-ledger", "ledger_plugin", GOOD.replace("API", "1"),
              {"ledger": "ledger_plugin:LedgerConnector"})
    registry = Registry()
    assert "ledger" in registry.names()
    assert "ledger_plugin" not in sys.modules, "listing names reads metadata only"
    cls = registry.connector_class("ledger")
    assert cls.__module__ == "ledger_plugin" and "ledger_plugin" in sys.modules
    assert registry.validate_config("ledger", {"table": "t"}, "$.c").table == "t"  # type: ignore[attr-defined]


def test_a_plugin_that_fails_to_import_names_its_distribution(site: Path) -> None:
    make_dist(site, "yawlflow-broken", "broken_plugin", "import no_such_module_here\n",
              {"broken": "broken_plugin:Connector"}, version="2.3")
    with pytest.raises(PluginError) as info:
        Registry().resolve("broken")
    assert str(info.value) == (
        "connector 'broken': entry point 'broken_plugin:Connector' of distribution 'yawlflow-broken' 2.3 failed "
        "to import: ModuleNotFoundError: No module named 'no_such_module_here'; reinstall it (pip install "
        "--force-reinstall yawlflow-broken) or uninstall it (pip uninstall yawlflow-broken)"
    )
    assert info.value.distribution == "yawlflow-broken"


def test_a_plugin_requiring_another_yawlflow_is_refused_before_it_is_imported(site: Path) -> None:
    make_dist(site, "yawlflow-future", "future_plugin", GOOD.replace("API", "1"),
              {"future": "future_plugin:LedgerConnector"}, requires=("msgspec", "yawlflow>=2,<3"))
    with pytest.raises(IncompatiblePluginError) as info:
        Registry().resolve("future")
    assert str(info.value) == (
        f"connector 'future' from distribution 'yawlflow-future' 1.0 requires yawlflow<3,>=2, and this is yawlflow "
        f"{yf.__version__}: install a release of yawlflow-future made for yawlflow {yf.__version__}, or a yawlflow "
        "that satisfies yawlflow<3,>=2"
    )
    assert "future_plugin" not in sys.modules


def test_a_requirement_of_an_extra_only_does_not_count(site: Path) -> None:
    make_dist(site, "yawlflow-extra", "extra_plugin", GOOD.replace("API", "1"),
              {"extra": "extra_plugin:LedgerConnector"}, requires=("yawlflow>=0.1", 'yawlflow>=9; extra == "docs"'))
    assert Registry().connector_class("extra").__name__ == "LedgerConnector"


def test_a_plugin_for_another_connector_api_is_refused(site: Path) -> None:
    make_dist(site, "yawlflow-api2", "api2_plugin", GOOD.replace("API", "2"), {"api2": "api2_plugin:LedgerConnector"})
    with pytest.raises(IncompatiblePluginError, match=(
        r"^connector 'api2' \(entry point 'api2_plugin:LedgerConnector' of distribution 'yawlflow-api2' 1.0\) was "
        r"written for connector API 2, and this yawlflow .* speaks connector API 1: install a release of "
        r"yawlflow-api2 written for API 1, or a yawlflow that speaks API 2$"
    )):
        Registry().resolve("api2")


def test_an_entry_point_that_is_not_a_connector_class(site: Path) -> None:
    make_dist(site, "yawlflow-odd", "odd_plugin", "def connector():\n    pass\nclass Half:\n    pass\n",
              {"fn": "odd_plugin:connector", "half": "odd_plugin:Half"})
    with pytest.raises(PluginError, match="names a function, not a connector class"):
        Registry().resolve("fn")
    with pytest.raises(PluginError, match=r"'half' \(entry point .* of distribution 'yawlflow-odd' 1.0\) is not a "
                                          r"connector: it needs a `Config`"):
        Registry().resolve("half")


def test_two_distributions_with_one_name_are_an_error(site: Path) -> None:
    make_dist(site / "a", "yawlflow-a", "a_plugin", GOOD.replace("API", "1"), {"dup": "a_plugin:LedgerConnector"})
    make_dist(site / "b", "yawlflow-b", "b_plugin", GOOD.replace("API", "1"), {"dup": "b_plugin:LedgerConnector"})
    sys.path[:0] = [str(site / "a"), str(site / "b")]
    try:
        with pytest.raises(PluginError, match=r"'dup' is provided by more than one installed distribution: "
                                              r"distribution 'yawlflow-a' 1.0 \(a_plugin:LedgerConnector\), "
                                              r"distribution 'yawlflow-b' 1.0"):
            Registry().resolve("dup")
    finally:
        sys.path.remove(str(site / "a"))
        sys.path.remove(str(site / "b"))


def test_installed_plugins_cost_import_yawlflow_nothing(tmp_path: Path) -> None:
    site = make_dist(tmp_path / "site", "yawlflow-ledger", "ledger_plugin", GOOD.replace("API", "1"),
                     {"ledger": "ledger_plugin:LedgerConnector"})
    probe = textwrap.dedent("""
        import sys
        import yawlflow
        assert "yawlflow.connectors" not in sys.modules, "import yawlflow imports the connectors"
        import yawlflow.connectors as c
        loaded = sorted(m for m in sys.modules if m in ("httpx", "ledger_plugin", "yawlflow.connectors._http"))
        assert not loaded, loaded
        assert "ledger" in c.registry.names() and "ledger_plugin" not in sys.modules
        c.registry.connector_class("ledger")
        assert "ledger_plugin" in sys.modules
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
