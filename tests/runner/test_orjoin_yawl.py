"""The OR-join, checked against YAWL's own OR-join test nets and the classic hard cases.

Each YAWL net below is a hand translation of a file in ``shared/corpora/yawl/`` (named in its
test), made as follows:

* task and condition ids are kept verbatim (quoted where YAML would read them as numbers), so
  implicit conditions keep YAWL's ``c{src_dst}`` names and YAWL's markings can be written as is;
* atomic tasks (a ``decomposesTo`` a WebServiceGatewayFactsType) become ``external: true``, so
  the test decides when each one starts and completes; tasks without a decomposition would be
  routing tasks (none of these nets has one);
* ``join``/``split`` codes are copied;
* XPath predicates become CEL over data flags the test sets through the output of the task
  that splits (``random()`` and ``true()`` predicates become such flags; the flow marked
  ``isDefaultFlow`` becomes ``default: true``); an XOR split with one flow becomes a plain flow;
* ``removesTokens`` becomes ``cancels:``; data mappings (``startingMappings`` of ``Test55``) and
  net variables are dropped, since nothing in these nets routes on them.

The expected answers are the OR-join rule (Wynn, Edmond, van der Aalst & ter Hofstede 2005; ADR
0001 §4): an OR-join fires only when at least one input is marked and no marking reachable
without firing it keeps the marked inputs marked and marks an empty one. Busy items count as
the tokens their completion will produce; cancellation sets are reset arcs. Where YAWL's JUnit
tests assert something about these nets (``TestOrJoin.java``, ``TestYNet.testORJoinEnabled``),
the test here asserts the same and says so.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from yawlflow._compiled import CompiledNet, compile_spec
from yawlflow._events import CaseStarted, Event, ItemCancelRequested, ItemCompleted, ItemStarted
from yawlflow._hotpath import Marking
from yawlflow._orjoin import OrJoinOracle
from yawlflow._runner import NetRunner
from yawlflow._spec import loads
from yawlflow._state import ItemRecord

# -- a small driver: one case, driven event by event ----------------------------------------------


class Case:
    """One case of a spec's root net, driven by hand through the runner."""

    def __init__(self, yaml_text: str, data: dict[str, Any] | None = None) -> None:
        spec = loads(textwrap.dedent(yaml_text))
        self.net: CompiledNet = compile_spec(spec).net(spec.root)
        self.runner = NetRunner(self.net)
        step = self.runner.start(CaseStarted(case="c", net=self.net.name, data=data or {}))
        self.state = step.state
        self.trace: list[dict[str, Any]] = list(step.trace)

    def send(self, event: Event) -> None:
        step = self.runner.handle(self.state, event)
        self.state = step.state
        self.trace.extend(step.trace)

    # -- looking -----------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self.state.status

    def items(self, task: str) -> list[ItemRecord]:
        return [i for i in self.state.items.values() if i.task == task]

    def offered(self) -> list[str]:
        """The tasks with an offered item, sorted (a task offered twice appears twice)."""
        return sorted(i.task for i in self.state.items.values() if i.state == "offered")

    def tokens(self) -> dict[str, int]:
        m = self.state.marking
        return {self.net.place_names[p]: m.get(p) for p in m.marked()}

    def fired(self, task: str) -> int:
        """How many times ``task`` completed so far (from the trace)."""
        return sum(1 for r in self.trace if r["event"] == "item.completed" and r["task"] == task)

    # -- acting ------------------------------------------------------------------------------
    def _one(self, task: str, state: str | None = None) -> int:
        items = [i for i in self.items(task) if state is None or i.state == state]
        assert items, f"no {state or 'live'} item of {task!r}; live: {self.state.items}"
        return items[0].id

    def complete(self, task: str, output: dict[str, Any] | None = None) -> None:
        self.send(ItemCompleted(item=self._one(task), output=output))

    def start(self, task: str) -> None:
        self.send(ItemStarted(item=self._one(task, "offered")))

    def withdraw(self, task: str) -> None:
        """Withdraw the task's offered item: its token goes with it (ItemCancelRequested)."""
        self.send(ItemCancelRequested(item=self._one(task, "offered")))


def oracle_answers(net: CompiledNet, join: str, tokens: dict[str, int], busy: tuple[str, ...] = ()) -> bool:
    """Ask the OR-join oracle directly about a marking written with YAWL's element ids."""
    toks = [0] * net.n_places
    for name, n in tokens.items():
        toks[net.place_ids[name]] = n
    counts = [0] * net.n_tasks
    for name in busy:
        counts[net.task_ids[name]] += 1
    return OrJoinOracle(net).may_fire(Marking(net.kernel, toks, counts), net.task_ids[join])


# -- TestOrJoin.xml / Test55.xml ------------------------------------------------------------------
#
# test/engine/TestOrJoin.xml (net "Main") and test/engine/Test55.xml (the same net with numeric
# ids; its stub data mappings are dropped). A (XOR-join, AND-split) flows to itself, to C1 and to
# F. C1 is a deferred choice between B and C; B and C meet at the AND-join D, so D needs two
# rounds of A. E is an OR-join over C2 (from F) and C3 (from D). Since A can always run again, a
# token can always still reach C3: E must wait. YAWL's TestOrJoin.java (testImproperCompletion,
# testImproperCompletion2) runs A, F, B, starts A again and asserts no E item exists before or
# after A completes. We replay exactly that, then go on: withdrawing A (its token goes) and
# taking C1's last token with B leaves nothing that can reach C3, so E must fire then.

TEST_OR_JOIN = """
    yawlflow: 1
    id: TestOrJoin
    nets:
      Main:
        input: input
        output: "1"
        conditions:
          input: {flows: [A]}
          C1: {flows: [C, B]}
          C2: {flows: [E]}
          C3: {flows: [E]}
        tasks:
          A: {external: true, join: xor, split: and, flows: [A, C1, F]}
          B: {external: true, join: xor, split: and, flows: [D]}
          C: {external: true, join: xor, split: and, flows: [D]}
          F: {external: true, join: xor, split: and, flows: [C2]}
          E: {external: true, join: or, split: and, flows: ["1"]}
          D: {external: true, join: and, split: and, flows: [C3]}
"""

