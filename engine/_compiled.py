"""CompiledNet: a net as dense integer ids and flat arrays, built once per spec.

Theory of operation. Places are the input condition (id 0), the output condition (id 1), the
explicit conditions in the order written, then one implicit condition per task→task flow, named
``c{src_dst}`` as in YAWL. Tasks keep the order written. Every later structure is an index over
those ids: presets and cancellation sets as CSR arrays (numpy ``int32``) for the kernels, and the
same as Python tuples for the runner's own loops; each OR-join input's *backward region* (the
places and tasks from which it can be reached without passing through the join) as packed
``uint64`` bitsets. Nothing here changes after compilation, so one CompiledNet serves every case.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

from ._errors import Problem, SpecError
from ._hotpath import JOIN_AND, JOIN_OR, JOIN_PARTIAL, JOIN_THREADS, JOIN_XOR, KernelNet
from ._spec._model import FlowSpec, NetSpec, Spec, TaskSpec

__all__ = ("CompiledFlow", "CompiledNet", "CompiledSpec", "attach_kernels", "compile_spec", "precompiled_kernels")

KIND_ROUTING: Final = 0
KIND_AUTO: Final = 1
KIND_EXTERNAL: Final = 2
KIND_COMPOSITE: Final = 3
KIND_TIMER: Final = 4

SPLIT_AND: Final = 0
SPLIT_XOR: Final = 1
SPLIT_OR: Final = 2
SPLIT_THREADS: Final = 3

_JOIN_CODES: Final = {"and": JOIN_AND, "xor": JOIN_XOR, "or": JOIN_OR, "threads": JOIN_THREADS, "partial": JOIN_PARTIAL}
_SPLIT_CODES: Final = {"and": SPLIT_AND, "xor": SPLIT_XOR, "or": SPLIT_OR, "threads": SPLIT_THREADS}


class CompiledFlow:
    """One outgoing flow of a task, in evaluation order: target place, predicate, default."""

    __slots__ = ("default", "place", "to", "when")

    def __init__(self, *, place: int, to: str, when: str | None, default: bool) -> None:
        self.place = place
        self.to = to
        self.when = when
        self.default = default

    def __repr__(self) -> str:
        return f"CompiledFlow(place={self.place}, to={self.to!r}, when={self.when!r}, default={self.default})"


def _words(n: int) -> int:
    return max(1, (n + 63) // 64)


def _bits(members: Iterable[int], n: int) -> npt.NDArray[np.uint64]:
    row = np.zeros(_words(n), dtype=np.uint64)
    for m in members:
        row[m >> 6] |= np.uint64(1) << np.uint64(m & 63)
    return row


def _csr(rows: list[tuple[int, ...]]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    ptr = np.zeros(len(rows) + 1, dtype=np.int32)
    for i, row in enumerate(rows):
        ptr[i + 1] = ptr[i] + len(row)
    idx = np.fromiter((x for row in rows for x in row), dtype=np.int32, count=int(ptr[-1]))
    return ptr, idx


def _members(row: npt.NDArray[np.uint64]) -> tuple[int, ...]:
    """The ids set in one packed bitset row (the inverse of :func:`_bits`)."""
    # Little-endian words viewed as bytes, bits read least significant first: bit i of word w is
    # member 64*w + i. Arrays read from a .ywc file are '<u8' on every machine, so this holds there.
    bits = np.unpackbits(np.ascontiguousarray(row, dtype="<u8").view(np.uint8), bitorder="little")
    return tuple(np.flatnonzero(bits).tolist())


def _task_kind(task: TaskSpec) -> int:
    if task.net is not None:
        return KIND_COMPOSITE
    if task.run is not None:
        return KIND_AUTO
    if task.external:
        return KIND_EXTERNAL
    if task.timer is not None:
        return KIND_TIMER
    return KIND_ROUTING


def _eval_order(flows: tuple[FlowSpec, ...]) -> list[FlowSpec]:
    # Splits: flows with an order first, ascending; then the rest as written (ARCHITECTURE §3).
    ordered = sorted((f for f in flows if f.order is not None), key=lambda f: f.order or 0)
    return ordered + [f for f in flows if f.order is None]


class CompiledNet:
    """One net of a spec, compiled to dense ids.

    Attributes:
        name: the net's name.
        spec: the NetSpec it came from.
        place_names: place names by id (0 = input condition, 1 = output condition).
        task_names: task names by id, in the order written.
        tasks: the TaskSpec of each task id.
        kind: per task, one of the ``KIND_*`` codes.
        preset: per task, its input places in the order they were declared.
        flows: per task, its outgoing flows in evaluation order.
        split: per task, the ``SPLIT_*`` code; ``split_n`` its N for thread splits.
        join: per task, the ``JOIN_*`` code; ``join_n`` its N for threads and partial joins.
        consumers: per place, the tasks it feeds (ascending ids).
        mutex_of: per task, the (mutex name, region index) pairs it belongs to; ``mutex_regions``
            each mutex's regions as tuples of task ids.
        partial_branches: per partial-join task, each input's branch (places, tasks).
        producers: per place, the tasks that put tokens in it (ascending ids).
        cancel_places / cancel_tasks: per task, its cancellation set; ``cancel_case`` per task,
            whether it cancels its whole net.
        orjoin_regions: per OR-join task, ``(input place, region id)`` pairs into the kernel
            net's region rows.
        region_tasks_of: per region id, the tasks in it (for the exact OR-join analysis);
            ``region_places_of`` the places.
        kernel: the flat arrays the hot-path kernels read.

    Args:
        spec: the net.
        source: the spec's file, for messages.
        kernel: this net's kernel arrays as compiled before (read from a ``.ywc`` file): they are
            used as they are, not built again, once checked against the net (sizes, join codes,
            presets).

    Raises:
        SpecError: a flow names a missing element, a condition flows into a condition, or
            ``kernel`` does not fit the net (a stale or forged ``.ywc`` file).
    """

    def __init__(self, spec: NetSpec, source: str, *, kernel: KernelNet | None = None) -> None:
        self.name = spec.name
        self.spec = spec
        places: dict[str, int] = {spec.input: 0, spec.output: 1}
        for cond in spec.conditions:
            if cond.name not in places:
                places[cond.name] = len(places)
        task_ids = {t.name: i for i, t in enumerate(spec.tasks)}
        self.task_ids = task_ids
        self.tasks: tuple[TaskSpec, ...] = spec.tasks
        self.task_names: tuple[str, ...] = tuple(t.name for t in spec.tasks)
        n_tasks = len(spec.tasks)
        presets: list[list[int]] = [[] for _ in range(n_tasks)]
        flows: list[list[CompiledFlow]] = [[] for _ in range(n_tasks)]
        problems: list[Problem] = []

        def place_for_task_flow(src: str, flow: FlowSpec, where: str) -> int | None:
            if flow.to in task_ids:
                key = f"c{{{src}_{flow.to}}}"
                if key not in places:
                    places[key] = len(places)
                    presets[task_ids[flow.to]].append(places[key])
                return places[key]
            if flow.to in places:
                return places[flow.to]
            problems.append(Problem(source=source, path=where, message=f"no task or condition {flow.to!r}"))
            return None

        for cond in spec.conditions:
            pid = places[cond.name]
            for i, flow in enumerate(cond.flows):
                where = f"$.nets.{spec.name}.conditions.{cond.name}.flows[{i}]"
                if flow.to not in task_ids:
                    problems.append(
                        Problem(
                            source=source,
                            path=where,
                            message=f"a condition flows only into tasks, and {flow.to!r} is not a task",
                            hint="put a task between the two conditions",
                        )
                    )
                    continue
                if pid not in presets[task_ids[flow.to]]:
                    presets[task_ids[flow.to]].append(pid)
        for t, task in enumerate(spec.tasks):
            for i, flow in enumerate(_eval_order(task.flows)):
                where = f"$.nets.{spec.name}.tasks.{task.name}.flows[{i}]"
                target = place_for_task_flow(task.name, flow, where)
                if target is not None:
                    flows[t].append(CompiledFlow(place=target, to=flow.to, when=flow.when, default=flow.default))
        if problems:
            raise SpecError(problems)

        self.place_ids = places
        self.place_names: tuple[str, ...] = tuple(places)
        n_places = len(places)
        self.n_places = n_places
        self.n_tasks = n_tasks
        self.preset: tuple[tuple[int, ...], ...] = tuple(tuple(p) for p in presets)
        self.flows: tuple[tuple[CompiledFlow, ...], ...] = tuple(tuple(f) for f in flows)
        self.kind: tuple[int, ...] = tuple(_task_kind(t) for t in spec.tasks)
        self.join: tuple[int, ...] = tuple(_JOIN_CODES[t.join.kind] for t in spec.tasks)
        self.join_n: tuple[int, ...] = tuple(t.join.n or 0 for t in spec.tasks)
        self.split: tuple[int, ...] = tuple(_SPLIT_CODES[t.split.kind] for t in spec.tasks)
        self.split_n: tuple[int, ...] = tuple(t.split.n or 1 for t in spec.tasks)
        consumers: list[list[int]] = [[] for _ in range(n_places)]
        producers: list[list[int]] = [[] for _ in range(n_places)]
        for t in range(n_tasks):
            for p in self.preset[t]:
                consumers[p].append(t)
            for f in self.flows[t]:
                if t not in producers[f.place]:
                    producers[f.place].append(t)
        self.consumers: tuple[tuple[int, ...], ...] = tuple(tuple(sorted(c)) for c in consumers)
        self.producers: tuple[tuple[int, ...], ...] = tuple(tuple(sorted(p)) for p in producers)

        cancel_places: list[tuple[int, ...]] = []
        cancel_tasks: list[tuple[int, ...]] = []
        cancel_case: list[bool] = []
        for task in spec.tasks:
            cp: list[int] = []
            ct: list[int] = []
            whole = False
            for name in task.cancels:
                if name == spec.name:
                    whole = True
                elif name in task_ids:
                    ct.append(task_ids[name])
                elif name in places:
                    cp.append(places[name])
            cancel_places.append(tuple(sorted(set(cp))))
            cancel_tasks.append(tuple(sorted(set(ct))))
            cancel_case.append(whole)
        self.cancel_places: tuple[tuple[int, ...], ...] = tuple(cancel_places)
        self.cancel_tasks: tuple[tuple[int, ...], ...] = tuple(cancel_tasks)
        self.cancel_case: tuple[bool, ...] = tuple(cancel_case)
        self.milestone: tuple[tuple[int, ...], ...] = tuple(
            tuple(places[m] for m in t.milestone if m in places) for t in spec.tasks
        )

        # Mutexes (WCP-17, 39, 40): per task, the (mutex, region index) pairs it belongs to.
        mutex_of: list[list[tuple[str, int]]] = [[] for _ in range(n_tasks)]
        mutex_regions: dict[str, tuple[tuple[int, ...], ...]] = {}
        for mname, regions in spec.mutex.items():
            rows: list[tuple[int, ...]] = []
            for r, region in enumerate(regions):
                ids = tuple(task_ids[x] for x in region if x in task_ids)
                rows.append(ids)
                for u in ids:
                    mutex_of[u].append((mname, r))
            mutex_regions[mname] = tuple(rows)
        self.mutex_of: tuple[tuple[tuple[str, int], ...], ...] = tuple(tuple(m) for m in mutex_of)
        self.mutex_regions = mutex_regions

        # OR-join regions: for each input p of an OR-join t, the places and tasks from which p can
        # be reached without passing through t (Wynn et al.'s restriction of the reset net).
        regions_p: list[npt.NDArray[np.uint64]] = []
        regions_t: list[npt.NDArray[np.uint64]] = []
        region_tasks_of: list[tuple[int, ...]] = []
        region_places_of: list[tuple[int, ...]] = []
        orjoin_regions: dict[int, tuple[tuple[int, int], ...]] = {}
        if kernel is not None:
            _check_kernel(kernel, self, source)
        for t in range(n_tasks):
            if self.join[t] != JOIN_OR:
                continue
            pairs: list[tuple[int, int]] = []
            for p in self.preset[t]:
                if kernel is not None:  # precompiled: read the region back from its bitsets
                    r = len(region_tasks_of)
                    pairs.append((p, r))
                    region_tasks_of.append(_members(kernel.region_tasks[r]))
                    region_places_of.append(_members(kernel.region_places[r]))
                    continue
                rp, rt = self._backward_region(p, t)
                pairs.append((p, len(regions_p)))
                regions_p.append(_bits(rp, n_places))
                regions_t.append(_bits(rt, n_tasks))
                region_tasks_of.append(tuple(sorted(rt)))
                region_places_of.append(tuple(sorted(rp)))
            orjoin_regions[t] = tuple(pairs)
        self.orjoin_regions = orjoin_regions
        # Cancelling partial joins (WCP-29, 32): each input's branch is its backward region.
        self.partial_branches: dict[int, tuple[tuple[frozenset[int], frozenset[int]], ...]] = {
            t: tuple((frozenset(rp), frozenset(rt)) for rp, rt in (self._backward_region(p, t) for p in self.preset[t]))
            for t in range(n_tasks)
            if self.join[t] == JOIN_PARTIAL
        }
        self.region_tasks_of: tuple[tuple[int, ...], ...] = tuple(region_tasks_of)
        self.region_places_of: tuple[tuple[int, ...], ...] = tuple(region_places_of)
        if kernel is not None:
            self.kernel = kernel
            return
        pre_ptr, pre_idx = _csr(list(self.preset))
        can_ptr, can_idx = _csr(
            [tuple(sorted(set(cancel_places[t]) | {p for u in cancel_tasks[t] for p in self.preset[u]}))
             for t in range(n_tasks)]
        )
        self.kernel = KernelNet(
            n_places=n_places,
            n_tasks=n_tasks,
            preset_ptr=pre_ptr,
            preset_idx=pre_idx,
            join_code=np.array(self.join, dtype=np.int32),
            join_n=np.array(self.join_n, dtype=np.int32),
            cancel_ptr=can_ptr,
            cancel_idx=can_idx,
            region_places=(np.vstack(regions_p) if regions_p else np.zeros((0, _words(n_places)), np.uint64)),
            region_tasks=(np.vstack(regions_t) if regions_t else np.zeros((0, _words(n_tasks)), np.uint64)),
        )

    def _backward_region(self, place: int, join_task: int) -> tuple[set[int], set[int]]:
        places = {place}
        tasks: set[int] = set()
        stack = [place]
        while stack:
            p = stack.pop()
            for u in self.producers[p]:
                if u == join_task or u in tasks:
                    continue
                tasks.add(u)
                for q in self.preset[u]:
                    if q not in places:
                        places.add(q)
                        stack.append(q)
        return places, tasks

    def __repr__(self) -> str:
        return f"<CompiledNet {self.name!r}: {self.n_places} places, {self.n_tasks} tasks>"


class CompiledSpec:
    """Every net of a spec, compiled; ``root`` is the net a case starts in."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.id = spec.id
        kernels = precompiled_kernels(spec) or {}
        self.nets: dict[str, CompiledNet] = {
            n.name: CompiledNet(n, spec.source, kernel=kernels.get(n.name)) for n in spec.nets
        }
        self.root = spec.root

    def net(self, name: str) -> CompiledNet:
        """The compiled net called ``name``."""
        return self.nets[name]

    def __repr__(self) -> str:
        return f"<CompiledSpec {self.id!r}: nets {list(self.nets)}>"


