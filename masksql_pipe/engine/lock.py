"""One writer per data folder: a run holds an OS file lock; a second writer stops at once.

The lock is ``DIR/.masksql_pipe/write.lock`` (``filelock``: released by the OS when the
holder dies, so a kill -9 never leaves a stale lock). The holder writes its pid into the
sidecar ``write.lock.pid`` so the refused writer can name it. Readers take no lock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from masksql_pipe.engine.files import bookkeeping_dir
from masksql_pipe.errors import PipeError

LOCK_NAME = "write.lock"


class FolderBusy(PipeError):
    """Another process is writing in the same data folder (exit 2)."""


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data folder's writer lock for the block; FolderBusy if another holds it."""
    book = bookkeeping_dir(data_dir)
    path = book / LOCK_NAME
    sidecar = book / f"{LOCK_NAME}.pid"
    lock = FileLock(path, timeout=0, is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            holder = sidecar.read_text().strip() or "unknown"
        except OSError:
            holder = "unknown"
        raise FolderBusy(
            f"{data_dir}: another run (pid {holder}) is writing in this folder; "
            "wait for it to finish (status, show, summarize and report work meanwhile)"
        ) from None
    try:
        sidecar.write_text(f"{os.getpid()}\n")
        yield
    finally:
        sidecar.unlink(missing_ok=True)
        lock.release()


def folder_in_use(data_dir: Path) -> bool:
    """Whether a live process holds the folder's writer lock (a killed one holds none)."""
    path = bookkeeping_dir(data_dir) / LOCK_NAME
    if not path.exists():
        return False
    lock = FileLock(path, timeout=0, is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False
