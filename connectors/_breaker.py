"""The circuit breaker of a connector instance: closed, open, half-open, on the engine clock.

Theory of operation. The breaker is a small state machine fed by outcomes; it never awaits and
never reads time except through the injected clock, so a test moves a FakeClock past the
cool-down and the breaker is half-open at once.

* closed: every call is admitted; each outcome goes into a window of the latest ``window``
  outcomes. When the window holds ``min_calls`` or more and the failures reach ``failure_rate``
  of it, the breaker opens.
* open: calls are refused at once with ``CircuitOpenError`` (``retry_after`` says when a probe
  may go) until ``cool_down`` has passed since it opened; then it is half-open.
* half-open: at most ``probes`` calls are admitted at once as probes. ``probes`` successes close
  it (with an empty window); one failure opens it again for another cool-down.

Each admitted call holds a ticket stamped with the breaker's generation, which changes on every
transition: an outcome from before a transition (a slow call admitted while closed that fails
after the breaker opened) is dropped, so it cannot close a breaker or count against a new window.
A call that ends with no verdict (cancelled, or a failure that is not the downstream's fault)
gives its ticket back with ``release``, freeing its probe slot.

Health checks feed it too: an unhealthy report opens it, a healthy one lets an open breaker
half-open early, so that the probes decide.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal

from yawlflow._clock import Clock

from ._errors import CircuitOpenError
from ._policy import BreakerPolicy
from ._protocol import Health

__all__ = ("BreakerState", "CircuitBreaker", "Ticket")

BreakerState = Literal["closed", "open", "half_open"]


class Ticket:
    """An admitted call's claim: which generation admitted it, and whether it is a probe."""

    __slots__ = ("generation", "probe")

    def __init__(self, generation: int, probe: bool) -> None:
        self.generation = generation
        self.probe = probe


class CircuitBreaker:
    """A circuit breaker (see the module docstring).

    Args:
        policy: window, threshold, cool-down and probes.
        clock: the engine clock.
        name: the connector's name, for messages.
        on_change: called with ``(old_state, new_state, reason)`` on every transition
            (telemetry hooks here).
    """

    def __init__(self, policy: BreakerPolicy, clock: Clock, *, name: str = "connector",
                 on_change: Callable[[BreakerState, BreakerState, str], None] | None = None) -> None:
        self.policy = policy
        self._clock = clock
        self.name = name
        self._on_change = on_change
        self._state: BreakerState = "closed"
        self._generation = 0
        self._window: deque[bool] = deque(maxlen=policy.window)  # True: a failure
        self._failures = 0
        self._opened_at_ns = 0
        self._reason = ""
        self._probes_out = 0
        self._probe_wins = 0

    # -- reading -----------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose cool-down has passed is half-open)."""
        self._tick()
        return self._state

    def retry_after(self) -> float | None:
        """Seconds until an open breaker admits a probe (0 when it would now, ``None`` when not open)."""
        self._tick()
        if self._state != "open":
            return None
        due = self._opened_at_ns + int(self.policy.cool_down * 1e9)
        return max(0.0, (due - self._clock.now_ns()) / 1e9)

    def window(self) -> tuple[int, int]:
        """``(failures, outcomes)`` in the current window."""
        return self._failures, len(self._window)

    # -- the call's side -----------------------------------------------------------------------
    def admit(self) -> Ticket:
        """Admit a call, or refuse it.

        Raises:
            CircuitOpenError: the breaker is open, or half-open with all its probes out.
        """
        self._tick()
        if self._state == "closed":
            return Ticket(self._generation, False)
        if self._state == "half_open":
            if self._probes_out + self._probe_wins < self.policy.probes:
                self._probes_out += 1
                return Ticket(self._generation, True)
            raise CircuitOpenError(
                f"connector {self.name!r}: circuit half-open, {self._probes_out} probe call(s) in flight "
                f"after: {self._reason}; this call was not made (retry once the probes are back)",
                connector=self.name,
            )
        wait = self.retry_after()
        raise CircuitOpenError(
            f"connector {self.name!r}: circuit open: {self._reason}; this call was not made "
            f"(a probe goes through in {wait:g}s)",
            connector=self.name, retry_after=wait,
        )

    def success(self, ticket: Ticket) -> None:
        """The admitted call succeeded (or failed by the caller's fault: the downstream answered)."""
        if ticket.generation != self._generation:
            return
        if ticket.probe:
            self._probes_out -= 1
            self._probe_wins += 1
            if self._probe_wins >= self.policy.probes:
                self._move("closed", f"{self._probe_wins} probe call(s) succeeded")
            return
        self._record(False)

    def failure(self, ticket: Ticket, error: BaseException) -> None:
        """The admitted call failed by the downstream's fault (a timeout, a reset, a 503)."""
        if ticket.generation != self._generation:
            return
        if ticket.probe:
            self._probes_out -= 1
            self._open(f"a probe call failed: {type(error).__name__}: {error}")
            return
        self._record(True)
        failures, outcomes = self.window()
        if outcomes >= self.policy.min_calls and failures >= self.policy.failure_rate * outcomes:
            self._open(
                f"{failures} of the last {outcomes} calls failed ({failures / outcomes:.0%}, "
                f"threshold {self.policy.failure_rate:.0%}); last: {type(error).__name__}: {error}"
            )

    def release(self, ticket: Ticket) -> None:
        """The admitted call ended with no verdict (cancelled): free its probe slot."""
        if ticket.generation == self._generation and ticket.probe:
            self._probes_out -= 1

    # -- health --------------------------------------------------------------------------------
    def report_health(self, health: Health) -> None:
        """Feed a health check: unhealthy opens the breaker, healthy half-opens an open one."""
        self._tick()
        if not health.ok:
            self._open(f"health check failed: {health.detail or 'no detail'}")
        elif self._state == "open":
            self._move("half_open", "a health check passed")

    # -- inside --------------------------------------------------------------------------------
    def _record(self, failed: bool) -> None:
        if len(self._window) == self._window.maxlen and self._window[0]:
            self._failures -= 1
        self._window.append(failed)
        self._failures += failed

    def _tick(self) -> None:
        if self._state == "open":
            due = self._opened_at_ns + int(self.policy.cool_down * 1e9)
            if self._clock.now_ns() >= due:
                self._move("half_open", f"cool-down of {float(self.policy.cool_down):g}s passed")

    def _open(self, reason: str) -> None:
        self._opened_at_ns = self._clock.now_ns()
        self._reason = reason
        self._move("open", reason)

    def _move(self, state: BreakerState, reason: str) -> None:
        old = self._state
        self._state = state
        self._generation += 1
        self._window.clear()
        self._failures = 0
        self._probes_out = 0
        self._probe_wins = 0
        if self._on_change is not None and old != state:
            self._on_change(old, state, reason)