TEST_55 = """
    yawlflow: 1
    id: Test55.ywl
    nets:
      Main:
        input: "0"
        output: "1"
        conditions:
          "0": {flows: ["8"]}
          "4": {flows: ["7", "6"]}
          "2": {flows: ["9"]}
          "3": {flows: ["9"]}
        tasks:
          "8": {external: true, join: xor, split: and, flows: ["8", "4", "5"]}
          "6": {external: true, join: xor, split: and, flows: ["10"]}
          "7": {external: true, join: xor, split: and, flows: ["10"]}
          "5": {external: true, join: xor, split: and, flows: ["2"]}
          "9": {external: true, join: or, split: and, flows: ["1"]}
          "10": {external: true, join: and, split: and, flows: ["3"]}
"""

# Element names of TestOrJoin.xml -> the same element in each file.
NAMES = {
    "TestOrJoin.xml": (TEST_OR_JOIN, {n: n for n in ("A", "B", "C", "D", "E", "F", "C1", "C2", "C3")}),
    "Test55.xml": (
        TEST_55,
        {"A": "8", "B": "6", "C": "7", "D": "10", "E": "9", "F": "5", "C1": "4", "C2": "2", "C3": "3"},
    ),
}


@pytest.mark.parametrize("source", list(NAMES))
def test_yawl_testorjoin_e_waits_while_a_can_loop(source: str) -> None:
    text, n = NAMES[source]
    case = Case(text)
    A, B, C, D, E, F = (n[x] for x in "ABCDEF")
    assert case.offered() == [A]
    case.complete(A)
    assert sorted(case.offered()) == sorted([A, B, C, F])
    case.complete(F)
    assert case.tokens()[n["C2"]] == 1
    assert E not in case.offered(), "C3 can still be marked (A -> C1 -> B/C -> D)"
    case.complete(B)  # takes C1's token: C's offer goes with it (deferred choice)
    assert C not in case.offered()
    assert E not in case.offered()
    # TestOrJoin.java: start A again; "There should be no enabled work item 'E' yet."
    case.start(A)
    assert not case.items(E)
    case.complete(A)
    assert not case.items(E)
    assert sorted(case.offered()) == sorted([A, B, C, F])
    # Beyond the JUnit test: withdraw A (its token on c{A_A} goes with it). C1 still holds a
    # token, and C -> D -> C3 is still possible: E waits.
    case.withdraw(A)
    assert not case.items(A)
    assert E not in case.offered()
    # B takes C1's last token: now nothing can mark c{C_D}, D can never fire, C3 stays empty.
    case.complete(B)
    assert case.offered() == sorted([E, F]), case.tokens()
    case.complete(E)
    assert case.status == "completed"
    assert case.fired(E) == 1 and case.fired(D) == 0


@pytest.mark.parametrize("source", list(NAMES))
def test_yawl_testorjoin_e_fires_once_d_delivered(source: str) -> None:
    text, n = NAMES[source]
    case = Case(text)
    A, B, C, D, E, F = (n[x] for x in "ABCDEF")
    case.complete(A)
    case.complete(F)
    case.complete(B)
    case.complete(A)
    case.complete(C)  # c{B_D} and c{C_D}: D is offered
    assert D in case.offered()
    assert E not in case.offered()
    case.withdraw(A)  # A cannot loop any more; D is still pending, so E still waits
    assert E not in case.offered()
    case.complete(D)  # C2 and C3 both marked: E fires (all inputs marked needs no analysis)
    assert E in case.offered()
    case.complete(E)
    assert case.status == "completed"


# -- TestOrJoin2.xml ------------------------------------------------------------------------------
#
# test/engine/TestOrJoin2.xml: TestOrJoin.xml with C splitting into two explicit conditions c4
# and c5 that both feed D (an AND-join over c{B_D}, c4, c5).

TEST_OR_JOIN_2 = """
    yawlflow: 1
    id: TestOrJoin2
    nets:
      Main:
        input: "0"
        output: "1"
        conditions:
          "0": {flows: [A]}
          C1: {flows: [C, B]}
          c4: {flows: [D]}
          c5: {flows: [D]}
          C2: {flows: [E]}
          C3: {flows: [E]}
        tasks:
          A: {external: true, join: xor, split: and, flows: [A, C1, F]}
          B: {external: true, join: xor, split: and, flows: [D]}
          C: {external: true, join: xor, split: and, flows: [c4, c5]}
          F: {external: true, join: xor, split: and, flows: [C2]}
          E: {external: true, join: or, split: and, flows: ["1"]}
          D: {external: true, join: and, split: and, flows: [C3]}
"""


def test_yawl_testorjoin2() -> None:
    case = Case(TEST_OR_JOIN_2)
    case.complete("A")
    case.complete("F")
    case.complete("C")  # c4, c5
    assert "E" not in case.offered()
    case.withdraw("A")
    # B can no longer get a token (C1 empty, A gone): D never fires, C3 stays empty.
    assert case.offered() == ["E"], case.tokens()
    case.complete("E")
    assert case.status == "completed"


# -- YAWLOrJoinTestSpecification.xml --------------------------------------------------------------
#
# test/elements/state/YAWLOrJoinTestSpecification.xml (net "top"): q AND-splits into cA, cB, cC;
# cA -> a (an OR-join with a single input) -> d; cB -> b -> d; cC -> c -> o-top; d is an OR-join
# over c{a_d} and c{b_d}. (TestYOrJoinUtils tests YAWL-internal helpers on it; here we check the
# join's behaviour.) Note explicit termination: c reaching o-top ends the case, so c is left
# offered throughout.

