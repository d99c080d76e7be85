"""yawlflow.connectors.testing: the conformance kit a connector's author runs on their connector.

Subclass :class:`ConnectorTests` in a test module and override its ``conformance`` fixture with
a :class:`Conformance`: a fresh instance of the connector, a call that succeeds, calls that fail
(and whether each is retryable), configs that must be refused (and the field each error must
name), a call that blocks until cancelled, and how to see the idempotency key the downstream
received. The kit then checks, one test each:

* the class is a connector (a frozen ``Config`` Struct, ``async call`` and ``health``, the
  connector API this yawlflow speaks);
* the configs given validate, and the bad ones are refused with an error naming the field;
* the good call returns a mapping (or ``None``) that JSON can hold, also through the resilience
  wrapper;
* each failure raises a ``yawlflow.ConnectorError`` with the expected ``retryable`` verdict;
* cancelling the blocking call ends it within ``cancel_within`` seconds, and it does not
  swallow the cancellation;
* ``health()`` returns a ``Health`` in time;
* the idempotency key reaches the downstream;
* ``close()`` may be called twice; ``reconcile`` (if any) knows the good call's key, and not others;
* with ``name`` set, the ``yawlflow.connectors`` entry point of that name finds this class.

The async tests run under anyio's pytest plugin on the ``anyio_backend`` fixture, ``asyncio`` by
default: override it in the subclass to run on more backends. Like trio's
``testing.check_two_way_stream``, the kit knows nothing of the connector beyond the protocol.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import anyio
import msgspec
import pytest

from yawlflow._clock import SystemClock
from yawlflow._errors import ConnectorError
from yawlflow._handlers import ItemContext
from yawlflow._publish import publish

from ._convert import convert
from ._errors import ConnectorConfigError, PluginError
from ._policy import Policy
from ._protocol import ConnectorEnv, Health
from ._registry import Registry, _check_class
from ._resilience import call_with_resilience
from ._scripted import BLOCK, ScriptedConnector, Step

__all__ = (
    "BLOCK",
    "BadConfig",
    "Call",
    "Conformance",
    "ConnectorTests",
    "Failure",
    "ScriptedConnector",
    "Step",
    "item_context",
)


@dataclass(frozen=True, kw_only=True)
class Call:
    """One call: a config as a spec writes it, and an item's input."""

    config: Mapping[str, Any]
    input: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Failure(Call):
    """A call that must fail with a ``yawlflow.ConnectorError``.

    Attributes:
        retryable: the verdict its error must carry.
        match: a regular expression its message must contain (``None``: any message).
    """

    retryable: bool
    match: str | None = None


@dataclass(frozen=True, kw_only=True)
class BadConfig:
    """A config the connector's ``Config`` must refuse.

    Attributes:
        config: the config as written.
        path: the field the error must name, under the config: ``"url"``, ``"headers"``, or
            ``""`` for the config as a whole.
    """

    config: object
    path: str


@dataclass(frozen=True, kw_only=True)
class Conformance:
    """What the kit needs to know of a connector.

    Attributes:
        connector: a fresh instance (the kit opens it, if it has ``open``, and closes it).
        ok: a call that succeeds.
        failures: calls that fail, at least one.
        bad_configs: configs that must be refused, at least one.
        blocking: a call that does not finish until it is cancelled (a slow endpoint, a long
            query).
        key_seen: given the output of ``ok`` made with some idempotency key, the key the
            downstream received (``None``: none arrived).
        name: the connector's entry-point name; ``None`` skips the discovery test.
        cancel_within: seconds a cancelled call may take to end.
        healthy: what ``health().ok`` must say while the kit runs.
    """

    connector: Any
    ok: Call
    failures: Sequence[Failure]
    bad_configs: Sequence[BadConfig]
    blocking: Call
    key_seen: Callable[[Mapping[str, Any] | None], str | None]
    name: str | None = None
    cancel_within: float = 1.0
    healthy: bool = True


def item_context(key: str | None = None, *, task: str = "kit") -> ItemContext:
    """An item context for a direct call, with ``key`` (default: a fresh one) as its idempotency key."""
    return ItemContext(case_id="kit-case", item_id=1, task=task, attempt=1,
                       idempotency_key=key or f"yawlflow-kit-{uuid.uuid4().hex}")


def _fail(message: str) -> NoReturn:
    __tracebackhide__ = True
    # `from None`: the author reads the message, not the chain of the exception it explains
    raise pytest.fail.Exception(f"connector conformance: {message}", pytrace=False) from None


def _label(c: Conformance) -> str:
    return c.name or type(c.connector).__qualname__


def _config(c: Conformance, call: Call, what: str) -> msgspec.Struct:
    config_type: type[msgspec.Struct] = type(c.connector).Config
    try:
        return convert(call.config, config_type, "$.config", what=f"{_label(c)}'s config")
    except ConnectorConfigError as exc:
        _fail(f"the {what} call's config {dict(call.config)!r} does not validate: {exc}")


