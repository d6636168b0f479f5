"""Append-only row journal: every finished row is kept, so a crashed stage resumes where it was."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson

_FLUSH_BYTES = 1 << 20


class RowJournal:
    """One JSON line per finished row (``[index, row]``) after a header line naming what it is for.

    The header holds the stage fingerprint and input digest: a journal left by another version
    of the stage or another input is discarded, never mixed in. Lines are handed to the OS as
    soon as the event loop gets control back (and at least every megabyte), so a ``kill -9``
    loses at most rows that finished without the stage ever awaiting in between.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self._fd: int | None = None
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._flush_scheduled = False

    def load(self) -> dict[int, dict[str, Any]]:
        """Rows recorded by an earlier, interrupted run of the same stage on the same input.

        A torn last line (the process died mid-write) is ignored; so is a journal whose
        header does not match.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        lines = data.split(b"\n")
        try:
            header = orjson.loads(lines[0])
        except orjson.JSONDecodeError:
            return {}
        if header != self.header:
            return {}
        rows: dict[int, dict[str, Any]] = {}
        for line in lines[1:]:
            if not line:
                continue
            try:
                index, row = orjson.loads(line)
            except (orjson.JSONDecodeError, ValueError, TypeError):
                continue  # torn line from a crash mid-write
            if isinstance(index, int) and isinstance(row, dict):
                rows[index] = row
        return rows

    def open(self, keep: bool) -> None:
        """Open for appending; ``keep=False`` starts a fresh journal with the header line."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keep and self.path.exists():
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            # a torn last line must not glue itself to the next record
            if not self.path.read_bytes().endswith(b"\n"):
                _write_all(self._fd, b"\n")
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            _write_all(self._fd, orjson.dumps(self.header) + b"\n")

    def append(self, index: int, row: dict[str, Any]) -> None:
        """Record a finished row; raises TypeError if the row is not JSON-serializable."""
        line = orjson.dumps([index, row], option=orjson.OPT_APPEND_NEWLINE)
        self._buffer.append(line)
        self._buffered += len(line)
        if self._buffered >= _FLUSH_BYTES:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        """Hand buffered lines to the operating system."""
        self._flush_scheduled = False
        if self._buffer and self._fd is not None:
            _write_all(self._fd, b"".join(self._buffer))
            self._buffer.clear()
            self._buffered = 0

    def close(self) -> None:
        """Flush and close (the file stays, for a later resume)."""
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove(self) -> None:
        """Delete the journal once the stage file is safely written."""
        self.close()
        self.path.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is handed over (a single write may be partial)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