YAWL_OR_JOIN_SPEC = """
    yawlflow: 1
    id: YAWLOrJoinTestSpecification.xml
    nets:
      top:
        input: i-top
        output: o-top
        conditions:
          i-top: {flows: [q]}
          cC: {flows: [c]}
          cA: {flows: [a]}
          cB: {flows: [b]}
        tasks:
          d: {external: true, join: or, split: and, flows: [o-top]}
          a: {external: true, join: or, split: and, flows: [d]}
          c: {external: true, join: xor, split: and, flows: [o-top]}
          q: {external: true, join: xor, split: and, flows: [cC, cA, cB]}
          b: {external: true, join: xor, split: and, flows: [d]}
"""


def test_yawl_orjoin_spec_single_input_orjoin_fires_at_once() -> None:
    case = Case(YAWL_OR_JOIN_SPEC)
    case.complete("q")
    # a's only input is marked: an OR-join with all its inputs marked fires without analysis.
    assert case.offered() == ["a", "b", "c"]


def test_yawl_orjoin_spec_d_waits_for_b_then_fires_when_b_is_withdrawn() -> None:
    case = Case(YAWL_OR_JOIN_SPEC)
    case.complete("q")
    case.complete("a")
    assert "d" not in case.offered(), "cB -> b -> c{b_d} is still possible"
    case.start("b")
    assert "d" not in case.offered(), "b is busy: its completion marks c{b_d}"
    case.complete("b")
    assert "d" in case.offered()
    case.complete("d")
    assert case.status == "completed"
    assert case.fired("d") == 1


def test_yawl_orjoin_spec_d_fires_once_b_is_withdrawn() -> None:
    case = Case(YAWL_OR_JOIN_SPEC)
    case.complete("q")
    case.complete("a")
    assert "d" not in case.offered()
    case.withdraw("b")
    assert "d" in case.offered(), case.tokens()


# -- YAWLOrJoinTestSpecificationWithLoop.xml ------------------------------------------------------
#
# test/elements/state/YAWLOrJoinTestSpecificationWithLoop.xml: as above, but a is an XOR-join and
# c XOR-splits back to q or on to o-top. The XML gives no predicates; the flag ``again`` chooses
# (q when true, o-top by default). With the loop, a withdrawn b does not free d: cC -> c -> q ->
# cB -> b can still mark c{b_d}.

YAWL_OR_JOIN_LOOP = """
    yawlflow: 1
    id: YAWLOrJoinTestSpecificationWithLoop.xml
    nets:
      top:
        input: i-top
        output: o-top
        conditions:
          i-top: {flows: [q]}
          cC: {flows: [c]}
          cA: {flows: [a]}
          cB: {flows: [b]}
        tasks:
          d: {external: true, join: or, split: and, flows: [o-top]}
          c:
            external: true
            join: xor
            split: xor
            flows: [{to: q, when: "again"}, {to: o-top, default: true}]
          b: {external: true, join: xor, split: and, flows: [d]}
          q: {external: true, join: xor, split: and, flows: [cC, cA, cB]}
          a: {external: true, join: xor, split: and, flows: [d]}
"""


def test_yawl_orjoin_with_loop_d_waits_while_the_loop_can_bring_b_back() -> None:
    case = Case(YAWL_OR_JOIN_LOOP)
    case.complete("q")
    case.complete("a")
    case.withdraw("b")
    assert "d" not in case.offered(), "c -> q -> cB -> b can still mark c{b_d}"
    case.complete("c", {"again": True})  # back to q
    assert "d" not in case.offered()
    case.complete("q")  # cA, cB, cC again
    assert "d" not in case.offered()
    case.complete("b")
    assert "d" in case.offered()
    case.complete("d")
    assert case.status == "completed"


def test_yawl_orjoin_with_loop_d_fires_once_the_loop_is_cut() -> None:
    case = Case(YAWL_OR_JOIN_LOOP)
    case.complete("q")
    case.complete("a")
    case.withdraw("b")
    assert "d" not in case.offered()
    case.withdraw("c")  # cC's token goes: nothing left upstream of c{b_d}
    assert case.offered() == ["d"], case.tokens()


# -- YAWLOrJoinTestSpecificationLongLoops.xml -----------------------------------------------------
#
# test/elements/state/YAWLOrJoinTestSpecificationLongLoops.xml (net "exmple with or joins"): q
# AND-splits into cA, cB, cC and c{q_f}; cA -> a (OR-join) -> d; cB -> b -> w -> d (an AND-join
# over c{a_d} and c{w_d}); d -> f; cC -> c -> q (c's only flow, predicate random(), is the
# default: a plain flow here); f is an OR-join over c{d_f} and c{q_f}.
#
# YAWL's TestYNet.testORJoinEnabled asks YNet.orJoinEnabled(f, marking) for eight markings; we
# ask the oracle the same questions and expect YAWL's answers.

YAWL_LONG_LOOPS = """
    yawlflow: 1
    id: YAWLOrJoinTestSpecificationLongLoops.xml
    nets:
      exmple with or joins:
        input: i-top
        output: o-top
        conditions:
          i-top: {flows: [q]}
          cC: {flows: [c]}
          cA: {flows: [a]}
          cB: {flows: [b]}
        tasks:
          d: {external: true, join: and, split: and, flows: [f]}
          w: {external: true, join: xor, split: and, flows: [d]}
          c: {external: true, join: xor, split: xor, flows: [q]}
          b: {external: true, join: xor, split: and, flows: [w]}
          q: {external: true, join: xor, split: and, flows: [cC, cA, f, cB]}
          a: {external: true, join: or, split: and, flows: [d]}
          f: {external: true, join: or, split: and, flows: [o-top]}
"""

