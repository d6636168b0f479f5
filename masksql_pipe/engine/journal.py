"""Append-only row journal: every finished row is kept, so a crashed stage resumes where it was."""

from __future__ import annotations

import asyncio
import hashlib
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson


class RowJournal:
    """Finished rows, appended as lines ``<tag> <crc32> [[index, row], ...]`` after a header line.

    The header holds the stage fingerprint and input digest; every line repeats them as a short
    ``tag`` and carries the crc32 of its JSON, so a line written by another version of the
    stage, for another input, or damaged on disk is never used (the row is processed again).
    Rows are serialized and handed to the OS as soon as the event loop gets control back (a row
    that awaited a model is written on its own), and at least every ``BATCH_ROWS`` rows when rows
    finish without awaiting, so a ``kill -9`` loses at most rows that finished back to back
    without the stage ever awaiting.
    """

    BATCH_ROWS = 1000

    def __init__(
        self,
        path: Path,
        header: dict[str, Any],
        on_unserializable: Callable[[int, dict[str, Any], TypeError], dict[str, Any] | None]
        | None = None,
    ) -> None:
        self.path = path
        self.header = header
        self.on_unserializable = on_unserializable
        self._fd: int | None = None
        self.tag = hashlib.blake2b(orjson.dumps(header), digest_size=8).hexdigest().encode()
        self.rejected = 0
        """Lines of the last ``load`` that were damaged or belonged to another run."""
        self._pending: list[list[Any]] = []
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
        self.rejected = 0
        try:
            header = orjson.loads(lines[0])
        except orjson.JSONDecodeError:
            self.rejected = len([line for line in lines if line])  # a damaged header line
            return {}
        if header != self.header:
            return {}  # another version of the stage or another input: a normal restart
        rows: dict[int, dict[str, Any]] = {}
        prefix = len(self.tag) + 10  # "<tag> <crc8> "
        for line in lines[1:]:
            if not line:
                continue
            payload = line[prefix:]
            if line[: len(self.tag)] != self.tag or line[
                prefix - 10 : prefix
            ] != b" %08x " % zlib.crc32(payload):
                self.rejected += 1  # torn by a crash mid-write, damaged, or another run's
                continue
            try:
                batch = orjson.loads(payload)
            except orjson.JSONDecodeError:
                self.rejected += 1
                continue
            for item in batch if isinstance(batch, list) else ():
                if (
                    isinstance(item, list)
                    and len(item) == 2
                    and isinstance(item[0], int)
                    and isinstance(item[1], dict)
                ):
                    rows[item[0]] = item[1]
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
        """Record a finished row (serialized at the next flush)."""
        self._pending.append([index, row])
        if len(self._pending) >= self.BATCH_ROWS:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        """Serialize pending rows as one line and hand it to the operating system."""
        self._flush_scheduled = False
        if not self._pending or self._fd is None:
            return
        pending, self._pending = self._pending, []
        try:
            payload = orjson.dumps(pending)
        except TypeError:
            payload = orjson.dumps(self._serializable(pending))
        # writev: the line goes out without copying the payload (90 MB on a large stage)
        parts = [b"%s %08x " % (self.tag, zlib.crc32(payload)), payload, b"\n"]
        written = os.writev(self._fd, parts)
        total = len(parts[0]) + len(payload) + 1
        if written < total:  # a partial write: hand over the rest
            _write_all(self._fd, b"".join(parts)[written:])

    def _serializable(self, pending: list[list[Any]]) -> list[list[Any]]:
        """Slow path: replace rows orjson cannot serialize by what ``on_unserializable`` says.

        A row it answers None for is left out of the journal (it will be processed again).
        """
        kept = []
        for item in pending:
            try:
                orjson.dumps(item[1])
            except TypeError as exc:
                if self.on_unserializable is None:
                    raise
                replacement = self.on_unserializable(item[0], item[1], exc)
                if replacement is None:
                    continue
                item[1] = replacement
            kept.append(item)
        return kept

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
