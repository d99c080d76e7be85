"""The 43 workflow control-flow patterns and how a yawlflow spec writes each one.

Numbers and names as in Russell, ter Hofstede, van der Aalst & Mulyar, *Workflow Control-Flow
Patterns: A Revised View* (BPM Center Report BPM-06-22, 2006). The third column names the
constructs of the spec format (ARCHITECTURE.md §3) that express the pattern directly. This one
table feeds ``yawlflow patterns``, the README and the docs, so they cannot disagree.
"""

from __future__ import annotations

from typing import Final

__all__ = ("PATTERN_TABLE", "PatternRow")

PatternRow = tuple[int, str, str]
"""(number, name as in the 2006 paper, how yawlflow expresses it)."""

PATTERN_TABLE: Final[tuple[PatternRow, ...]] = (
    (1, "Sequence", "a flow from one task to the next: flows: [b]"),
    (2, "Parallel Split", "a task's split: and (the default): every outgoing flow gets a token"),
    (3, "Synchronization", "join: and: fires once every incoming flow holds a token"),
    (4, "Exclusive Choice", "split: xor with flows[].when (CEL), order and one default flow"),
    (5, "Simple Merge", "join: xor (the default) after an exclusive choice"),
    (6, "Multi-Choice", "split: or: every flow whose when is true (the default flow if none)"),
    (7, "Structured Synchronizing Merge", "join: or closing the branches of a split: or"),
    (8, "Multi-Merge", "join: xor fed by concurrent branches: it fires once per arriving token"),
    (9, "Structured Discriminator", "join: {partial: 1} (reset: wait) after an m-way and split"),
    (
        10,
        "Arbitrary Cycles",
        "plain back flows to earlier tasks or conditions, any number of entries and exits",
    ),
    (11, "Implicit Termination", "termination: implicit on the net: done when nothing is enabled or busy"),
    (
        12,
        "Multiple Instances without Synchronization",
        "instances: {count: N, join: none}: control moves on at once",
    ),
    (
        13,
        "Multiple Instances with a priori Design-Time Knowledge",
        "instances: {count: 3} (join: all, the default)",
    ),
    (
        14,
        "Multiple Instances with a priori Run-Time Knowledge",
        "instances: {count: <CEL>} or {items: <CEL list>, as: key}",
    ),
    (
        15,
        "Multiple Instances without a priori Run-Time Knowledge",
        "instances: {creation: dynamic, max: M} and case.add_instance(task, data)",
    ),
    (
        16,
        "Deferred Choice",
        "a condition whose postset holds several offered or triggered tasks: the first started wins",
    ),
    (
        17,
        "Interleaved Parallel Routing",
        "mutex: {name: [regions]} over the tasks, with flows for the partial order",
    ),
    (18, "Milestone", "milestone: [conditions]: enabled only while those conditions are marked"),
    (19, "Cancel Task", "cancels: [task] on another task, or case.cancel_item(id) from the API"),
    (20, "Cancel Case", "cancels: [<its own net>] on a task, or case.cancel() from the API"),
    (21, "Structured Loop", "loop: {while: <CEL>} (pre-test) or loop: {until: <CEL>} (post-test)"),
    (22, "Recursion", "net: <the enclosing net> on a composite task: each call is its own sub-case"),
    (23, "Transient Trigger", "trigger: {signal: name}: a signal nobody waits for is lost"),
    (24, "Persistent Trigger", "trigger: {signal: name, persistent: true}: kept until a task consumes it"),
    (25, "Cancel Region", "cancels: [tasks and conditions, connected or not]"),
    (
        26,
        "Cancel Multiple Instance Activity",
        "cancels: [mi_task]: every live instance withdrawn, no successor",
    ),
    (
        27,
        "Complete Multiple Instance Activity",
        "completes: [mi_task], or case.force_complete(task): successor at once",
    ),
    (
        28,
        "Blocking Discriminator",
        "join: {partial: 1, reset: wait}: later arrivals held until every input arrived",
    ),
    (
        29,
        "Cancelling Discriminator",
        "join: {partial: 1, reset: cancel}: the other incoming branches are cancelled",
    ),
    (30, "Structured Partial Join", "join: {partial: N} (N of M) in a structured block"),
    (
        31,
        "Blocking Partial Join",
        "join: {partial: N, reset: wait}: arrivals after firing held until the reset",
    ),
    (
        32,
        "Cancelling Partial Join",
        "join: {partial: N, reset: cancel}: the remaining branches are cancelled",
    ),
    (
        33,
        "Generalised AND-Join",
        "join: and: one token consumed per input; extra tokens stay for later firings",
    ),
    (
        34,
        "Static Partial Join for Multiple Instances",
        "instances: {count: N, threshold: M, join: threshold}",
    ),
    (
        35,
        "Cancelling Partial Join for Multiple Instances",
        "instances: {count: N, threshold: M, join: threshold, cancel_rest: true}",
    ),
    (
        36,
        "Dynamic Partial Join for Multiple Instances",
        "instances: {creation: dynamic, join: threshold, threshold: <CEL: completed, instances, results>}",
    ),
    (37, "Local Synchronizing Merge", "join: or in an acyclic net (decided from the net's structure)"),
    (38, "General Synchronizing Merge", "join: or in any net, loops included (non-local OR-join analysis)"),
    (
        39,
        "Critical Section",
        "mutex: {name: [[a, b], [c, d]]}: one region per name active at a time in a case",
    ),
    (
        40,
        "Interleaved Routing",
        "mutex: {name: [a, b, c]} on and-split branches: each once, never two at a time",
    ),
    (41, "Thread Merge", "join: {threads: N}: N tokens on the incoming flows become one"),
    (42, "Thread Split", "split: {threads: N}: N tokens on each outgoing flow"),
    (43, "Explicit Termination", "termination: explicit (the default): the output condition ends the case"),
)