LONG_LOOPS_MARKINGS = [
    # (TestYNet's identifier, tokens, busy tasks, orJoinEnabled(f) as YAWL asserts it)
    ("_id1: two tokens before f, and one that may arrive (cC -> c -> q)", {"c{d_f}": 2, "cC": 1}, (), False),
    (
        "_id2: a token before f, one hidden before another OR-join (a); d lacks c{w_d} for ever",
        {"c{d_f}": 1, "cA": 1},
        (),
        True,
    ),
    ("_id3: no token in f's preset", {"cC": 1}, (), False),
    ("_id4: a loop in the marking tree (i-top -> q -> c{q_f})", {"i-top": 1, "c{d_f}": 1}, (), False),
    ("_id5: a deadlock upstream (w -> d, but c{a_d} never comes)", {"c{d_f}": 1, "c{b_w}": 1}, (), True),
    ("_id6: a busy task (d) whose output is already marked", {"c{d_f}": 1}, ("d",), True),
    (
        "_id7: something complex (a and b -> w -> d can mark c{d_f})",
        {"cA": 1, "cB": 1, "c{q_f}": 1},
        (),
        False,
    ),
    ("_id8: as _id7 plus cC", {"cA": 1, "cB": 1, "cC": 1, "c{q_f}": 1}, (), False),
]


@pytest.mark.parametrize(
    ("why", "tokens", "busy", "enabled"),
    LONG_LOOPS_MARKINGS,
    ids=[m[0].split(":")[0] for m in LONG_LOOPS_MARKINGS],
)
def test_yawl_long_loops_orjoin_enabled_as_testynet(
    why: str, tokens: dict[str, int], busy: tuple[str, ...], enabled: bool
) -> None:
    spec = loads(textwrap.dedent(YAWL_LONG_LOOPS))
    net = compile_spec(spec).net(spec.root)
    assert oracle_answers(net, "f", tokens, busy) is enabled, why


def test_yawl_long_loops_oracle_leaves_the_marking_alone() -> None:
    # TestYNet also asserts that exploring the state space did not change the marking (_id7).
    spec = loads(textwrap.dedent(YAWL_LONG_LOOPS))
    net = compile_spec(spec).net(spec.root)
    toks = [0] * net.n_places
    for name in ("cA", "cB", "c{q_f}"):
        toks[net.place_ids[name]] = 1
    marking = Marking(net.kernel, toks)
    before = (marking.tokens(), marking.busy_counts())
    assert OrJoinOracle(net).may_fire(marking, net.task_ids["f"]) is False
    assert (marking.tokens(), marking.busy_counts()) == before


def test_yawl_long_loops_driven() -> None:
    case = Case(YAWL_LONG_LOOPS)
    case.complete("q")  # cC, cA, c{q_f}, cB
    assert "f" not in case.offered(), "a and b -> w -> d can still mark c{d_f}"
    case.complete("a")
    case.complete("b")
    assert "f" not in case.offered()
    case.complete("w")  # d: c{a_d} and c{w_d}
    assert "d" in case.offered()
    assert "f" not in case.offered()
    case.complete("d")  # c{d_f}: both inputs of f marked
    assert "f" in case.offered()
    case.complete("f")
    assert case.status == "completed"


def test_yawl_long_loops_driven_f_fires_when_every_path_is_cut() -> None:
    case = Case(YAWL_LONG_LOOPS)
    case.complete("q")
    case.withdraw("b")  # c{w_d} can still come: c -> q -> cB -> b -> w
    assert "f" not in case.offered()
    case.withdraw("c")  # cut the loop: d can never fire
    # cA is still marked and a is offered, but d needs c{w_d} too: c{d_f} is out of reach.
    assert "a" in case.offered()
    assert "f" in case.offered(), case.tokens()


# -- ORjoinWorkedExample.xml ----------------------------------------------------------------------
#
# test/elements/ORjoinWorkedExample.xml (Wynn et al.'s worked example): A AND-splits into 9_ and
# 4_; 9_ -> B, which AND-splits into 8_ and 7_cBB, and 7_cBB loops back into B; 8_ is a deferred
# choice between E and D; D cancels 7_cBB (ends the loop); F AND-joins E's 2_ and D's 6_; C
# carries 4_ to 5_; G is the OR-join over 5_ and F's 3_. F needs both an E and a D round, so B
# must run twice; once D has cancelled 7_cBB before any E ran, 3_ is out of reach and G fires.

WORKED_EXAMPLE = """
    yawlflow: 1
    id: ORjoinWorkedExampleLatest.ywl
    nets:
      New_Net_1:
        input: "0_InputCondition"
        output: "1_OutputCondition"
        conditions:
          "0_InputCondition": {flows: ["15_A"]}
          "9_": {flows: ["13_B"]}
          "4_": {flows: ["10_C"]}
          "8_": {flows: ["16_E", "12_D"]}
          "7_cBB": {flows: ["13_B"]}
          "5_": {flows: ["11_G"]}
          "2_": {flows: ["14_F"]}
          "6_": {flows: ["14_F"]}
          "3_": {flows: ["11_G"]}
        tasks:
          "15_A": {external: true, join: xor, split: and, flows: ["9_", "4_"]}
          "10_C": {external: true, join: xor, split: and, flows: ["5_"]}
          "13_B": {external: true, join: xor, split: and, flows: ["8_", "7_cBB"]}
          "11_G": {external: true, join: or, split: and, flows: ["1_OutputCondition"]}
          "12_D": {external: true, join: xor, split: and, flows: ["6_"], cancels: ["7_cBB"]}
          "16_E": {external: true, join: xor, split: and, flows: ["2_"]}
          "14_F": {external: true, join: and, split: and, flows: ["3_"]}
"""


