"""The ``inline``, ``thread`` and ``process`` execution strategies (:class:`~yawlflow._strategy.Strategy`).

Import them from here; each lives in a module of its own:

* :mod:`yawlflow._jobs`: what they share: the errors a job can end with, waking the event loop
  from a worker thread (:func:`loop_waker`), a submission's outcome, and :class:`Deferred`;
* :mod:`yawlflow._inline`: :class:`InlineStrategy`;
* :mod:`yawlflow._pool`: the work-stealing base of ``thread`` and ``process``, and
  :class:`ThreadStrategy`;
* :mod:`yawlflow._process`: :class:`ProcessStrategy` and its worker processes.

Theory of operation
-------------------
``inline`` awaits an async handler in the caller's task (the case's task group); a sync handler
runs there only if it is *quick* (named in ``quick=`` or :meth:`InlineStrategy.mark_quick`),
since a blocking call there would stall every case on the loop.

``thread`` and ``process`` schedule on a :class:`~yawlflow._steal.WorkStealingPool`. The
awaiting task never blocks its loop: it waits on an ``anyio.Event`` that the worker thread sets
through the loop's own thread-safe wake-up (``loop.call_soon_threadsafe`` on asyncio and uvloop,
the trio token's ``run_sync_soon`` on trio), one wake-up per batch (a batch wakes its task when
its last job finished, or at its first error). No polling, and no ``anyio.from_thread.run``
(which would hold the worker until the loop ran the call).

``thread`` runs a sync handler on a worker thread; an *async* handler submitted to it runs in
the caller's loop (as ``inline``: a coroutine needs a loop, and the caller's is there), counted
in the same metrics. ``process`` keeps the pool in the parent and runs each job in a child
process that one worker thread owns; what crosses the pipe, what a crash does and how children
start: :mod:`yawlflow._process`.

Cancellation
------------
Cancelling the awaiting task, ``anyio.fail_after`` around it, or :meth:`cancel` with the job's
id: a job not started never starts; a running ``inline`` job is cancelled where it awaits; a
running ``process`` job's child is killed and replaced; a running ``thread`` job is
*abandoned*: Python cannot stop a thread, so the handler runs on until it returns and its result
is dropped (the worker is busy until then). :meth:`cancel` makes the awaiting task raise
:class:`JobCancelledError`; a cancelled task raises its own cancellation.
"""

from ._inline import InlineStrategy as InlineStrategy
from ._jobs import Deferred as Deferred
from ._jobs import JobCancelledError as JobCancelledError
from ._jobs import RemoteHandlerError as RemoteHandlerError
from ._jobs import RemoteTraceback as RemoteTraceback
from ._jobs import WorkerCrashedError as WorkerCrashedError
from ._jobs import _Batch as _Batch
from ._jobs import loop_waker as loop_waker
from ._pool import ThreadStrategy as ThreadStrategy
from ._process import ProcessStrategy as ProcessStrategy

__all__ = (
    "Deferred",
    "InlineStrategy",
    "JobCancelledError",
    "ProcessStrategy",
    "RemoteHandlerError",
    "RemoteTraceback",
    "ThreadStrategy",
    "WorkerCrashedError",
    "loop_waker",
)
