"""The engine configuration: one checker for ``Engine(config=...)``, ``yawlflow.yaml`` and ``YAWLFLOW_CONFIG``.

The shape (every section optional)::

    handlers: {allow: [my.module]}          # modules whose functions a spec may name as module:function
    connectors: {http: {timeout: 10s}}      # per connector: settings and policy (yawlflow.connectors)
    execution:
      strategy: thread                      # the engine's default: inline | thread | process | ray
      thread: {workers: 8}
      process: {workers: 2}
      ray: {address: null, mode: task}      # null: a local Ray started by the engine
      timeout: 5m                           # an item's default timeout (a task's own wins)
      drain: 30s                            # on leaving the engine: how long running items may finish
    limits:
      items: 200                            # items running at once in the engine
      tasks: {charge_card: 4}               # ... of one task
      tenant: {items: 50, cases: 1000}      # ... of each tenant, and its unfinished cases
      tenants: {acme: {items: 10}}          # one tenant's own limits (over `tenant`)

Every problem is reported with its place: ``file:line: $.path: message (fix)`` for a file, the
path alone for a mapping given in code. A limit reached queues the work; it never drops it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ._errors import ConfigError, Problem
from ._spec._duration import parse_duration
from ._spec._report import Reporter, describe, did_you_mean

__all__ = ("CONFIG_ENV", "CONFIG_FILE", "STRATEGIES", "ExecutionConfig", "Limits", "check_config", "read_config")

STRATEGIES = ("inline", "thread", "process", "ray")
CONFIG_ENV = "YAWLFLOW_CONFIG"
CONFIG_FILE = "yawlflow.yaml"

_SECTIONS = ("handlers", "connectors", "execution", "limits")
_EXECUTION_KEYS = ("strategy", "thread", "process", "ray", "timeout", "drain")
_POOL_KEYS = ("workers",)
_RAY_KEYS = ("address", "mode", "actors", "num_cpus", "temp_dir", "init_kwargs", "force_cancel", "actor_concurrency")
_LIMIT_KEYS = ("items", "tasks", "tenant", "tenants")
_TENANT_KEYS = ("items", "cases")


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """How much may run at once (``None``: no limit)."""

    items: int | None = None
    tasks: dict[str, int] = {}
    tenant_items: int | None = None
    tenant_cases: int | None = None
    tenants: dict[str, tuple[int | None, int | None]] = {}  # tenant -> (items, cases)

    def for_tenant(self, tenant: str) -> tuple[int | None, int | None]:
        """The (items, cases) limits of ``tenant``: its own where set, else the default."""
        own = self.tenants.get(tenant, (None, None))
        return (own[0] if own[0] is not None else self.tenant_items,
                own[1] if own[1] is not None else self.tenant_cases)


class ExecutionConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The ``execution`` section, checked."""

    strategy: str = "inline"
    thread_workers: int = min(32, (os.cpu_count() or 1) + 4)
    process_workers: int = os.cpu_count() or 1
    ray: dict[str, Any] = {}
    timeout_ns: int | None = None
    drain_ns: int | None = None


def read_config(path: str) -> dict[str, Any]:
    """Read and check the configuration file at ``path``.

    Raises:
        ConfigError: the file cannot be read, or has problems (``.problems`` lists each, located).
    """
    from ._errors import SpecError
    from ._spec._yaml import compose

    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc}") from None
    try:
        data, marks, found = compose(text, path)
    except SpecError as exc:
        raise _error(exc.problems) from None
    report = Reporter(path, marks)
    report.problems.extend(found)
    return check_config({} if data is None else data, report)


def check_config(data: object, report: Reporter | None = None) -> dict[str, Any]:
    """Check a configuration (a mapping); return it as a plain dict.

    Raises:
        ConfigError: one or more problems; the message lists each, and ``.problems`` holds them.
    """
    report = report if report is not None else Reporter("<config>")
    if not isinstance(data, Mapping):
        report.error((), f"a configuration is a mapping, got {describe(data)}", "e.g. handlers: {allow: [my.module]}")
        raise _error(report.problems)
    for key in data:
        if key not in _SECTIONS:
            _unknown(report, (), key, _SECTIONS)
    _check_handlers(report, data.get("handlers"))
    connectors = data.get("connectors")
    if connectors is not None and not (isinstance(connectors, Mapping)
                                       and all(isinstance(v, Mapping) for v in connectors.values())):
        report.error(("connectors",), f"expected a mapping of connector names to settings, got {describe(connectors)}",
                     "write connectors: {http: {timeout: 10s}}")
    execution(report, data.get("execution"))
    limits(report, data.get("limits"))
    if report.problems:
        raise _error(report.problems)
    return dict(data)