def test_yawl_worked_example_cancellation_frees_the_orjoin() -> None:
    case = Case(WORKED_EXAMPLE)
    case.complete("15_A")
    case.complete("10_C")  # 5_
    assert "11_G" not in case.offered(), "B -> E/D -> F can still mark 3_"
    case.complete("13_B")  # 8_, 7_cBB
    assert "11_G" not in case.offered()
    case.complete("12_D")  # 6_, and D's cancellation set empties 7_cBB: B can never run again
    assert "7_cBB" not in case.tokens()
    # F needs 2_ from E, E needs 8_, 8_ needs B: out of reach. G must fire now.
    assert case.offered() == ["11_G"], case.tokens()
    case.complete("11_G")
    assert case.status == "completed"
    assert case.fired("14_F") == 0


def test_yawl_worked_example_full_round() -> None:
    case = Case(WORKED_EXAMPLE)
    case.complete("15_A")
    case.complete("10_C")
    case.complete("13_B")
    case.complete("16_E")  # 2_; 7_cBB still lets B run again
    assert "11_G" not in case.offered()
    case.complete("13_B")
    case.complete("12_D")  # 6_ (and 7_cBB cancelled): F is offered
    assert "14_F" in case.offered()
    assert "11_G" not in case.offered(), "F is offered: 3_ is still coming"
    case.start("14_F")
    assert "11_G" not in case.offered(), "F is busy: 3_ is still coming"
    case.complete("14_F")
    assert case.offered() == ["11_G"]
    case.complete("11_G")
    assert case.status == "completed"


@pytest.mark.parametrize(
    ("tokens", "busy", "enabled"),
    [
        ({"5_": 1, "7_cBB": 1, "2_": 1}, (), False),  # B -> 8_ -> D -> 6_ -> F
        ({"5_": 1, "2_": 1, "8_": 1}, (), False),  # D -> 6_ -> F
        ({"5_": 1, "2_": 1}, (), True),  # E ran, but no D can ever come
        ({"5_": 1, "6_": 1, "7_cBB": 1}, (), False),  # B -> 8_ -> E -> 2_ -> F
        ({"5_": 1, "6_": 1}, ("13_B",), False),  # busy B will mark 8_
        ({"5_": 1, "6_": 1}, ("12_D",), True),  # busy D only adds 6_ again
        ({"5_": 1}, ("10_C",), True),  # 5_ already marked; busy C only adds 5_ again
        ({"3_": 1}, ("10_C",), False),  # busy C will mark 5_
    ],
)
def test_yawl_worked_example_markings(tokens: dict[str, int], busy: tuple[str, ...], enabled: bool) -> None:
    spec = loads(textwrap.dedent(WORKED_EXAMPLE))
    net = compile_spec(spec).net(spec.root)
    assert oracle_answers(net, "11_G", tokens, busy) is enabled


# -- ORJoin_Cancel_Infiniteloop.xml ---------------------------------------------------------------
#
# test/elements/ORJoin_Cancel_Infiniteloop.xml: A -> 4_c1 -> B -> 3_c2; 3_c2 is a deferred choice
# between the OR-join E and C; C cancels 3_c2, 4_c1 and B, then marks 2_c3; 2_c3 is a deferred
# choice between D and E; D AND-splits back into 3_c2 and 4_c1. E's inputs 3_c2 and 2_c3 can
# never be marked together *because* C's cancellation set clears 3_c2 and 4_c1: an analysis
# blind to cancellation would see {c1, c2} -> B -> {c2, c2} -> C -> {c2, c3} and wait for ever
# (the "infinite loop" of the file's name, YAWL issues #558/#637). On the reset net E fires.

CANCEL_INFINITE_LOOP = """
    yawlflow: 1
    id: OrJon_Cancel_Infiniteloop.ywl
    nets:
      New_Net_1:
        input: "0_InputCondition"
        output: "1_OutputCondition"
        conditions:
          "0_InputCondition": {flows: ["8_A"]}
          "4_c1": {flows: ["7_B"]}
          "3_c2": {flows: ["9_E", "6_C"]}
          "2_c3": {flows: ["5_D", "9_E"]}
        tasks:
          "8_A": {external: true, join: xor, split: and, flows: ["4_c1"]}
          "7_B": {external: true, join: xor, split: and, flows: ["3_c2"]}
          "9_E": {external: true, join: or, split: and, flows: ["1_OutputCondition"]}
          "6_C": {external: true, join: xor, split: and, flows: ["2_c3"], cancels: ["3_c2", "4_c1", "7_B"]}
          "5_D": {external: true, join: xor, split: and, flows: ["3_c2", "4_c1"]}
"""


def test_yawl_cancel_infinite_loop_orjoin_fires_on_the_reset_net() -> None:
    case = Case(CANCEL_INFINITE_LOOP)
    case.complete("8_A")
    case.complete("7_B")  # 3_c2
    assert case.offered() == ["6_C", "9_E"]  # deferred choice; E may fire
    case.complete("6_C")  # 2_c3; E's offer on 3_c2 went with the token
    assert case.offered() == ["5_D", "9_E"]
    case.complete("5_D")  # 3_c2 and 4_c1
    # Reachable from {c2, c1} without E: {c2, c2} (B), {c3} (C, which clears c2 and c1). Never
    # c2 and c3 together: E fires.
    assert case.offered() == ["6_C", "7_B", "9_E"], case.tokens()
    case.complete("7_B")  # {c2: 2}
    assert case.offered() == ["6_C", "6_C", "9_E"]
    case.complete("9_E")
    assert case.status == "completed"