class ConnectorTests:
    """The conformance suite: subclass it as ``TestMyConnector`` and override ``conformance``."""

    @pytest.fixture
    def anyio_backend(self) -> Any:
        """The backend the async tests run on (override to add ``trio``)."""
        return "asyncio"

    @pytest.fixture
    def conformance(self) -> Conformance:
        """Override this fixture: return a :class:`Conformance` for your connector."""
        _fail("override the `conformance` fixture in your subclass of ConnectorTests: return a "
              "yawlflow.connectors.testing.Conformance describing your connector")

    @pytest.fixture
    async def opened(self, conformance: Conformance) -> AsyncIterator[Conformance]:
        """``conformance`` with its connector opened (``open(env)``), closed after the test."""
        connector = conformance.connector
        opener = getattr(connector, "open", None)
        if opener is not None:
            await opener(ConnectorEnv(name=_label(conformance), clock=SystemClock()))
        try:
            yield conformance
        finally:
            close = getattr(connector, "close", None)
            if close is not None:
                await close()

    # -- shape and configs ---------------------------------------------------------------------
    def test_is_a_connector(self, conformance: Conformance) -> None:
        try:
            _check_class(_label(conformance), conformance.connector, "under test", None)
        except PluginError as exc:
            _fail(str(exc))

    def test_given_configs_validate(self, conformance: Conformance) -> None:
        c = conformance
        if not c.failures:
            _fail("Conformance.failures is empty: give at least one call that fails")
        _config(c, c.ok, "ok")
        _config(c, c.blocking, "blocking")
        for i, failure in enumerate(c.failures):
            _config(c, failure, f"failures[{i}]")

    def test_bad_configs_are_refused_naming_the_field(self, conformance: Conformance) -> None:
        c = conformance
        if not c.bad_configs:
            _fail("Conformance.bad_configs is empty: give at least one config that must be refused")
        cls = type(c.connector).Config
        for bad in c.bad_configs:
            expected = "$.config" + (f".{bad.path}" if bad.path else "")
            try:
                convert(bad.config, cls, "$.config", what=f"{_label(c)}'s config")
            except ConnectorConfigError as exc:
                if not (exc.path == expected or exc.path.startswith((expected + ".", expected + "["))):
                    _fail(f"the bad config {bad.config!r} was refused at {exc.path}, not at {expected}: {exc}")
                if not exc.hint:
                    _fail(f"the bad config {bad.config!r} was refused without a hint: {exc}")
            else:
                _fail(f"the bad config {bad.config!r} was accepted; {cls.__qualname__} must refuse it (give the "
                      "field a narrower type, or check it in __post_init__)")

    # -- calls ---------------------------------------------------------------------------------
    @pytest.mark.anyio
    async def test_call_returns_a_mapping(self, opened: Conformance) -> None:
        c = opened
        output = await c.connector.call(_config(c, c.ok, "ok"), dict(c.ok.input), item_context())
        _check_output(output, "call()")

    @pytest.mark.anyio
    async def test_call_through_the_resilience_wrapper(self, opened: Conformance) -> None:
        c = opened
        output = await call_with_resilience(c.connector, _config(c, c.ok, "ok"), dict(c.ok.input), item_context(),
                                            Policy(timeout=None), SystemClock(), name=_label(c))
        _check_output(output, "call() through call_with_resilience")

    @pytest.mark.anyio
    async def test_failures_are_classified(self, opened: Conformance) -> None:
        c = opened
        for i, failure in enumerate(c.failures):
            what = f"failures[{i}] (config {dict(failure.config)!r}, input {dict(failure.input)!r})"
            try:
                output = await c.connector.call(_config(c, failure, f"failures[{i}]"), dict(failure.input),
                                                item_context())
            except ConnectorError as exc:
                if exc.retryable is not failure.retryable:
                    _fail(f"{what} raised {type(exc).__name__} with retryable={exc.retryable}, expected "
                          f"retryable={failure.retryable}: {exc}")
                if not str(exc):
                    _fail(f"{what} raised {type(exc).__name__} with an empty message: say where, what, and what to do")
                if failure.match is not None and not re.search(failure.match, str(exc)):
                    _fail(f"{what}: the message {str(exc)!r} does not match {failure.match!r}")
            except Exception as exc:
                _fail(f"{what} raised {type(exc).__name__}: {exc}, not a yawlflow.ConnectorError: translate "
                      "errors at the boundary (raise ConnectorError(..., retryable=...) from exc), so the engine "
                      "knows whether to retry")
            else:
                _fail(f"{what} returned {output!r}; it should fail")

    @pytest.mark.anyio
    async def test_cancellation_is_honoured(self, opened: Conformance) -> None:
        c = opened
        config = _config(c, c.blocking, "blocking")
        returned, raised = False, ""

        async def blocking() -> None:
            nonlocal returned, raised
            try:
                await c.connector.call(config, dict(c.blocking.input), item_context())
            except anyio.get_cancelled_exc_class():
                raise
            except BaseException as exc:
                raised = f"{type(exc).__name__}: {exc}"
                raise
            returned = True

        with anyio.move_on_after(c.cancel_within + 30) as guard:  # never hang the author's suite
            async with anyio.create_task_group() as tg:
                tg.start_soon(blocking)
                await anyio.wait_all_tasks_blocked()
                if returned or raised:
                    _fail("the blocking call ended before it was cancelled "
                          f"({'returned' if returned else 'raised ' + raised}): give a call that "
                          "waits until it is cancelled (a slow endpoint, a long query)")
                started = time.monotonic()
                tg.cancel_scope.cancel()
            took = time.monotonic() - started
        if guard.cancelled_caught:
            _fail(f"call() was cancelled and had not ended {c.cancel_within + 30:g}s later: it blocks the event loop "
                  "or shields itself; await cancellable operations, run blocking work in a thread")
        if returned:
            _fail("call() returned normally after it was cancelled: it swallowed the cancellation; re-raise "
                  "anyio.get_cancelled_exc_class() (or never catch BaseException)")
        if took > c.cancel_within:
            _fail(f"call() took {took:.3f}s to end after it was cancelled (allowed: {c.cancel_within:g}s): stop the "
                  "work at once, and bound any clean-up")

    @pytest.mark.anyio
    async def test_health(self, opened: Conformance) -> None:
        c = opened
        with anyio.move_on_after(10) as guard:
            health = await c.connector.health()
        if guard.cancelled_caught:
            _fail("health() took longer than 10s; a health check must be cheap and bounded")
        if not isinstance(health, Health):
            _fail(f"health() returned {type(health).__name__}, not a yawlflow.connectors.Health")
        if health.ok is not c.healthy:
            _fail(f"health() says ok={health.ok} ({health.detail!r}); expected ok={c.healthy}")

    @pytest.mark.anyio
    async def test_idempotency_key_is_passed_through(self, opened: Conformance) -> None:
        c = opened
        ctx = item_context()
        output = await c.connector.call(_config(c, c.ok, "ok"), dict(c.ok.input), ctx)
        seen = c.key_seen(output)
        if seen != ctx.idempotency_key:
            _fail(f"the downstream saw idempotency key {seen!r}, not the item's {ctx.idempotency_key!r}: pass "
                  "ctx.idempotency_key on (a header, a column, an environment variable), so that a call made "
                  "again after a crash takes effect once")

    @pytest.mark.anyio
    async def test_reconcile_knows_the_keys_it_saw(self, opened: Conformance) -> None:
        c = opened
        reconcile = getattr(c.connector, "reconcile", None)
        if reconcile is None:
            pytest.skip("the connector has no reconcile(key): nothing to check")
        ctx = item_context()
        await c.connector.call(_config(c, c.ok, "ok"), dict(c.ok.input), ctx)
        if await reconcile(ctx.idempotency_key) is None:
            _fail("reconcile(key) returned None for the key of a call that succeeded: return that call's output")
        never = f"yawlflow-kit-never-{uuid.uuid4().hex}"
        if (found := await reconcile(never)) is not None:
            _fail(f"reconcile(key) returned {found!r} for a key never used: return None (no such call took effect)")

    @pytest.mark.anyio
    async def test_close_twice(self, conformance: Conformance) -> None:
        connector = conformance.connector
        close = getattr(connector, "close", None)
        if close is None:
            pytest.skip("the connector has no close(): nothing to check")
        opener = getattr(connector, "open", None)
        if opener is not None:
            await opener(ConnectorEnv(name=_label(conformance), clock=SystemClock()))
        await close()
        try:
            await close()
        except Exception as exc:
            _fail(f"close() failed when called a second time ({type(exc).__name__}: {exc}); make it idempotent")

    def test_discovered_by_entry_point(self, conformance: Conformance) -> None:
        c = conformance
        if c.name is None:
            pytest.skip("Conformance.name is not set: the entry point is not checked")
        found = Registry().connector_class(c.name)
        if found is not type(c.connector):
            _fail(f"the entry point {c.name!r} finds {found.__module__}.{found.__qualname__}, not "
                  f"{type(c.connector).__module__}.{type(c.connector).__qualname__}")


def _check_output(output: object, what: str) -> None:
    if output is not None and not isinstance(output, Mapping):
        _fail(f"{what} returned {type(output).__name__}; return a mapping (merged into the case data) or None")
    try:
        msgspec.json.encode(output)
    except (TypeError, msgspec.EncodeError) as exc:
        _fail(f"{what} returned {output!r}, which JSON cannot hold ({exc}); the engine stores every output")



publish(__name__, ("ScriptedConnector",), globals())  # tracebacks say yawlflow.connectors.testing.ScriptedConnector