def compile_spec(spec: Spec) -> CompiledSpec:
    """Compile every net of ``spec``.

    The kernel arrays of a spec read from a ``.ywc`` file (see :func:`attach_kernels`) are used
    as they are: only the runner's Python tables are built.

    Raises:
        SpecError: a flow names a missing element, or a condition flows into a condition; or the
            precompiled arrays of a ``.ywc`` file do not fit its spec.
    """
    return CompiledSpec(spec)


# -- precompiled kernel arrays (.ywc) ----------------------------------------------------------
#
# A Spec read from a .ywc file comes with its nets' KernelNet arrays, zero-copy views on the
# file's mmap. Spec is a frozen msgspec.Struct without weakref support and with dict fields (so
# unhashable): neither a WeakKeyDictionary nor a value-keyed cache can hold them. This registry is
# keyed by id() and keeps the Spec itself, so an id is never reused while its entry lives; entries
# whose Spec nobody else holds any longer are dropped on the next registration, and at most
# _PRECOMPILED_MAX live. It is only a cache: a Spec without an entry is compiled from scratch,
# to the same arrays.

_PRECOMPILED: dict[int, tuple[Spec, dict[str, KernelNet]]] = {}
_PRECOMPILED_MAX: Final = 64
_HELD_BY_REGISTRY_ONLY: Final = 3  # the entry's tuple, the loop's name, getrefcount's argument


