"""The catalogue: one runnable, checked entry per workflow control-flow pattern (WCP-1 … WCP-43).

Theory of operation. Each ``wcpNN_<name>.py`` module defines one :class:`Pattern`: the paper's
name, a precise operational definition, a minimal spec that writes the pattern *directly* with
the constructs of ARCHITECTURE.md §3, the handlers and initial data that spec needs, a ``drive``
that plays the outside world (completing offered items, sending signals, adding instances) with
a seeded ``random.Random``, and the trace *properties* that define the pattern: what must happen
and what must never happen. :func:`run_pattern` runs a pattern's spec in a fresh engine with a
seed and a virtual clock; :func:`check` runs its properties on the result. The same seed gives
the same trace on every backend, so a failing seed is a reproduction.

This catalogue is the single source of truth: ``yawlflow patterns``, ``PATTERN_TABLE`` and
``docs/patterns.md`` are all derived from it. The registry imports every module by name (no
discovery that could silently miss one), and checks that it holds exactly the numbers 1 … 43.

Numbers and names as in Russell, ter Hofstede, van der Aalst & Mulyar, *Workflow Control-Flow
Patterns: A Revised View* (BPM Center Report BPM-06-22, 2006).
"""

from __future__ import annotations

import functools
import importlib
import random
import re
import types
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from yawlflow import Case, Result, Spec

__all__ = (
    "BACKENDS",
    "PATTERNS",
    "Check",
    "Drive",
    "Handler",
    "Pattern",
    "Property",
    "Trace",
    "Verdict",
    "check",
    "get",
    "run_pattern",
)

Trace = Sequence[Mapping[str, Any]]
"""A case's trace: its events (sub-cases' included) in the order applied (ARCHITECTURE.md §4)."""
Check = Callable[[Trace, "Result"], None]
"""A property's check: returns when it holds, raises :class:`AssertionError` saying why not."""
Property = tuple[str, Check]
"""A named trace property: (what must hold, its check)."""
Drive = Callable[["Case", random.Random], Awaitable[None]]
"""The external side of a pattern's case: ``await drive(case, rng)`` plays it with ``rng``."""
Handler = Callable[..., Any]
"""A handler, as ``Engine.handlers.register`` takes it."""

BACKENDS: Final = ("asyncio", "trio")
"""The async backends :func:`run_pattern` runs on."""

RUN_TIMEOUT_S: Final = 30.0
"""A hang guard, in real seconds, for one run (a healthy run takes milliseconds)."""

_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, kw_only=True, slots=True)
class Pattern:
    """One workflow control-flow pattern and the yawlflow spec that writes it directly.

    Attributes:
        number: the pattern's number in the 2006 revised catalogue (1 … 43).
        name: its name, as in the paper.
        definition: what must happen and what must never happen, in one paragraph.
        spec: a minimal runnable spec (YAML text) that writes the pattern with §3 constructs.
        handlers: the handlers the spec's auto tasks run, by name.
        data: the case's initial data.
        drive: plays the external side (offered items, signals, instances), choosing with the
            given seeded ``random.Random``; ``None`` when the case runs by itself.
        properties: the named trace properties that define the pattern; each check raises
            :class:`AssertionError` with a clear message when its property does not hold.
        construct: how a yawlflow spec writes the pattern (one line, for tables).

    Raises:
        ValueError: the number is outside 1 … 43, there is no property, or two share a name.
    """

    number: int
    name: str
    definition: str
    spec: str
    handlers: Mapping[str, Handler] = field(default_factory=lambda: types.MappingProxyType({}))
    data: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    drive: Drive | None = None
    properties: tuple[Property, ...]
    construct: str

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 43:
            raise ValueError(f"pattern number {self.number} is outside 1 … 43")
        if not self.properties:
            raise ValueError(f"WCP-{self.number} {self.name}: a pattern needs at least one property")
        names = [name for name, _ in self.properties]
        if len(set(names)) != len(names):
            raise ValueError(f"WCP-{self.number} {self.name}: two properties share a name")
        object.__setattr__(self, "handlers", types.MappingProxyType(dict(self.handlers)))
        object.__setattr__(self, "data", types.MappingProxyType(dict(self.data)))

    @property
    def slug(self) -> str:
        """The module name: ``wcp17_interleaved_parallel_routing``."""
        return f"wcp{self.number:02d}_{_SLUG.sub('_', self.name.lower()).strip('_')}"

    @property
    def title(self) -> str:
        """``WCP-17 Interleaved Parallel Routing``."""
        return f"WCP-{self.number} {self.name}"

    def load(self) -> Spec:
        """The spec, loaded and validated (cached: a Spec is immutable).

        Raises:
            SpecError: the spec text is invalid (a bug in the catalogue).
        """
        return _load(self.spec, f"{self.slug}.yaml")


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """Whether one property held on a result.

    Attributes:
        name: the property's name.
        ok: whether it held.
        message: why not (empty when it held).
    """

    name: str
    ok: bool
    message: str = ""


