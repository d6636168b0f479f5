"""The stage file being written row by row, in input order: its written prefix is the journal.

Rows go to ``journal/<key>.partial`` in the file-contract format as they finish in order (a row
that finishes early waits in memory for the rows before it, up to ``window`` rows). Each batch
of rows handed to the OS gets one line in ``<key>.index``: first row, row count, end offset and
crc32 of its bytes, so a restart reuses exactly the batches that are whole and undamaged and
truncates the rest. ``<key>.head.json`` names the stage fingerprint and input digest the rows
belong to. At the end the tail is appended, the file fsynced and renamed into place: the rows
are written once, not a second time into a journal.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from masksql_pipe.engine.files import JSON_OPTIONS, _fsync_dir, file_mode, read_json, write_json
from masksql_pipe.engine.journal import RowJournal

Row = dict[str, Any]


class PartialOutput:
    """In-order writer of one stage file; see the module docstring."""

    BATCH_ROWS = 1000

    def __init__(
        self,
        folder: Path,
        key: str,
        header: dict[str, Any],
        observe: Callable[[list[Row]], None],
        repair: Callable[[int, Row, TypeError], Row],
        window: int = 1024,
    ) -> None:
        self.data_path = folder / f"{key}.partial"
        self.index_path = folder / f"{key}.index"
        self.head_path = folder / f"{key}.head.json"
        self.spill_path = folder / f"{key}.spill.jsonl"
        self.header = header
        self.observe, self.repair, self.window = observe, repair, window
        self.next = 0
        """Index of the next row to write: every row before it is written."""
        self.waiting: dict[int, Row] = {}
        self.rejected = 0
        """Index lines of the last ``reuse`` that were torn, damaged or did not follow on."""
        self._batch: list[Row] = []
        self._scheduled = False
        self._room: asyncio.Event | None = None
        self._thread: _WriterThread | None = None

    # -- restart --------------------------------------------------------------------------------

    def reuse(self, input_digest: str | None) -> int:
        """Keep the whole, undamaged batches an interrupted run wrote for this stage and this
        input (``None``: start afresh); returns the rows kept."""
        head = read_json(self.head_path)
        self.rejected = 0
        if input_digest is None or head != {**self.header, "input": input_digest}:
            self._start(0, 0, hashlib.sha256(), 0, fresh=True)
            return 0
        lines = _read(self.index_path).split(b"\n")
        count = end = kept = 0
        sha = hashlib.sha256()
        with open(self.data_path, "rb") as handle:
            for number, line in enumerate(lines):
                data = _batch(handle, _index_entry(line), count, end)
                if data is None:
                    self.rejected = len([rest for rest in lines[number:] if rest])
                    break
                self.observe(orjson.loads(b"[" + data[2:] + b"]"))
                sha.update(data)
                count, end, kept = (
                    count + _index_entry(line)[1],
                    end + len(data),
                    kept + len(line) + 1,
                )
        self._start(count, end, sha, kept, fresh=False)
        return count

    def spilled(self, start: int) -> dict[int, Row]:
        """Rows an interrupted run finished out of order (saved on Ctrl-C), from ``start``."""
        journal = RowJournal(self.spill_path, self._spill_header())
        return {i: row for i, row in journal.load().items() if i >= start}

    def _start(self, count: int, end: int, sha: Any, index_bytes: int, fresh: bool) -> None:
        """Open the files at the reused prefix (truncating what follows) and start writing."""
        self.data_path.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.spill_path.unlink(missing_ok=True)
            write_json(self.head_path, {**self.header, "input": None})
        data = os.open(self.data_path, os.O_WRONLY | os.O_CREAT, file_mode())
        index = os.open(self.index_path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.ftruncate(data, end)
        os.ftruncate(index, index_bytes)
        os.lseek(data, end, os.SEEK_SET)
        os.lseek(index, index_bytes, os.SEEK_SET)
        self.next = count
        self._thread = _WriterThread(data, index, sha, end)

    def input_known(self, input_digest: str) -> None:
        """Record the input digest in the head once known: only then can a restart reuse rows."""
        write_json(self.head_path, {**self.header, "input": input_digest})

    # -- rows -----------------------------------------------------------------------------------

    def put(self, index: int, row: Row) -> None:
        """A finished row: written once every row before it is."""
        if index != self.next:
            if index < self.next or index in self.waiting:
                raise RuntimeError(f"row {index} finished twice")  # an engine bug, not data
            self.waiting[index] = row
            return
        self._append(row)
        while self.next in self.waiting:
            self._append(self.waiting.pop(self.next))
        if self._room is not None and len(self.waiting) < self.window:
            self._room.set()

    def full(self) -> bool:
        """Too many rows wait for an earlier one: workers pause before taking another."""
        return len(self.waiting) >= self.window

    async def wait(self) -> None:
        """Until rows waiting drop below the window."""
        if self._room is None:
            self._room = asyncio.Event()
        self._room.clear()
        while self.full():
            await self._room.wait()
            self._room.clear()

    def _append(self, row: Row) -> None:
        self._batch.append(row)
        self.next += 1
        if len(self._batch) >= self.BATCH_ROWS:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        """Serialize the rows in order so far and hand them to the writer thread."""
        self._scheduled = False
        if not self._batch or self._thread is None:
            return
        rows, self._batch = self._batch, []
        first = self.next - len(rows)
        try:
            text = orjson.dumps(rows, option=JSON_OPTIONS)
        except TypeError:
            rows = [self._dumpable(first + k, row) for k, row in enumerate(rows)]
            text = orjson.dumps(rows, option=JSON_OPTIONS)
        self.observe(rows)
        # "[\n  {...},\n  {...}\n]": the elements, at the file's indent, between "[\n" and "\n]"
        self._thread.put(first, len(rows), (b",\n" if first else b"[\n") + text[2:-2])

    def _dumpable(self, index: int, row: Row) -> Row:
        try:
            orjson.dumps(row)
        except TypeError as exc:
            return self.repair(index, row, exc)
        return row

    # -- end ------------------------------------------------------------------------------------

    def finish(self) -> tuple[int, str]:
        """Append the list's end, fsync; (size, sha256) of the complete stage file."""
        self.flush()
        assert self._thread is not None
        self._thread.put(-1, 0, b"\n]\n" if self.next else b"[]\n")
        size, sha = self._thread.close(fsync=True)
        self._thread = None
        return size, sha

    def close(self, spill: bool = False) -> None:
        """Write what is in order, keep the files for a restart; ``spill`` also saves the rows
        that finished out of order (an interruption: they are not processed again)."""
        self.flush()
        if self._thread is not None:
            self._thread.close(fsync=False)
            self._thread = None
        if spill and self.waiting:
            journal = RowJournal(self.spill_path, self._spill_header())
            journal.open(keep=False)
            for index, row in sorted(self.waiting.items()):
                journal.append(index, row)
            journal.close()

    def move_to(self, path: Path) -> None:
        """Rename the finished file into place and drop the bookkeeping."""
        os.replace(self.data_path, path)
        _fsync_dir(path.parent)
        self.remove()

    def remove(self) -> None:
        for path in (self.index_path, self.head_path, self.spill_path, self.data_path):
            path.unlink(missing_ok=True)

    def _spill_header(self) -> dict[str, Any]:
        head = read_json(self.head_path) or {}
        return {**self.header, "input": head.get("input"), "spill": True}