def attach_kernels(spec: Spec, kernels: Mapping[str, KernelNet]) -> None:
    """Register precompiled kernel arrays for ``spec``, for :func:`compile_spec` to use.

    Args:
        spec: the spec, as loaded; the arrays are found again by this very object.
        kernels: per net name, the net's arrays, exactly as :class:`CompiledNet` builds them.
    """
    if hasattr(sys, "getrefcount"):  # CPython: drop the entries of specs nobody holds any more
        for key, (held, _) in list(_PRECOMPILED.items()):
            if sys.getrefcount(held) <= _HELD_BY_REGISTRY_ONLY:
                del _PRECOMPILED[key]
    while len(_PRECOMPILED) >= _PRECOMPILED_MAX:
        del _PRECOMPILED[next(iter(_PRECOMPILED))]  # the oldest
    _PRECOMPILED[id(spec)] = (spec, dict(kernels))


def precompiled_kernels(spec: Spec) -> Mapping[str, KernelNet] | None:
    """The kernel arrays registered for ``spec`` by :func:`attach_kernels`, or ``None``."""
    hit = _PRECOMPILED.get(id(spec))
    return hit[1] if hit is not None and hit[0] is spec else None


def _check_kernel(kernel: KernelNet, net: CompiledNet, source: str) -> None:
    """Refuse precompiled arrays that do not fit the net compiled from the spec.

    Sizes, join codes and presets are compared (cheap, and what a stale file from an older
    compiler would get wrong first); the cancellation sets and OR-join regions, whose building
    is the work being saved, are taken as they are.
    """
    regions = sum(len(net.preset[t]) for t in range(net.n_tasks) if net.join[t] == JOIN_OR)
    found = (kernel.n_places, kernel.n_tasks, len(kernel.region_places), len(kernel.region_tasks))
    wanted = (net.n_places, net.n_tasks, regions, regions)
    message = ""
    if found != wanted:
        message = (
            f"{found[0]} places, {found[1]} tasks and {found[2]} OR-join regions in the file, "
            f"{wanted[0]}, {wanted[1]} and {wanted[2]} in its spec"
        )
    elif not (np.array_equal(kernel.join_code, net.join) and np.array_equal(kernel.join_n, net.join_n)):
        message = "the join codes differ from the spec's"
    elif not (
        np.array_equal(np.diff(kernel.preset_ptr), [len(p) for p in net.preset])
        and np.array_equal(kernel.preset_idx, [p for row in net.preset for p in row])
    ):
        message = "the presets differ from the spec's"
    if message:
        raise SpecError(
            [
                Problem(
                    source=source,
                    path=f"$.nets.{net.name}",
                    message=f"the compiled arrays do not fit the net: {message}",
                    hint="recompile it: yawlflow compile SPEC -o OUT.ywc",
                )
            ]
        )
