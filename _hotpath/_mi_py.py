"""Multiple-instance status kernel, pure-Python twin: what an MI group's counters say.

Theory of operation (the patterns themselves: ``yawlflow._mi``). A multiple-instance task's
parameters that do not change while it runs (its join, an int or CEL threshold, ``cancel_rest``,
the min and max number of instances, static or dynamic creation) are read once into an
:class:`MIPolicy`; its methods take a running group's counters (instances created, ended,
completed, live; whether the task as a whole completed) and answer, as a status code, the
questions the runner asks: is the join satisfied, and how (``join_status``); may another
instance be added (``add_status``); is a number of instances allowed (``count_ok``). A CEL
threshold cannot be decided here: ``join_status`` answers ``MI_ASK`` and the caller evaluates the
condition, then asks again with its answer (``cel``). The compiled twin (``_mi_cy.pyx``) has the
same API and the same results; ``yawlflow._hotpath`` picks one.
"""

from __future__ import annotations

__all__ = (
    "ADD_AT_MAX",
    "ADD_OK",
    "ADD_STATIC",
    "CEL_UNKNOWN",
    "MI_ALL_ENDED",
    "MI_ASK",
    "MI_IDLE",
    "MI_JOIN_ALL",
    "MI_JOIN_NONE",
    "MI_JOIN_THRESHOLD",
    "MI_RUNNING",
    "MI_THRESHOLD",
    "MI_THRESHOLD_CANCEL",
    "MIPolicy",
)

# the task's join (InstancesSpec.join)
MI_JOIN_ALL = 0
MI_JOIN_THRESHOLD = 1
MI_JOIN_NONE = 2

# MIPolicy.join_status
MI_RUNNING = 0  # not yet: instances are still live and the threshold does not hold
MI_THRESHOLD = 1  # the threshold holds: complete the task; the live instances run on
MI_THRESHOLD_CANCEL = 2  # the threshold holds and cancel_rest: withdraw the live instances, complete
MI_ALL_ENDED = 3  # every instance created has ended: complete the task
MI_IDLE = 4  # nothing to decide: the task as a whole has completed, or its join is none
MI_ASK = 5  # the threshold is a CEL condition: evaluate it, then ask again with cel=its answer

CEL_UNKNOWN = -1  # join_status(cel=...): the CEL threshold has not been evaluated

# MIPolicy.add_status
ADD_OK = 0
ADD_STATIC = 1  # the task creates its instances statically
ADD_AT_MAX = 2  # the group already has its maximum of instances

_JOINS = (MI_JOIN_ALL, MI_JOIN_THRESHOLD, MI_JOIN_NONE)
_INT64 = (-(2**63), 2**63 - 1)


def _int64(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"MIPolicy: {name} must be an int, not {type(value).__name__}")
    if not _INT64[0] <= value <= _INT64[1]:
        raise OverflowError(f"MIPolicy: {name} {value} does not fit in 64 bits")
    return value


class MIPolicy:
    """The fixed parameters of one multiple-instance task.

    Args:
        join: ``MI_JOIN_ALL``, ``MI_JOIN_THRESHOLD`` or ``MI_JOIN_NONE``.
        threshold: an int threshold (completed instances), or None.
        threshold_cel: whether the threshold is a CEL condition (then ``threshold`` is None).
        min: the least number of instances.
        max: the most, or None (unbounded).
        dynamic: whether instances may be added while the task runs.
        cancel_rest: whether the live instances are withdrawn when the threshold holds.

    Raises:
        ValueError: an unknown join code, or both an int and a CEL threshold.
        TypeError: a number that is not an int.
        OverflowError: a number past 64 bits.
    """

    __slots__ = ("cancel_rest", "dynamic", "join", "max", "min", "threshold", "threshold_cel")

    def __init__(
        self,
        *,
        join: int,
        threshold: int | None = None,
        threshold_cel: bool = False,
        min: int = 0,
        max: int | None = None,
        dynamic: bool = False,
        cancel_rest: bool = False,
    ) -> None:
        join = _int64(join, "join")
        if join not in _JOINS:
            raise ValueError(f"MIPolicy: unknown join code {join}")
        if threshold is not None:
            _int64(threshold, "threshold")
            if threshold_cel:
                raise ValueError("MIPolicy: a threshold is an int or a CEL condition, not both")
        self.join: int = join
        self.threshold: int | None = threshold
        self.threshold_cel: bool = bool(threshold_cel)
        self.min: int = _int64(min, "min")
        self.max: int | None = None if max is None else _int64(max, "max")
        self.dynamic: bool = bool(dynamic)
        self.cancel_rest: bool = bool(cancel_rest)

    def join_status(
        self, created: int, finished: int, completed: int, live: int, done: bool, cel: int = CEL_UNKNOWN
    ) -> int:
        """What the join says of a group: one of the ``MI_*`` status codes.

        Args:
            created: instances created so far.
            finished: instances that ended (completed, failed, withdrawn) before the task completed.
            completed: instances that completed before the task completed.
            live: instances still live.
            done: whether the task as a whole has completed.
            cel: the CEL threshold's answer (1 holds, 0 not), or ``CEL_UNKNOWN``.

        In order: done or join none: ``MI_IDLE``; a threshold (int: ``completed >= threshold``;
        CEL: ``cel``, or ``MI_ASK`` while unknown) that holds: ``MI_THRESHOLD`` (or
        ``MI_THRESHOLD_CANCEL``); every instance ended and none live: ``MI_ALL_ENDED``; else
        ``MI_RUNNING``.
        """
        if done or self.join == MI_JOIN_NONE:
            return MI_IDLE
        if self.threshold is not None:
            met = completed >= self.threshold
        elif self.threshold_cel:
            if cel < 0:
                return MI_ASK
            met = cel > 0
        else:
            met = False
        if met:
            return MI_THRESHOLD_CANCEL if self.cancel_rest else MI_THRESHOLD
        if finished >= created and live == 0:
            return MI_ALL_ENDED
        return MI_RUNNING

    def add_status(self, created: int) -> int:
        """Whether an instance may be added to a running group of ``created`` instances: ``ADD_OK``,
        ``ADD_STATIC`` (the task creates its instances statically) or ``ADD_AT_MAX``."""
        if not self.dynamic:
            return ADD_STATIC
        if self.max is not None and created >= self.max:
            return ADD_AT_MAX
        return ADD_OK

    def count_ok(self, n: int) -> bool:
        """Whether ``n`` instances lie within ``[min, max]``."""
        return not (n < self.min or (self.max is not None and n > self.max))

    def __repr__(self) -> str:
        return (f"MIPolicy(join={self.join}, threshold={self.threshold}, threshold_cel={self.threshold_cel}, "
                f"min={self.min}, max={self.max}, dynamic={self.dynamic}, cancel_rest={self.cancel_rest})")