@pytest.mark.parametrize(
    ("tokens", "busy", "enabled"),
    [
        ({"3_c2": 1}, (), True),
        ({"3_c2": 1, "4_c1": 1}, (), True),  # only the reset arcs make this true
        ({"3_c2": 2}, (), True),
        ({"3_c2": 1}, ("7_B",), True),  # a busy B is cancelled by C before c3 can appear
        ({"2_c3": 1}, (), True),  # D consumes c3 to make c2
        ({"2_c3": 1}, ("7_B",), False),  # B completes first -> c2 while c3 is still marked
        ({"2_c3": 1, "4_c1": 1}, (), False),  # B -> c2 with c3 still marked
        ({"2_c3": 1}, ("5_D",), False),  # D busy (another round) -> c2
    ],
)
def test_yawl_cancel_infinite_loop_markings(
    tokens: dict[str, int], busy: tuple[str, ...], enabled: bool
) -> None:
    spec = loads(textwrap.dedent(CANCEL_INFINITE_LOOP))
    net = compile_spec(spec).net(spec.root)
    assert oracle_answers(net, "9_E", tokens, busy) is enabled


# -- ORJoin_ORsplit.xml ---------------------------------------------------------------------------
#
# test/elements/ORJoin_ORsplit.xml: A OR-splits to 6_c3 (the default flow), 7_c2 and 4_c1 (all
# predicates true()); D, C, B carry them to 3_c6, 2_c5, 5_c4; E is the OR-join over the three.
# The true() predicates become flags c2 and c1 set by A's output; the default flow is taken when
# neither is set (in YAWL, with both true, A takes 7_c2 and 4_c1: the case "c1+c2" below).
# E must fire exactly when the last *chosen* branch has delivered.

ORJOIN_ORSPLIT = """
    yawlflow: 1
    id: OrJoin_OrSplit.ywl
    nets:
      New_Net_1:
        input: "0_InputCondition"
        output: "1_OutputCondition"
        conditions:
          "0_InputCondition": {flows: ["12_A"]}
          "6_c3": {flows: ["8_D"]}
          "7_c2": {flows: ["9_C"]}
          "4_c1": {flows: ["10_B"]}
          "2_c5": {flows: ["11_E"]}
          "3_c6": {flows: ["11_E"]}
          "5_c4": {flows: ["11_E"]}
        tasks:
          "12_A":
            external: true
            join: xor
            split: or
            flows: [{to: "6_c3", default: true}, {to: "7_c2", when: "c2"}, {to: "4_c1", when: "c1"}]
          "9_C": {external: true, join: xor, split: and, flows: ["2_c5"]}
          "8_D": {external: true, join: xor, split: and, flows: ["3_c6"]}
          "10_B": {external: true, join: xor, split: and, flows: ["5_c4"]}
          "11_E": {external: true, join: or, split: and, flows: ["1_OutputCondition"]}
"""


@pytest.mark.parametrize(
    ("flags", "branches"),
    [
        ({"c1": True, "c2": True}, ["10_B", "9_C"]),
        ({"c1": True, "c2": False}, ["10_B"]),
        ({"c1": False, "c2": True}, ["9_C"]),
        ({"c1": False, "c2": False}, ["8_D"]),
    ],
    ids=["c1+c2", "c1", "c2", "default"],
)
@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_yawl_orsplit_orjoin_waits_for_exactly_the_chosen_branches(
    flags: dict[str, bool], branches: list[str], reverse: bool
) -> None:
    case = Case(ORJOIN_ORSPLIT)
    case.complete("12_A", flags)
    assert case.offered() == sorted(branches)
    order = list(reversed(branches)) if reverse else branches
    for task in order[:-1]:
        case.complete(task)
        assert "11_E" not in case.offered()
    case.start(order[-1])
    assert "11_E" not in case.offered(), "the last branch is busy"
    case.complete(order[-1])
    assert case.offered() == ["11_E"]
    case.complete("11_E")
    assert case.status == "completed"


def test_yawl_orsplit_orjoin_fires_when_a_chosen_branch_is_withdrawn() -> None:
    case = Case(ORJOIN_ORSPLIT)
    case.complete("12_A", {"c1": True, "c2": True})
    case.complete("9_C")
    assert "11_E" not in case.offered()
    case.withdraw("10_B")
    assert case.offered() == ["11_E"]


# -- OrJoin_structuralrestriction_1.xml -----------------------------------------------------------
#
# test/elements/OrJoin_structuralrestriction_1.xml: A AND-splits into B and G. B OR-splits into D
# (default) and C; D -> E -> 3_c_1 and C -> 4_c_2 meet at the OR-join F; F -> T -> U. G XOR-splits
# into N (ordering 0), I (ordering 1), H (default); N XOR-splits into O (ordering 0) or L
# (default); H -> K -> L; I -> J -> M; L -> M -> S; O -> P -> Q, and Q XOR-splits back to P
# (default) or on to R (ordering 0) -> 2_c_10 -> S. U is the OR-join over c{T_U} and c{S_U}. The
# true() predicates become flags. U must wait while the P-Q loop can still reach S.