def execution(report: Reporter | None, section: object) -> ExecutionConfig:
    """The ``execution`` section as an :class:`ExecutionConfig` (problems go to ``report``)."""
    report = report if report is not None else Reporter("<config>")
    out: dict[str, Any] = {}
    if section is None:
        return ExecutionConfig()
    where = ("execution",)
    if not isinstance(section, Mapping):
        report.error(where, f"expected a mapping, got {describe(section)}", "write execution: {strategy: thread}")
        return ExecutionConfig()
    for key in section:
        if key not in _EXECUTION_KEYS:
            _unknown(report, where, key, _EXECUTION_KEYS)
    strategy = section.get("strategy")
    if strategy is not None:
        if strategy not in STRATEGIES:
            guess = did_you_mean(str(strategy), STRATEGIES)
            report.error((*where, "strategy"), f"unknown strategy {strategy!r}",
                         f"did you mean {guess!r}?" if guess else f"use one of: {', '.join(STRATEGIES)}")
        else:
            out["strategy"] = strategy
    for pool in ("thread", "process"):
        body = section.get(pool)
        if body is None:
            continue
        if not isinstance(body, Mapping):
            report.error((*where, pool), f"expected a mapping, got {describe(body)}", f"write {pool}: {{workers: 4}}")
            continue
        for key in body:
            if key not in _POOL_KEYS:
                _unknown(report, (*where, pool), key, _POOL_KEYS)
        if "workers" in body:
            n = _count(report, (*where, pool, "workers"), body["workers"])
            if n is not None:
                out[f"{pool}_workers"] = n
    ray = section.get("ray")
    if ray is not None:
        if not isinstance(ray, Mapping):
            report.error((*where, "ray"), f"expected a mapping, got {describe(ray)}", "write ray: {address: null}")
        else:
            for key in ray:
                if key not in _RAY_KEYS:
                    _unknown(report, (*where, "ray"), key, _RAY_KEYS)
            if ray.get("mode", "task") not in ("task", "actor"):
                report.error((*where, "ray", "mode"), f"unknown mode {ray.get('mode')!r}", "use task or actor")
            address = ray.get("address")
            if address is not None and not isinstance(address, str):
                report.error((*where, "ray", "address"), f"expected an address string or null, got {describe(address)}",
                             "e.g. address: ray://head:10001, or null for a local Ray")
            out["ray"] = dict(ray)
    for key, name in (("timeout", "timeout_ns"), ("drain", "drain_ns")):
        if key in section:
            ns = _duration(report, (*where, key), section[key])
            if ns is not None:
                out[name] = ns
    return ExecutionConfig(**out)


def limits(report: Reporter | None, section: object) -> Limits:
    """The ``limits`` section as :class:`Limits` (problems go to ``report``)."""
    report = report if report is not None else Reporter("<config>")
    if section is None:
        return Limits()
    where = ("limits",)
    if not isinstance(section, Mapping):
        report.error(where, f"expected a mapping, got {describe(section)}", "write limits: {items: 100}")
        return Limits()
    for key in section:
        if key not in _LIMIT_KEYS:
            _unknown(report, where, key, _LIMIT_KEYS)
    items = _count(report, (*where, "items"), section["items"]) if "items" in section else None
    tasks: dict[str, int] = {}
    body = section.get("tasks")
    if body is not None:
        if not isinstance(body, Mapping):
            report.error((*where, "tasks"), f"expected a mapping of task names to counts, got {describe(body)}",
                         "write tasks: {charge_card: 4}")
        else:
            for task, n in body.items():
                count = _count(report, (*where, "tasks", str(task)), n)
                if count is not None:
                    tasks[str(task)] = count
    default = _tenant(report, (*where, "tenant"), section.get("tenant"))
    tenants: dict[str, tuple[int | None, int | None]] = {}
    body = section.get("tenants")
    if body is not None:
        if not isinstance(body, Mapping):
            report.error((*where, "tenants"), f"expected a mapping of tenants to limits, got {describe(body)}",
                         "write tenants: {acme: {items: 10, cases: 100}}")
        else:
            for tenant, own in body.items():
                tenants[str(tenant)] = _tenant(report, (*where, "tenants", str(tenant)), own)
    return Limits(items=items, tasks=tasks, tenant_items=default[0], tenant_cases=default[1], tenants=tenants)


def _tenant(report: Reporter, where: tuple[str | int, ...], body: object) -> tuple[int | None, int | None]:
    if body is None:
        return (None, None)
    if not isinstance(body, Mapping):
        report.error(where, f"expected a mapping, got {describe(body)}", "write {items: 10, cases: 100}")
        return (None, None)
    for key in body:
        if key not in _TENANT_KEYS:
            _unknown(report, where, key, _TENANT_KEYS)
    items = _count(report, (*where, "items"), body["items"]) if "items" in body else None
    cases = _count(report, (*where, "cases"), body["cases"]) if "cases" in body else None
    return (items, cases)


def _check_handlers(report: Reporter, handlers: object) -> None:
    if handlers is None:
        return
    if not isinstance(handlers, Mapping):
        report.error(("handlers",), f"expected a mapping, got {describe(handlers)}",
                     "write handlers: {allow: [my.module]}")
        return
    for key in handlers:
        if key != "allow":
            _unknown(report, ("handlers",), key, ("allow",))
    allow = handlers.get("allow", [])
    if not isinstance(allow, list):
        report.error(("handlers", "allow"), f"expected a list of module names, got {describe(allow)}",
                     "write allow: [my.module]")
        return
    for i, module in enumerate(allow):
        if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
            report.error(("handlers", "allow", i), f"expected a module name, got {describe(module)}",
                         "a dotted module name, e.g. my_package.handlers")


def _count(report: Reporter, where: tuple[str | int, ...], value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        report.error(where, f"expected a whole number >= 1, got {describe(value)}", "e.g. 4")
        return None
    return value


def _duration(report: Reporter, where: tuple[str | int, ...], value: object) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return int(value * 1_000_000_000)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            report.error(where, str(exc), 'e.g. 30s, 5m, "PT1H", or a number of seconds')
            return None
    report.error(where, f"expected a duration, got {describe(value)}", 'e.g. 30s, 5m, "PT1H", or a number of seconds')
    return None


def _unknown(report: Reporter, where: tuple[str | int, ...], key: object, known: Sequence[str]) -> None:
    guess = did_you_mean(str(key), known)
    hint = f"did you mean {guess!r}?" if guess else f"use one of: {', '.join(known)}"
    report.error((*where, str(key)), f"unknown key {key!r}", hint, key=True)


def _error(problems: Sequence[Problem]) -> ConfigError:
    ordered = sorted(problems, key=lambda p: (p.line or 0, p.column or 0, p.path))
    return ConfigError("\n".join(str(p) for p in ordered), problems=ordered)
