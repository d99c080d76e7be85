"""One writer: a second store on the same file fails fast and names the holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import yawlflow as yf
from yawlflow._sqlite import SqliteStore

Opener = Callable[..., SqliteStore]


def test_a_second_store_in_the_same_process_is_refused(open_store: Opener, db_path: Path) -> None:
    first = open_store()
    with pytest.raises(yf.StoreError) as info:
        SqliteStore(db_path)
    message = str(info.value)
    assert str(db_path) in message
    assert f"pid {os.getpid()}" in message
    assert "in use by another engine" in message and "stop that one first" in message
    first.close()
    open_store().close()  # released on close


def test_the_lock_holds_through_another_name_for_the_file(open_store: Opener, db_path: Path,
                                                          tmp_path: Path) -> None:
    open_store()
    alias = tmp_path / "alias.db"
    alias.symlink_to(db_path)
    with pytest.raises(yf.StoreError, match="in use by another engine"):
        SqliteStore(alias)


def test_the_inline_writer_takes_the_lock_too(open_store: Opener, db_path: Path) -> None:
    open_store(writer="inline")
    with pytest.raises(yf.StoreError, match="in use"):
        SqliteStore(db_path, writer="inline")


def test_readers_need_no_lock(open_store: Opener, db_path: Path) -> None:
    open_store()
    with SqliteStore(db_path, readonly=True) as reader:
        assert reader.records() == []


def test_a_failed_open_releases_the_lock(db_path: Path) -> None:
    db_path.write_bytes(b"not a database at all, sorry" * 10)
    for _ in range(2):  # the second attempt meets the same error, not a lock
        with pytest.raises(yf.StoreError, match="not an SQLite database"):
            SqliteStore(db_path)


HOLDER = textwrap.dedent("""
    import sys
    from yawlflow._sqlite import SqliteStore
    store = SqliteStore(sys.argv[1])
    print("open", flush=True)
    sys.stdin.readline()
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_another_process_holding_the_store_is_named_and_its_death_frees_it(db_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline() == "open\n"
            with pytest.raises(yf.StoreError, match=f"in use by another engine \\(pid {child.pid} on "):
                SqliteStore(db_path)
            child.stdin.write("die\n")
            child.stdin.flush()
            assert child.wait(timeout=60) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
    with SqliteStore(db_path) as store:  # the kernel dropped the dead holder's lock
        assert store.records() == []