STRUCTURAL_RESTRICTION = """
    yawlflow: 1
    id: OrJoin_structuralrestriction_1.ywl
    nets:
      New_Net_1:
        input: "0_InputCondition"
        output: "1_OutputCondition"
        conditions:
          "0_InputCondition": {flows: ["7_A"]}
          "4_c_2": {flows: ["12_F"]}
          "3_c_1": {flows: ["12_F"]}
          "2_c_10": {flows: ["5_S"]}
        tasks:
          "7_A": {external: true, join: xor, split: and, flows: ["6_B", "23_G"]}
          "23_G":
            external: true
            join: xor
            split: xor
            flows:
              - {to: "15_H", default: true}
              - {to: "22_N", when: "g_n", order: 0}
              - {to: "19_I", when: "g_i", order: 1}
          "6_B":
            external: true
            join: xor
            split: or
            flows: [{to: "8_D", default: true}, {to: "11_C", when: "b_c"}]
          "15_H": {external: true, join: xor, split: and, flows: ["18_K"]}
          "19_I": {external: true, join: xor, split: and, flows: ["9_J"]}
          "8_D": {external: true, join: xor, split: and, flows: ["16_E"]}
          "11_C": {external: true, join: xor, split: and, flows: ["4_c_2"]}
          "22_N":
            external: true
            join: xor
            split: xor
            flows: [{to: "25_O", when: "n_o", order: 0}, {to: "14_L", default: true}]
          "14_L": {external: true, join: xor, split: and, flows: ["10_M"]}
          "18_K": {external: true, join: xor, split: and, flows: ["14_L"]}
          "9_J": {external: true, join: xor, split: and, flows: ["10_M"]}
          "16_E": {external: true, join: xor, split: and, flows: ["3_c_1"]}
          "25_O": {external: true, join: xor, split: and, flows: ["20_P"]}
          "12_F": {external: true, join: or, split: and, flows: ["17_T"]}
          "20_P": {external: true, join: xor, split: and, flows: ["13_Q"]}
          "10_M": {external: true, join: xor, split: and, flows: ["5_S"]}
          "17_T": {external: true, join: xor, split: and, flows: ["24_U"]}
          "5_S": {external: true, join: xor, split: and, flows: ["24_U"]}
          "13_Q":
            external: true
            join: xor
            split: xor
            flows: [{to: "20_P", default: true}, {to: "21_R", when: "q_r", order: 0}]
          "24_U": {external: true, join: or, split: and, flows: ["1_OutputCondition"]}
          "21_R": {external: true, join: xor, split: and, flows: ["2_c_10"]}
"""


def test_yawl_structural_restriction_u_waits_through_the_p_q_loop() -> None:
    case = Case(STRUCTURAL_RESTRICTION)
    case.complete("7_A")
    case.complete("6_B", {"b_c": True})  # C only (the default D is not taken)
    case.complete("11_C")  # 4_c_2: F's other input 3_c_1 is out of reach (D was not chosen)
    assert "12_F" in case.offered()
    case.complete("12_F")
    case.complete("17_T")  # c{T_U}
    assert "24_U" not in case.offered()
    case.complete("23_G", {"g_n": True, "g_i": False})
    case.complete("22_N", {"n_o": True})
    for _ in range(3):  # the P-Q loop goes round: S is still reachable, U waits
        case.complete("25_O" if case.items("25_O") else "13_Q", {"q_r": False})
        case.complete("20_P")
        assert "24_U" not in case.offered()
    case.complete("13_Q", {"q_r": True})
    case.complete("21_R")
    assert "24_U" not in case.offered()
    case.complete("5_S")
    assert case.offered() == ["24_U"]
    case.complete("24_U")
    assert case.status == "completed"


def test_yawl_structural_restriction_u_fires_when_the_loop_is_withdrawn() -> None:
    case = Case(STRUCTURAL_RESTRICTION)
    case.complete("7_A")
    case.complete("6_B", {"b_c": True})
    case.complete("11_C")
    case.complete("12_F")
    case.complete("17_T")
    case.complete("23_G", {"g_n": True, "g_i": False})
    case.complete("22_N", {"n_o": True})
    case.complete("25_O")
    assert "24_U" not in case.offered()
    case.withdraw("20_P")  # the loop's only token goes: S can never be reached
    assert case.offered() == ["24_U"], case.tokens()


def test_yawl_structural_restriction_f_follows_b_s_choice() -> None:
    # With C's predicate true, B's OR-split skips the default D (as YAWL does): F fires as soon as
    # C has delivered, since nothing is upstream of 3_c_1. With C's predicate false, only D runs,
    # and F must wait until E has delivered 3_c_1, not fire on an empty 4_c_2.
    case = Case(STRUCTURAL_RESTRICTION)
    case.complete("7_A")
    case.complete("6_B", {"b_c": True})
    assert "8_D" not in case.offered()
    assert "12_F" not in case.offered(), "C is offered: 4_c_2 is coming"
    case.complete("11_C")
    assert "12_F" in case.offered()

    case = Case(STRUCTURAL_RESTRICTION)
    case.complete("7_A")
    case.complete("6_B", {"b_c": False})
    assert "11_C" not in case.offered()
    case.complete("8_D")
    assert "12_F" not in case.offered(), "E is offered: 3_c_1 is coming"
    case.start("16_E")
    assert "12_F" not in case.offered(), "E is busy: 3_c_1 is coming"
    case.complete("16_E")
    assert "12_F" in case.offered()


# -- classic cases ----------------------------------------------------------------------------------


def test_orjoin_in_a_loop_waits_while_an_upstream_token_can_reach_it() -> None:
    # s AND-splits into x and y. x -> j (OR-join). y loops on itself (XOR split on `again`), then
    # goes to j. While y can loop, j must wait; once y leaves the loop, j has both inputs.
    case = Case("""
        yawlflow: 1
        id: loop
        nets:
          main:
            input: i
            output: o
            tasks:
              s: {flows: [x, y]}
              x: {external: true, flows: [j]}
              y:
                external: true
                join: xor
                split: xor
                flows: [{to: y, when: "again"}, {to: j, default: true}]
              j: {external: true, join: or, flows: [o]}
    """)
    case.complete("x")
    assert "j" not in case.offered()
    for _ in range(5):
        case.complete("y", {"again": True})
        assert "j" not in case.offered(), "y can still reach j"
    case.complete("y", {"again": False})
    assert case.offered() == ["j"]
    case.complete("j")
    assert case.status == "completed"


def test_orjoin_fires_when_a_cancellation_set_removes_its_upstream_token() -> None:
    # s AND-splits into a, b, k, which all meet at the OR-join j. k cancels b (an offered item, or
    # a started one): that removes the only way to j's input c{b_j}, so once a and k have
    # delivered, j must fire at once.
    spec = """
        yawlflow: 1
        id: cancel
        nets:
          main:
            input: i
            output: o
            tasks:
              s: {flows: [a, b, k]}
              a: {external: true, flows: [j]}
              b: {external: true, flows: [j]}
              k: {external: true, cancels: [b], flows: [j]}
              j: {external: true, join: or, flows: [o]}
    """
    for b_started in (False, True):
        case = Case(spec)
        case.complete("a")
        if b_started:
            case.start("b")
        assert "j" not in case.offered()
        case.complete("k")  # cancels b first, then marks c{k_j}
        assert not case.items("b")
        assert case.offered() == ["j"], (b_started, case.tokens())
        case.complete("j")
        assert case.status == "completed"