@functools.cache
def _load(text: str, source: str) -> Spec:
    from yawlflow import loads

    return loads(text, source=source)


def get(number: int) -> Pattern:
    """The pattern numbered ``number``.

    Raises:
        KeyError: ``number`` is not one of 1 … 43.
    """
    if isinstance(number, int) and not isinstance(number, bool):
        found = PATTERNS.get(number)
        if found is not None:
            return found
    raise KeyError(f"no workflow control-flow pattern numbered {number!r}: use a number from 1 to 43")


def run_pattern(number: int, *, seed: int, backend: str = "asyncio") -> Result:
    """Run pattern ``number``'s spec once, deterministically, and return how the case ended.

    A fresh in-memory engine with ``seed`` and a ``FakeClock(autojump=True)`` registers the
    pattern's handlers and starts its case with its data; the pattern's ``drive`` then plays the
    external side with ``random.Random(seed)``. The result is taken once the case has ended, or
    once only external work could move it on (status ``waiting``, as with ``yf.run``). The same
    number and seed give the same trace on every backend.

    Args:
        number: the pattern's number, 1 … 43.
        seed: the engine's and the drive's seed.
        backend: ``asyncio`` or ``trio``.

    Returns:
        The case's result (its trace includes its sub-cases').

    Raises:
        KeyError: ``number`` is not one of 1 … 43.
        ValueError: ``backend`` is not one of :data:`BACKENDS`.
        TimeoutError: the run did not settle within :data:`RUN_TIMEOUT_S` real seconds (a bug).
    """
    pattern = get(number)
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: use one of {', '.join(BACKENDS)}")
    import anyio

    from yawlflow import Engine
    from yawlflow.testing import FakeClock

    spec = pattern.load()

    async def main() -> Result:
        with anyio.fail_after(RUN_TIMEOUT_S):
            async with Engine(seed=seed, clock=FakeClock(autojump=True), handlers=pattern.handlers) as engine:
                case = await engine.start(spec, dict(pattern.data))
                if pattern.drive is not None:
                    await pattern.drive(case, random.Random(seed))  # noqa: S311 - a simulation, not crypto
                # Until the case ends or only external work could move it on; armed timers are
                # waited for (the virtual clock jumps). The same wait as yf.run's.
                return await case._settled()

    try:
        return anyio.run(main, backend=backend)
    except TimeoutError:
        raise TimeoutError(
            f"{pattern.title} (seed {seed}, {backend}) did not settle within {RUN_TIMEOUT_S:g} s: "
            "this is a bug; reproduce it with run_pattern"
            f"({number}, seed={seed}, backend={backend!r})"
        ) from None


