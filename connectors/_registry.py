"""The connector registry: names to connector classes, registered explicitly or discovered lazily.

A name resolves, in order, to: a connector registered on this registry (or on its parent); a
built-in (``python``, ``http``, ``shell``); an entry point of the ``yawlflow.connectors`` group.
Nothing is imported before a name is first looked up: built-ins are module paths until used, and
entry points are read from the installed distributions' metadata only when a name is not found
otherwise, so twenty installed plugins cost ``import yawlflow`` (and ``import
yawlflow.connectors``) nothing.

A plugin is refused, with a message that names its distribution and says what to do, when:
its distribution requires a yawlflow version that this is not (``Requires-Dist: yawlflow<0.1``,
read before anything is imported); it fails to import; it is not a connector class; or it
declares a connector API (``yawlflow_api``) other than :data:`API_VERSION`.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import msgspec

from yawlflow._errors import ConfigError

from ._convert import convert
from ._errors import IncompatiblePluginError, PluginError, UnknownConnectorError
from ._protocol import API_VERSION, Connector

__all__ = ("BUILTINS", "GROUP", "Registry", "connector_class", "register", "registry", "validate_config")

GROUP = "yawlflow.connectors"
"""The entry-point group plugins declare their connector classes in."""

BUILTINS: Mapping[str, str] = {
    "python": "yawlflow.connectors._python:PythonConnector",
    "http": "yawlflow.connectors._http:HttpConnector",
    "shell": "yawlflow.connectors._shell:ShellConnector",
}
"""The built-in connectors, by name, as ``module:class`` (imported on first use)."""


def _yawlflow_version() -> str:
    import yawlflow

    return yawlflow.__version__


def _dist_label(ep: EntryPoint) -> tuple[str | None, str]:
    dist = ep.dist
    if dist is None:
        return None, "an unknown distribution"
    name = dist.metadata["Name"] or dist.name
    return name, f"distribution {name!r} {dist.version}"


def _check_requirement(name: str, ep: EntryPoint) -> None:
    """Refuse a plugin whose distribution requires another yawlflow, before importing it."""
    dist = ep.dist
    if dist is None or not dist.requires:
        return
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    version = _yawlflow_version()
    for line in dist.requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) != "yawlflow":
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # a requirement of one of its extras only
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            dist_name, label = _dist_label(ep)
            raise IncompatiblePluginError(
                f"connector {name!r} from {label} requires {req}, and this is yawlflow {version}: "
                f"install a release of {dist_name} made for yawlflow {version}, or a yawlflow that "
                f"satisfies {req}",
                connector=name, distribution=dist_name,
            )


def _check_class(name: str, obj: object, origin: str, distribution: str | None) -> type[Any]:
    """``obj``'s class when it is a connector (a class, or an instance of one), else a clear error."""
    cls = obj if isinstance(obj, type) else type(obj)
    missing = []
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, msgspec.Struct)):
        missing.append("a `Config` class attribute that is a msgspec.Struct")
    elif not config.__struct_config__.frozen:
        missing.append(f"a frozen Config (declare `class {config.__name__}(msgspec.Struct, frozen=True)`)")
    for method in ("call", "health"):
        if not inspect.iscoroutinefunction(getattr(cls, method, None)):
            missing.append(f"an `async def {method}`")
    if missing:
        raise PluginError(
            f"connector {name!r} ({origin}) is not a connector: it needs " + "; ".join(missing)
            + " (see yawlflow.connectors.Connector)",
            connector=name, distribution=distribution,
        )
    api = getattr(cls, "yawlflow_api", API_VERSION)
    if api != API_VERSION:
        raise IncompatiblePluginError(
            f"connector {name!r} ({origin}) was written for connector API {api!r}, and this yawlflow "
            f"{_yawlflow_version()} speaks connector API {API_VERSION}: install a release of "
            f"{distribution or 'the plugin'} written for API {API_VERSION}, or a yawlflow that speaks API {api!r}",
            connector=name, distribution=distribution,
        )
    return cls