def test_orjoin_fires_when_a_cancelled_condition_held_the_upstream_token() -> None:
    # As above, but the cancellation set names b's input condition cb, not b.
    case = Case("""
        yawlflow: 1
        id: cancel-condition
        nets:
          main:
            input: i
            output: o
            conditions:
              cb: {flows: [b]}
            tasks:
              s: {flows: [a, cb, k]}
              a: {external: true, flows: [j]}
              b: {external: true, flows: [j]}
              k: {external: true, cancels: [cb], flows: [j]}
              j: {external: true, join: or, flows: [o]}
    """)
    case.complete("a")
    assert "j" not in case.offered()
    case.complete("k")  # empties cb: b's offer is withdrawn, nothing can reach c{b_j}
    assert not case.items("b")
    assert case.offered() == ["j"], case.tokens()


def test_orjoin_waits_when_the_cancellation_set_misses_the_upstream_token() -> None:
    # Control for the two tests above: k cancels nothing, so b can still deliver and j waits.
    case = Case("""
        yawlflow: 1
        id: no-cancel
        nets:
          main:
            input: i
            output: o
            tasks:
              s: {flows: [a, b, k]}
              a: {external: true, flows: [j]}
              b: {external: true, flows: [j]}
              k: {external: true, flows: [j]}
              j: {external: true, join: or, flows: [o]}
    """)
    case.complete("a")
    case.complete("k")
    assert case.offered() == ["b"]
    case.complete("b")
    assert case.offered() == ["j"]


def test_two_orjoins_in_sequence() -> None:
    # s OR-splits into a, b, c; a and b meet at the OR-join j1; j1 and c meet at the OR-join j2.
    # j2 must wait for j1 (and j1 for the chosen ones of a and b).
    spec = """
        yawlflow: 1
        id: two-orjoins
        nets:
          main:
            input: i
            output: o
            tasks:
              s:
                external: true
                split: or
                flows: [{to: a, when: "pa"}, {to: b, when: "pb"}, {to: c, when: "pc"}]
              a: {external: true, flows: [j1]}
              b: {external: true, flows: [j1]}
              c: {external: true, flows: [j2]}
              j1: {external: true, join: or, flows: [j2]}
              j2: {external: true, join: or, flows: [o]}
    """
    case = Case(spec)
    case.complete("s", {"pa": True, "pb": True, "pc": True})
    case.complete("c")
    assert "j2" not in case.offered(), "a/b -> j1 can still mark c{j1_j2}"
    case.complete("a")
    assert "j1" not in case.offered(), "b can still mark c{b_j1}"
    assert "j2" not in case.offered()
    case.complete("b")
    assert case.offered() == ["j1"]
    assert "j2" not in case.offered(), "j1 is offered"
    case.complete("j1")
    assert case.offered() == ["j2"]
    case.complete("j2")
    assert case.status == "completed"

    case = Case(spec)
    case.complete("s", {"pa": True, "pb": False, "pc": True})
    case.complete("a")
    assert case.offered() == ["c", "j1"]
    case.complete("j1")
    assert "j2" not in case.offered(), "c is still offered"
    case.complete("c")
    assert case.offered() == ["j2"]

    case = Case(spec)
    case.complete("s", {"pa": False, "pb": False, "pc": True})
    case.complete("c")
    assert case.offered() == ["j2"], "nothing upstream of j1"


def test_vicious_circle_of_two_orjoins_deadlocks() -> None:
    # s AND-splits into x and y. j1 is an OR-join over c{x_j1} and c{j2_j1}; j2 is an OR-join
    # over c{y_j2} and c{j1_j2}; each feeds the other and the output. Each join has a marked input
    # and an empty one that the *other* join could fill. The oracle treats other OR-joins
    # optimistically (as XOR-joins that may fire on any one input: Wynn et al.'s optimistic
    # approach, as in YAWL), so each sees that the other may still fire and deliver: both wait.
    # With nothing enabled and nothing busy, the case fails with a deadlock naming the stuck
    # tokens. (A pessimistic reading would treat them as AND-joins and let both fire.)
    case = Case("""
        yawlflow: 1
        id: vicious
        nets:
          main:
            input: i
            output: o
            tasks:
              s: {flows: [x, y]}
              x: {flows: [j1]}
              y: {flows: [j2]}
              j1: {join: or, flows: [j2, o]}
              j2: {join: or, flows: [j1, o]}
    """)
    assert case.status == "failed"
    assert case.trace[-1]["event"] == "case.failed"
    error = case.trace[-1]["data"]["error"]
    assert "deadlock" in error
    assert "c{x_j1}" in error and "c{y_j2}" in error
    assert not any(r["event"] == "item.completed" and r["task"] in ("j1", "j2") for r in case.trace)


def test_vicious_circle_with_external_joins_waits_without_offering() -> None:
    # The same circle with offered joins: neither is offered; the case is deadlocked at once.
    case = Case("""
        yawlflow: 1
        id: vicious-external
        nets:
          main:
            input: i
            output: o
            tasks:
              s: {flows: [x, y]}
              x: {external: true, flows: [j1]}
              y: {external: true, flows: [j2]}
              j1: {external: true, join: or, flows: [j2, o]}
              j2: {external: true, join: or, flows: [j1, o]}
    """)
    case.complete("x")
    assert case.offered() == ["y"]
    case.complete("y")
    assert case.status == "failed"
    assert "deadlock" in case.trace[-1]["data"]["error"]
