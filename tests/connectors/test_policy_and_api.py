"""Policies as written (durations, layers, located errors), and the package's public surface."""

from __future__ import annotations

import importlib
import pickle

import msgspec
import pytest
import yaml

import yawlflow as yf
import yawlflow.connectors as connectors
from yawlflow.connectors import (
    BulkheadFullError,
    CircuitOpenError,
    ConnectorConfigError,
    ConnectorTimeoutError,
    IncompatiblePluginError,
    PluginError,
    Policy,
    UnknownConnectorError,
    parse_policy,
)


def test_durations_are_numbers_or_spec_durations() -> None:
    p = parse_policy({"timeout": "1m30s", "retry": {"backoff": "250ms", "max_backoff": 2, "deadline": "PT1M"}}, "$")
    assert (p.timeout, p.retry.backoff, p.retry.max_backoff, p.retry.deadline) == (90.0, 0.25, 2.0, 60.0)
    with pytest.raises(ConnectorConfigError, match=r"^\$\.timeout: expected a non-negative duration, got -1"):
        parse_policy({"timeout": -1}, "$")


def test_layers_merge_field_by_field_and_null_turns_a_guard_off() -> None:
    base = parse_policy({"retry": {"attempts": 3, "backoff": "1s"}, "bulkhead": {"max_concurrent": 4}}, "$.a")
    p = parse_policy({"retry": {"attempts": 5}, "breaker": None}, "$.b", base=base)
    assert (p.retry.attempts, p.retry.backoff) == (5, 1.0)
    assert p.breaker is None and p.bulkhead is not None and p.bulkhead.max_concurrent == 4
    assert parse_policy(None, "$", base=base) is base


def test_yaml_11_reads_on_as_true_and_the_policy_copes() -> None:
    raw = yaml.safe_load("retry: {attempts: 2, on: [OSError]}")
    assert raw["retry"][True] == ["OSError"]  # YAML 1.1 reads the key `on` as the boolean true
    assert parse_policy(raw, "$").retry.on == ("OSError",)


def test_a_task_may_not_set_shared_guards() -> None:
    for key in ("breaker", "bulkhead", "health"):
        with pytest.raises(ConnectorConfigError, match=rf"^\$\.t\.{key}: {key} is shared by every task"):
            parse_policy({key: {}}, "$.t", task=True, connector="http")


def test_the_error_hint_describes_the_innermost_struct() -> None:
    with pytest.raises(ConnectorConfigError) as info:
        parse_policy({"retry": {"atempts": 2}}, "config.connectors.http")
    assert str(info.value) == (
        "config.connectors.http.retry.atempts: unknown field 'atempts' (did you mean 'attempts'? a resilience "
        "policy's retry takes: attempts: int = 1, backoff: duration = 0.1, max_backoff: duration | None = None, "
        "jitter: Literal['full', 'none'] = 'full', deadline: duration | None = None, on: tuple[str, ...] = ())"
    )


# -- the public surface ----------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["yawlflow.connectors", "yawlflow.connectors.testing"])
def test_all_names_exist_once(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name
    assert len(set(mod.__all__)) == len(mod.__all__)
    assert set(mod.__all__) <= set(dir(mod))


def test_public_classes_report_the_public_module() -> None:
    for name in ("ConnectorHost", "Registry", "CircuitBreaker", "ConnectorConfigError", "HttpConnector"):
        assert getattr(connectors, name).__module__ == "yawlflow.connectors", name
    assert connectors.call_with_resilience.__module__ == "yawlflow.connectors"
    assert issubclass(Policy, msgspec.Struct)


@pytest.mark.parametrize("error", [
    ConnectorConfigError("$.c.url", "Expected `str`", "the 'http' connector's config takes: url: str",
                         connector="http", below=("url",)),
    UnknownConnectorError("no connector named 'x'", connector="x"),
    PluginError("broken", connector="x", distribution="yawlflow-x"),
    IncompatiblePluginError("too new", connector="x", distribution="yawlflow-x"),
    ConnectorTimeoutError("slow", connector="http"),
    CircuitOpenError("open", connector="http", retry_after=3.0),
    BulkheadFullError("full", connector="http"),
    yf.ConnectorError("503", retryable=True, connector="http"),
], ids=lambda e: type(e).__name__)
def test_errors_are_connector_errors_and_survive_pickling(error: yf.ConnectorError) -> None:
    assert isinstance(error, yf.ConnectorError) and isinstance(error, yf.YawlflowError)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(copy) is type(error) and str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_the_verdicts_of_the_layer_s_own_errors() -> None:
    assert ConnectorTimeoutError("x").retryable and CircuitOpenError("x").retryable and BulkheadFullError("x").retryable
    assert not ConnectorConfigError("$", "bad").retryable and not PluginError("x").retryable
    assert not yf.ConnectorError("plain").retryable, "a connector's error is final unless it says otherwise"