class _WriterThread:
    """Writes batches and their index lines off the event loop, hashing the output as it goes
    (write, crc32 and sha256 release the GIL). The queue is short: memory stays bounded."""

    def __init__(self, data: int, index: int, sha: Any, offset: int) -> None:
        self.data, self.index, self.sha, self.offset = data, index, sha, offset
        self.queue: queue.Queue[tuple[int, int, bytes] | None] = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def put(self, first: int, count: int, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((first, count, data))

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue
            first, count, data = item
            try:
                _write_all(self.data, data)
                self.sha.update(data)
                self.offset += len(data)
                if first >= 0:
                    entry = orjson.dumps([first, count, self.offset, zlib.crc32(data)])
                    _write_all(self.index, b"%08x %s\n" % (zlib.crc32(entry), entry))
            except BaseException as exc:  # raised in the caller's thread
                self.error = exc

    def close(self, fsync: bool) -> tuple[int, str]:
        self.queue.put(None)
        self.thread.join()
        try:
            if self.error is None and fsync:
                os.fsync(self.data)
        finally:
            os.close(self.data)
            os.close(self.index)
        if self.error is not None:
            raise self.error
        return self.offset, self.sha.hexdigest()


def _index_entry(line: bytes) -> tuple[int, int, int, int] | None:
    """(first row, rows, end offset, crc32) of an index line; None when torn or damaged."""
    entry = line[9:]
    if len(line) < 10 or line[8:9] != b" " or line[:8] != b"%08x" % zlib.crc32(entry):
        return None
    try:
        first, count, end, crc = orjson.loads(entry)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    return first, count, end, crc


def _batch(
    handle: Any, entry: tuple[int, int, int, int] | None, count: int, end: int
) -> bytes | None:
    """The bytes of the batch an index entry describes, when it follows on from ``count`` rows
    and ``end`` bytes and its checksum matches; else None."""
    if entry is None or entry[0] != count or entry[1] < 1 or entry[2] <= end:
        return None
    data = handle.read(entry[2] - end)
    if len(data) != entry[2] - end or zlib.crc32(data) != entry[3]:
        return None
    return data


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
