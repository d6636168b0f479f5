"""Reading a stage file row by row in bounded memory.

A fast path reads the layout the engine writes (one object per top-level element at 2-space
indent, split at ``\\n  },\\n  {``); every run of elements it cuts out must parse as a list of
objects, which proves the cut: the file is then exactly those objects in order. Any other valid
JSON list (one line, tabs, CRLF) goes through a scanner that finds each element's end and
parses it with the same parser, so both read what ``orjson.loads`` of the whole file reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from masksql_pipe.engine.files import _read_error, parse_rows, read_bytes
from masksql_pipe.errors import InputError

BLOCK = 4 << 20
"""Bytes read at a time; a run of rows parsed at once is about this long."""
SCAN_BATCH = 1000
"""Rows handed over at a time by the general scanner."""
EXACT_ERROR_LIMIT = 256 << 20
"""An invalid file up to this size is parsed whole once, for the exact line and column."""

_SEP = b"\n  },\n  {"
_WS = b" \t\r\n"
_NOT_WS = re.compile(rb"[^ \t\r\n]")
_TOKEN = re.compile(rb'["{}\[\]]')
_STRING_TAIL = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.S)


class _Fallback(Exception):
    """Not the engine's own layout: read with the general scanner."""


class _Invalid(Exception):
    """Invalid JSON, or a row that is not an object, at a byte offset."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def iter_row_blocks(path: Path, block: int = BLOCK) -> Iterator[list[dict[str, Any]]]:
    """The rows of the JSON list in ``path``, in order, a list of rows at a time.

    Memory is bounded by ``block`` and the largest row, not by the file. Invalid JSON or a row
    that is not an object is one InputError naming the file, found when the reader gets there.
    """
    yielded = 0
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, also when the caller stops
    except OSError as exc:
        raise _read_error(path, exc) from None
    with handle:
        try:
            for rows in _fast_blocks(handle, block):
                yielded += len(rows)
                yield rows
            return
        except _Fallback:
            handle.seek(0)
        try:
            yield from _skipped(_Scanner(handle, block).rows(), yielded)
        except _Invalid as bad:
            raise _invalid(path, bad.offset) from None


def _fast_blocks(handle: IO[bytes], block: int) -> Iterator[list[dict[str, Any]]]:
    """Runs of rows cut at the top-level element boundaries of the engine's own layout."""
    buf = handle.read(block)
    if not buf.startswith(b"[\n  {"):
        raise _Fallback
    pos = 4
    while True:
        cut = buf.rfind(_SEP, pos)
        if cut >= 0:
            yield _parse_run(buf[pos : cut + 4])
            pos = cut + 8
        more = handle.read(block)
        if not more:
            break
        buf = buf[pos:] + more
        pos = 0
    tail = buf[pos:].rstrip(_WS)
    if not tail.endswith(b"\n  }\n]"):
        raise _Fallback
    yield _parse_run(tail[:-2])


def _parse_run(run: bytes) -> list[dict[str, Any]]:
    """Objects separated by commas, parsed as one list; anything else is not our layout."""
    try:
        rows = orjson.loads(b"[" + run + b"]")
    except orjson.JSONDecodeError:
        raise _Fallback from None
    for row in rows:
        if type(row) is not dict:
            raise _Fallback
    return rows


def _skipped(blocks: Iterator[list[dict[str, Any]]], skip: int) -> Iterator[list[dict[str, Any]]]:
    """``blocks`` without their first ``skip`` rows (already handed over by the fast path)."""
    for rows in blocks:
        if skip:
            dropped = min(skip, len(rows))
            rows = rows[dropped:]
            skip -= dropped
        if rows:
            yield rows


class _Scanner:
    """Any valid JSON list of objects: each element's end found by bracket depth outside
    strings, its bytes parsed by orjson; the buffer holds the unread rest of one element."""

    def __init__(self, handle: IO[bytes], block: int) -> None:
        self.handle, self.block = handle, block
        self.buf, self.pos, self.base = b"", 0, 0

    def _more(self) -> bool:
        """Read on, keeping the unconsumed bytes; False at the end of the file."""
        data = self.handle.read(max(self.block, len(self.buf) - self.pos))
        if not data:
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def _peek(self) -> int | None:
        """The next byte that is not whitespace (not consumed), None at the end."""
        while True:
            found = _NOT_WS.search(self.buf, self.pos)
            if found:
                self.pos = found.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            if not self._more():
                return None

    def _element(self) -> dict[str, Any]:
        """The object starting at the current position."""
        start = self.base + self.pos
        while (end := _object_end(self.buf, self.pos)) is None:
            if not self._more():
                raise _Invalid(start)
        text, self.pos = self.buf[self.pos : end], end
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _Invalid(start) from None

    def rows(self) -> Iterator[list[dict[str, Any]]]:
        if self._peek() != ord("["):
            raise _Invalid(self.base + self.pos)
        self.pos += 1
        batch: list[dict[str, Any]] = []
        char = self._peek()
        while char != ord("]"):
            if char != ord("{"):
                raise _Invalid(self.base + self.pos)
            batch.append(self._element())
            if len(batch) >= SCAN_BATCH:
                yield batch
                batch = []
            char = self._peek()
            if char == ord(","):
                self.pos += 1
                char = self._peek()
                if char == ord("]"):
                    raise _Invalid(self.base + self.pos)  # a trailing comma
            elif char != ord("]"):
                raise _Invalid(self.base + self.pos)
        self.pos += 1
        if self._peek() is not None:
            raise _Invalid(self.base + self.pos)
        if batch:
            yield batch


def _object_end(buf: bytes, pos: int) -> int | None:
    """End offset of the bracketed value starting at ``pos``; None when ``buf`` ends first."""
    depth = 0
    while True:
        found = _TOKEN.search(buf, pos)
        if found is None:
            return None
        if buf[found.start()] == 0x22:  # a string: jump past its closing quote
            tail = _STRING_TAIL.match(buf, found.end())
            if tail is None:
                return None
            pos = tail.end()
            continue
        depth += 1 if buf[found.start()] in b"{[" else -1
        pos = found.end()
        if depth == 0:
            return pos


def _invalid(path: Path, offset: int) -> InputError:
    """One line naming the file and where it goes wrong (exact, from a whole parse, when the
    file is small enough to parse whole; else the line and byte column of the element)."""
    if path.stat().st_size <= EXACT_ERROR_LIMIT:
        parse_rows(read_bytes(path), path)  # raises the engine's usual message
    line, column = _position(path, offset)
    return InputError(
        f"{path}: invalid JSON, or a row that is not an object, at line {line}, column {column}"
    )


def _position(path: Path, offset: int) -> tuple[int, int]:
    """Line and byte column of ``offset``, counted a block at a time."""
    line, line_start, done = 1, 0, 0
    with open(path, "rb") as handle:
        while done < offset:
            data = handle.read(min(BLOCK, offset - done))
            if not data:
                break
            count = data.count(b"\n")
            if count:
                line += count
                line_start = done + data.rfind(b"\n") + 1
            done += len(data)
    return line, offset - line_start + 1