class Registry:
    """Connector classes (or ready instances) by name.

    Args:
        parent: a registry to ask for names this one does not have (an engine's registry asks
            the process-wide :data:`registry`).
        builtins: know the built-in connectors (when there is no parent).
        discover: look names up in the ``yawlflow.connectors`` entry-point group (when there is
            no parent).
    """

    def __init__(self, *, parent: Registry | None = None, builtins: bool = True, discover: bool = True) -> None:
        self._parent = parent
        self._own: dict[str, object] = {}
        self._loaded: dict[str, type[Any]] = {}
        self._builtins = dict(BUILTINS) if builtins and parent is None else {}
        self._discover = discover and parent is None
        self._entry_points: dict[str, list[EntryPoint]] | None = None

    # -- registering ---------------------------------------------------------------------------
    def register(self, name: str, connector: type[Any] | Connector, *, replace: bool = False) -> None:
        """Register a connector class (instantiated by its host) or a ready instance under ``name``.

        Raises:
            PluginError: ``connector`` is not a connector (the message says what it lacks), or it
                declares another connector API.
            ConfigError: ``name`` is empty, or already registered and ``replace`` is false.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a connector name must be a non-empty string, not {name!r}")
        if name in self._own and not replace:
            raise ConfigError(f"connector {name!r} is registered already: pass replace=True to replace it")
        _check_class(name, connector, "registered explicitly", None)
        self._own[name] = connector

    # -- looking up ----------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every name this registry can resolve, sorted (reads plugin metadata; imports nothing)."""
        names = set(self._own) | set(self._builtins) | set(self._scan())
        if self._parent is not None:
            names |= set(self._parent.names())
        return sorted(names)

    def resolve(self, name: str) -> type[Any] | Connector:
        """What ``name`` names: a connector class, or an instance registered as such.

        Raises:
            UnknownConnectorError: no connector of that name is registered, built in or installed.
            PluginError: its plugin fails to import, or is not a connector.
            IncompatiblePluginError: its plugin was made for another yawlflow or connector API.
        """
        if name in self._own:
            return self._own[name]  # type: ignore[return-value]  # checked by register()
        if name in self._loaded:
            return self._loaded[name]
        if name in self._builtins:
            module, _, attr = self._builtins[name].partition(":")
            cls = getattr(importlib.import_module(module), attr)
            self._loaded[name] = _check_class(name, cls, "built in", "yawlflow")
            return cls  # type: ignore[no-any-return]
        candidates = self._scan().get(name, [])
        if len(candidates) > 1:
            found = ", ".join(f"{_dist_label(ep)[1]} ({ep.value})" for ep in candidates)
            raise PluginError(
                f"connector {name!r} is provided by more than one installed distribution: {found}; "
                "uninstall all but one, or register the one you want explicitly with register()",
                connector=name,
            )
        if candidates:
            self._loaded[name] = self._load(name, candidates[0])
            return self._loaded[name]
        if self._parent is not None:
            return self._parent.resolve(name)
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        raise UnknownConnectorError(
            f"no connector named {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; known: {', '.join(known) or 'none'}. Register one with yawlflow.connectors.register("
            f"{name!r}, cls), or install a package with a {GROUP!r} entry point named {name!r}",
            connector=name,
        )

    def connector_class(self, name: str) -> type[Any]:
        """The class of the connector ``name`` (its ``Config`` validates task configs).

        Raises:
            UnknownConnectorError, PluginError, IncompatiblePluginError: as :meth:`resolve`.
        """
        found = self.resolve(name)
        return found if isinstance(found, type) else type(found)

    def validate_config(self, name: str, raw: object, where: str = "$") -> msgspec.Struct:
        """Validate a task's config for connector ``name`` (when the spec loads).

        Args:
            name: the connector's name (``run: {connector: NAME}``).
            raw: the config as written (``run: {config: {...}}``; ``None``: empty).
            where: the config's element path, e.g. ``$.nets.main.tasks.fetch.run.config``.

        Returns:
            An instance of the connector's ``Config``.

        Raises:
            ConnectorConfigError: the config does not validate; ``.path`` names the bad value and
                ``.hint`` the fix (the fields the connector's config takes).
            UnknownConnectorError, PluginError, IncompatiblePluginError: as :meth:`resolve`.
        """
        config_type: type[msgspec.Struct] = self.connector_class(name).Config
        return convert(raw, config_type, where, what=f"the {name!r} connector's config", connector=name)

    def refresh(self) -> None:
        """Forget the entry points read so far (after installing a plugin in a running process)."""
        self._entry_points = None

    # -- inside --------------------------------------------------------------------------------
    def _scan(self) -> dict[str, list[EntryPoint]]:
        if not self._discover:
            return {}
        if self._entry_points is None:
            found: dict[str, list[EntryPoint]] = {}
            seen: set[tuple[str, str]] = set()
            for ep in entry_points(group=GROUP):
                key = (ep.name, ep.value)
                if key in seen:  # the same distribution seen twice on sys.path
                    continue
                seen.add(key)
                found.setdefault(ep.name, []).append(ep)
            self._entry_points = found
        return self._entry_points

    def _load(self, name: str, ep: EntryPoint) -> type[Any]:
        dist_name, label = _dist_label(ep)
        _check_requirement(name, ep)
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(
                f"connector {name!r}: entry point {ep.value!r} of {label} failed to import: "
                f"{type(exc).__name__}: {exc}; reinstall it (pip install --force-reinstall {dist_name}) "
                f"or uninstall it (pip uninstall {dist_name})",
                connector=name, distribution=dist_name,
            ) from exc
        if not isinstance(obj, type):
            raise PluginError(
                f"connector {name!r}: entry point {ep.value!r} of {label} names a "
                f"{type(obj).__name__}, not a connector class",
                connector=name, distribution=dist_name,
            )
        return _check_class(name, obj, f"entry point {ep.value!r} of {label}", dist_name)


registry = Registry()
"""The process-wide registry: built-ins, plugins, and what :func:`register` adds."""


def register(name: str, connector: type[Any] | Connector, *, replace: bool = False) -> None:
    """Register a connector class or instance in the process-wide :data:`registry`.

    Raises:
        PluginError, ConfigError: as :meth:`Registry.register`.
    """
    registry.register(name, connector, replace=replace)


def connector_class(name: str) -> type[Any]:
    """The class of connector ``name`` in the process-wide :data:`registry`.

    Raises:
        UnknownConnectorError, PluginError, IncompatiblePluginError: as :meth:`Registry.resolve`.
    """
    return registry.connector_class(name)


def validate_config(name: str, raw: object, where: str = "$") -> msgspec.Struct:
    """Validate a task's config for connector ``name`` against the process-wide :data:`registry`.

    Raises:
        ConnectorConfigError, UnknownConnectorError, PluginError, IncompatiblePluginError: as
            :meth:`Registry.validate_config`.
    """
    return registry.validate_config(name, raw, where)
