"""yawlflow.connectors.testing, run as a plugin author runs it: a good connector passes, a broken one
fails every check it breaks, each with a message that says what is wrong and what to do."""

from __future__ import annotations

import pytest

COMMON = '''
from typing import Any

import anyio
import msgspec
import pytest

import yawlflow as yf
from yawlflow.connectors import Health
from yawlflow.connectors.testing import BadConfig, Call, Conformance, ConnectorTests, Failure
'''

GOOD = COMMON + '''

class LedgerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account: str
    mode: str = "post"

    def __post_init__(self) -> None:
        if self.mode not in ("post", "wait", "busy", "missing"):
            raise ValueError(f"mode {self.mode!r}: use post, wait, busy or missing")


class Ledger:
    yawlflow_api = 1
    Config = LedgerConfig

    def __init__(self) -> None:
        self.posted: dict[str, dict[str, Any]] = {}

    async def call(self, config: LedgerConfig, input: Any, ctx: Any) -> dict[str, Any]:
        if config.mode == "wait":
            await anyio.sleep_forever()
        if config.mode == "busy":
            raise yf.ConnectorError("ledger busy, try later", retryable=True)
        if config.mode == "missing":
            raise yf.ConnectorError(f"no account {config.account!r}", retryable=False)
        out = {"account": config.account, "amount": input["amount"], "key": ctx.idempotency_key}
        self.posted.setdefault(ctx.idempotency_key, out)
        return self.posted[ctx.idempotency_key]

    async def reconcile(self, key: str) -> dict[str, Any] | None:
        return self.posted.get(key)

    async def health(self) -> Health:
        return Health(ok=True)

    async def close(self) -> None:
        pass


class TestLedger(ConnectorTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: Any) -> Any:
        return request.param

    @pytest.fixture
    def conformance(self) -> Conformance:
        return Conformance(
            connector=Ledger(),
            ok=Call(config={"account": "cash"}, input={"amount": 5}),
            failures=[Failure(config={"account": "cash", "mode": "busy"}, retryable=True, match="busy"),
                      Failure(config={"account": "x", "mode": "missing"}, retryable=False)],
            bad_configs=[BadConfig(config={"acount": "x"}, path="acount"), BadConfig(config={}, path=""),
                         BadConfig(config={"account": 1}, path="account"),
                         BadConfig(config={"account": "x", "mode": "burn"}, path="")],
            blocking=Call(config={"account": "cash", "mode": "wait"}),
            key_seen=lambda output: output["key"] if output else None,
        )
'''

BROKEN = COMMON + '''

class LooseConfig(msgspec.Struct):  # not frozen, and takes anything
    account: Any = None


class Broken:
    Config = LooseConfig

    async def call(self, config: Any, input: Any, ctx: Any) -> Any:
        if config.account == "wait":
            try:
                await anyio.sleep_forever()
            except BaseException:
                return {"swallowed": True}  # swallows the cancellation
        if config.account == "boom":
            raise ValueError("boom")  # not a ConnectorError
        if config.account == "flaky":
            raise yf.ConnectorError("flaky", retryable=False)  # the wrong verdict
        return {"key": None, "when": object()}  # not JSON, and no key

    async def health(self) -> Any:
        return {"ok": True}

    async def close(self) -> None:
        if getattr(self, "closed", False):
            raise RuntimeError("closed already")
        self.closed = True


class TestBroken(ConnectorTests):
    @pytest.fixture
    def conformance(self) -> Conformance:
        return Conformance(
            connector=Broken(),
            ok=Call(config={"account": "cash"}),
            failures=[Failure(config={"account": "boom"}, retryable=False),
                      Failure(config={"account": "flaky"}, retryable=True)],
            bad_configs=[BadConfig(config={"account": 1}, path="account")],
            blocking=Call(config={"account": "wait"}),
            key_seen=lambda output: output["key"] if output else None,
            cancel_within=0.5,
        )
'''


def test_a_good_connector_passes_the_kit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ledger=GOOD)
    result = pytester.runpytest_subprocess("-q", "-W", "error", "-p", "no:randomly")
    # 12 checks, the 8 async ones on two backends; discovery skipped (no name given)
    result.assert_outcomes(passed=19, skipped=1)


def test_a_broken_connector_fails_the_kit_with_readable_messages(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=BROKEN)
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "-rs")
    result.assert_outcomes(failed=9, passed=1, skipped=2)
    result.stdout.fnmatch_lines_random([
        "connector conformance: connector 'Broken' (under test) is not a connector: it needs a frozen Config "
        "(declare `class LooseConfig(msgspec.Struct, frozen=True)`)*",
        "connector conformance: the bad config {'account': 1} was accepted; LooseConfig must refuse it*",
        "connector conformance: call() returned {'key': None, 'when': <object object at *>}, which JSON cannot "
        "hold*",
        "connector conformance: failures[[]0] (config {'account': 'boom'}, input {}) raised ValueError: boom, not a "
        "yawlflow.ConnectorError: translate errors at the boundary*",
        "connector conformance: call() returned normally after it was cancelled: it swallowed the cancellation*",
        "connector conformance: health() returned dict, not a yawlflow.connectors.Health",
        "connector conformance: the downstream saw idempotency key None, not the item's 'yawlflow-kit-*'*",
        "connector conformance: close() failed when called a second time (RuntimeError: closed already); make it "
        "idempotent",
        "SKIPPED * the connector has no reconcile(key): nothing to check",
        "SKIPPED * Conformance.name is not set: the entry point is not checked",
    ])
    text = result.stdout.str()
    assert "Traceback" not in text and "During handling" not in text, "the kit's failures are messages, not traces"


def test_a_subclass_that_forgets_the_fixture_is_told_how(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_empty=COMMON + "\nclass TestNothing(ConnectorTests):\n    pass\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:randomly", "-k", "is_a_connector")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*override the `conformance` fixture in your subclass of ConnectorTests*"])