def check(number: int, result: Result) -> tuple[Verdict, ...]:
    """Run every property of pattern ``number`` on ``result``.

    Args:
        number: the pattern's number, 1 … 43.
        result: a result of :func:`run_pattern` for that pattern.

    Returns:
        One verdict per property, in the pattern's order. A property whose check raises
        anything but :class:`AssertionError` fails too, its message naming the exception.

    Raises:
        KeyError: ``number`` is not one of 1 … 43.
    """
    pattern = get(number)
    verdicts: list[Verdict] = []
    for name, fn in pattern.properties:
        try:
            fn(result.trace, result)
        except AssertionError as exc:
            verdicts.append(Verdict(name=name, ok=False, message=str(exc) or "does not hold"))
        except Exception as exc:  # a broken check is a failed check, never a crash
            verdicts.append(Verdict(name=name, ok=False, message=f"the check raised {type(exc).__name__}: {exc}"))
        else:
            verdicts.append(Verdict(name=name, ok=True))
    return tuple(verdicts)


_MODULES = (
    "wcp01_sequence",
    "wcp02_parallel_split",
    "wcp03_synchronization",
    "wcp04_exclusive_choice",
    "wcp05_simple_merge",
    "wcp06_multi_choice",
    "wcp07_structured_synchronizing_merge",
    "wcp08_multi_merge",
    "wcp09_structured_discriminator",
    "wcp10_arbitrary_cycles",
    "wcp11_implicit_termination",
    "wcp12_multiple_instances_without_synchronization",
    "wcp13_multiple_instances_with_a_priori_design_time_knowledge",
    "wcp14_multiple_instances_with_a_priori_run_time_knowledge",
    "wcp15_multiple_instances_without_a_priori_run_time_knowledge",
    "wcp16_deferred_choice",
    "wcp17_interleaved_parallel_routing",
    "wcp18_milestone",
    "wcp19_cancel_task",
    "wcp20_cancel_case",
    "wcp21_structured_loop",
    "wcp22_recursion",
    "wcp23_transient_trigger",
    "wcp24_persistent_trigger",
    "wcp25_cancel_region",
    "wcp26_cancel_multiple_instance_activity",
    "wcp27_complete_multiple_instance_activity",
    "wcp28_blocking_discriminator",
    "wcp29_cancelling_discriminator",
    "wcp30_structured_partial_join",
    "wcp31_blocking_partial_join",
    "wcp32_cancelling_partial_join",
    "wcp33_generalised_and_join",
    "wcp34_static_partial_join_for_multiple_instances",
    "wcp35_cancelling_partial_join_for_multiple_instances",
    "wcp36_dynamic_partial_join_for_multiple_instances",
    "wcp37_local_synchronizing_merge",
    "wcp38_general_synchronizing_merge",
    "wcp39_critical_section",
    "wcp40_interleaved_routing",
    "wcp41_thread_merge",
    "wcp42_thread_split",
    "wcp43_explicit_termination",
)


def _registry() -> Mapping[int, Pattern]:
    # Every module by name: a missing one is an ImportError here, never a silent gap.
    modules = [importlib.import_module(f".{name}", __package__) for name in _MODULES]
    out: dict[int, Pattern] = {}
    for module in modules:
        pattern: Pattern = module.PATTERN
        leaf = module.__name__.rsplit(".", 1)[-1]
        if pattern.slug != leaf:
            raise ImportError(f"{module.__name__}: its pattern is {pattern.title} ({pattern.slug}), not {leaf}")
        if pattern.number in out:
            raise ImportError(f"{module.__name__}: WCP-{pattern.number} is defined twice")
        out[pattern.number] = pattern
    if sorted(out) != list(range(1, 44)):
        raise ImportError(f"the catalogue lacks patterns {sorted(set(range(1, 44)) - set(out))}")
    return types.MappingProxyType(out)


PATTERNS: Final[Mapping[int, Pattern]] = _registry()
"""Every pattern, by number (1 … 43), in order."""
