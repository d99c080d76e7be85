"""What the strategy tests share: jobs of ``strategy_handlers``, strategies of each kind, and the
:class:`Gate` that blocking handlers wait at. Importable by name (``conftest.py`` puts this
folder on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
from typing import Any

import anyio
import anyio.abc
import pytest
import strategy_handlers as h
from anyio.streams.buffered import BufferedByteReceiveStream

from yawlflow._strategies import InlineStrategy, ProcessStrategy, ThreadStrategy
from yawlflow._strategy import Job

KINDS = ["inline", "thread", "process"]
HAVE_RAY = importlib.util.find_spec("ray") is not None
# anyio's backends, as tests/conftest.py's ``anyio_backend`` has them
BACKENDS = [("asyncio", ("asyncio", {})), ("asyncio+uvloop", ("asyncio", {"use_uvloop": True})), ("trio", ("trio", {}))]
# (anyio_backend, kind) for the shared behaviour suite: every kind on every backend, and ``ray``
# (tasks on the session's cluster, conftest.ray_cluster) on asyncio only: its forced cancels
# start a new Ray worker (~2 s each), slow alike on all three backends (~12 s a backend)
EVERY_KIND: list[Any] = [pytest.param(backend, kind, id=f"{name}-{kind}") for name, backend in BACKENDS
                         for kind in KINDS]
EVERY_KIND.append(pytest.param(("asyncio", {}), "ray", id="asyncio-ray", marks=pytest.mark.skipif(
    not HAVE_RAY, reason="Ray is not installed here (pip install 'yawlflow[ray]'); .ci/run installs it")))
# inline runs async handlers (a sync one only if quick): it gets the async twin where there is one
ASYNC_TWINS = {"add": "add_async", "fail": "fail_async", "gate": "gate_async", "thread_name": "thread_name_async",
               "gate_then_fail": "gate_then_fail_async"}
_ids = itertools.count(1)


def make_job(kind: str, name: str, *args: Any) -> Job:
    """A job of ``strategy_handlers.<name>`` (its async twin under ``inline``)."""
    if kind == "inline":
        name = ASYNC_TWINS.get(name, name)
    return Job(id=next(_ids), handler=f"strategy_handlers:{name}", fn=getattr(h, name), args=args)


def make_strategy(kind: str, workers: int = 1, seed: int = 0) -> Any:
    if kind == "inline":
        return InlineStrategy()
    if kind == "thread":
        return ThreadStrategy(workers=workers, seed=seed)
    if kind == "ray":  # tasks on the session's Ray, cancelled by force (a blocked gate needs it)
        from yawlflow._ray import RayStrategy

        return RayStrategy()
    return ProcessStrategy(workers=workers, seed=seed, preload=["strategy_handlers"])


class Arrival:
    """One handler that reached the gate."""

    def __init__(self, stream: anyio.abc.SocketStream, pid: int, tag: str) -> None:
        self.stream = stream
        self.pid = pid
        self.tag = tag

    async def release(self) -> None:
        """Let the handler return ``"released"``."""
        await self.stream.send(b"x")

    async def stopped(self) -> bool:
        """Whether the handler's end closed (its task was cancelled, or its process killed)."""
        try:
            with anyio.fail_after(10):
                data = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return True
        raise AssertionError(f"the handler sent {data!r} instead of going away")


class Gate:
    """A Unix socket that gate handlers connect to and block on until released."""

    def __init__(self, address: str, tg: anyio.abc.TaskGroup, listener: anyio.abc.SocketListener) -> None:
        self.address = address
        self.arrivals: list[Arrival] = []
        self._streams: list[anyio.abc.SocketStream] = []
        self._tg = tg
        self._listener = listener
        self._send, self._receive = anyio.create_memory_object_stream[Arrival](100)

    async def serve(self) -> None:
        async def handle(stream: anyio.abc.SocketStream) -> None:
            # never raise: this task group encloses the test (a handler cancelled between its
            # connect and its first line just goes away)
            self._streams.append(stream)
            try:
                line = await BufferedByteReceiveStream(stream).receive_until(b"\n", 32)
            except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await stream.aclose()
                return
            pid, _, tag = line.decode().partition(" ")
            arrival = Arrival(stream, int(pid), tag)
            self.arrivals.append(arrival)
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                await self._send.send(arrival)

        with contextlib.suppress(anyio.ClosedResourceError):  # closed after the test
            await self._listener.serve(handle, task_group=self._tg)

    async def arrive(self) -> Arrival:
        """The next handler that reaches the gate (waits for it)."""
        with anyio.fail_after(30):
            return await self._receive.receive()

    async def close(self) -> None:
        for stream in self._streams:
            await stream.aclose()
        await self._listener.aclose()
        self._send.close()
        self._receive.close()
