"""Handlers the strategy tests run: module-level functions, so that a worker process can import
them by name (``strategy_handlers:add``). ``conftest.py`` puts this folder on ``sys.path``, which
``spawn`` hands on to the children.

The gate handlers block on a socket the test holds (:class:`Gate` in ``conftest.py``): they
connect (the test sees that they started), then wait for one byte (the test releases them); a
closed gate releases them too, so a test never leaves a handler blocked behind it.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from typing import Any

import anyio


class HandlerError(Exception):
    """An exception with an attribute, to check what crosses a process boundary."""

    def __init__(self, message: str, *, code: int = 0) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.args[0], self.code))


def _rebuild(message: str, code: int) -> HandlerError:
    return HandlerError(message, code=code)


class Unpicklable(Exception):
    """Its attribute (a lock) cannot be pickled."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def add(a: int, b: int) -> int:
    return a + b


async def add_async(a: int, b: int) -> int:
    await anyio.lowlevel.checkpoint()
    return a + b


def fail(message: str) -> None:
    raise HandlerError(message, code=42)


async def fail_async(message: str) -> None:
    await anyio.lowlevel.checkpoint()
    raise HandlerError(message, code=42)


def fail_value(message: str) -> None:
    raise ValueError(message)


def fail_unpicklable(message: str) -> None:
    raise Unpicklable(message)


def gate(address: str, tag: str = "") -> str:
    """Block until the test releases the gate at ``address`` (a Unix socket path)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(address)
        s.sendall(f"{os.getpid()} {tag}\n".encode())
        return "released" if s.recv(1) else "gate closed"


async def gate_async(address: str, tag: str = "") -> str:
    async with await anyio.connect_unix(address) as s:
        await s.send(f"{os.getpid()} {tag}\n".encode())
        try:
            await s.receive(1)
        except anyio.EndOfStream:
            return "gate closed"
        return "released"


def gate_then_fail(address: str, message: str) -> None:
    """Wait at the gate (tagged ``fail``), then raise."""
    gate(address, "fail")
    raise HandlerError(message, code=42)


async def gate_then_fail_async(address: str, message: str) -> None:
    await gate_async(address, "fail")
    raise HandlerError(message, code=42)


def pid() -> int:
    return os.getpid()


def thread_name() -> str:
    return threading.current_thread().name


def crash(code: int) -> None:
    os._exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def returns_object() -> object:
    return object()


def burn(n: int) -> int:
    """CPU work: a sum of ``n`` squares in pure Python."""
    total = 0
    for i in range(n):
        total += i * i
    return total


async def sleep_forever_async() -> None:
    await anyio.sleep_forever()


async def thread_name_async() -> str:
    return threading.current_thread().name


def echo(*args: Any) -> list[Any]:
    return list(args)
