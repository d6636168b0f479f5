"""Numbered stage files: names, reading with clear errors, atomic writing, and digests."""

from __future__ import annotations

import functools
import gc
import hashlib
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import orjson

from masksql_pipe.errors import InputError

BOOKKEEPING_DIR = ".masksql_pipe"
"""Hidden folder inside the data folder that holds fingerprints, journals, logs and caches."""

_NUMBERED = re.compile(r"^(\d+)_(.+)\.json$")
_STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@functools.cache
def file_mode() -> int:
    """Mode of written files: what a plain open() would give under the user's umask.

    Found when the first file is written, not at import: reading the umask means setting it
    and putting it back, which merely importing a library must not do.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


JSON_OPTIONS = orjson.OPT_INDENT_2
"""Output format: 2-space indent, UTF-8 with non-ASCII unescaped, keys in insertion order."""


@dataclass(frozen=True)
class StageFile:
    """A parsed numbered file name such as ``3_RankSchemaItems.json``."""

    number: int
    name: str

    @property
    def filename(self) -> str:
        return f"{self.number}_{self.name}.json"

    @property
    def stem(self) -> str:
        return f"{self.number}_{self.name}"

    def next(self, name: str) -> StageFile:
        """The file a stage called ``name`` writes after reading this one."""
        return StageFile(self.number + 1, name)


def parse_stage_file(path: Path | str) -> StageFile:
    """Split ``N_name.json`` into number and name; anything else is an InputError."""
    name = Path(path).name
    match = _NUMBERED.match(name)
    if not match:
        raise InputError(
            f"{path}: not a numbered stage file; expected a name like '1_input.json' (N_name.json)"
        )
    return StageFile(int(match.group(1)), match.group(2))


def check_stage_name(name: str) -> str:
    """Reject stage names that cannot be part of a file name."""
    if not isinstance(name, str) or not _STAGE_NAME.match(name):
        raise InputError(
            f"invalid stage name {name!r}: use letters, digits, '_', '.' or '-' "
            "(it becomes part of the output file name)"
        )
    return name


def numbered_files(folder: Path) -> list[tuple[StageFile, Path]]:
    """The numbered JSON files in ``folder``, sorted by number then name; InputError when
    ``folder`` is missing or not a folder (every reader of a data folder starts here)."""
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "data folder not found"
        raise InputError(f"{folder}: {what}; --data takes the dataset folder")
    found = []
    for entry in folder.iterdir():
        match = _NUMBERED.match(entry.name)
        if match and entry.is_file():
            found.append((StageFile(int(match.group(1)), match.group(2)), entry))
    found.sort(key=lambda item: (item[0].number, item[0].name))
    return found


def bookkeeping_dir(data_dir: Path) -> Path:
    """The hidden bookkeeping folder of a data folder (created on demand)."""
    path = data_dir / BOOKKEEPING_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_bytes(path: Path) -> bytes:
    """Read a file, turning a missing or unreadable file into a one-line InputError."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _read_error(path, exc) from None


async def read_bytes_async(path: Path) -> bytes:
    """``read_bytes`` off the event loop (aiofiles), so a large stage file does not stall it."""
    try:
        async with aiofiles.open(path, "rb") as handle:
            return await handle.read()
    except OSError as exc:
        raise _read_error(path, exc) from None


def _read_error(path: Path, exc: OSError) -> InputError:
    """A failed read as one line naming the file."""
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{path}: file not found")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{path}: is a folder, expected a JSON file")
    return InputError(f"{path}: cannot read ({exc.strerror})")


def parse_rows(data: bytes, path: Path | str) -> list[dict[str, Any]]:
    """Parse a JSON list of objects, naming the file, line, column or row index on error."""
    paused = gc.isenabled()
    gc.disable()  # parsed JSON holds no cycles; collecting while it is built only costs time
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        line, column, message = exc.lineno, exc.colno, exc.msg
        if "utf-8" in message.lower() or "unicode" in message.lower():
            line, column, message = _utf8_error_position(data, line, column, message)
        raise InputError(
            f"{path}: invalid JSON at line {line}, column {column}: {message}"
        ) from None
    finally:
        if paused:
            gc.enable()
    if not isinstance(rows, list):
        raise InputError(
            f"{path}: top level is a JSON {_json_type(rows)}, expected a list of row objects"
        )
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{path}: row {index} is a JSON {_json_type(row)}, expected an object")
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Read a stage file as a list of row objects (see ``parse_rows``)."""
    return parse_rows(read_bytes(path), path)


def dump_rows(rows: list[dict[str, Any]]) -> bytes:
    """Serialize rows in the file-contract format, with a trailing newline."""
    return orjson.dumps(rows, option=JSON_OPTIONS) + b"\n"


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to a temp file beside ``path``, fsync it, then rename over ``path``.

    A crash leaves either the old file or the new one, never a truncated file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def remove_leftover_temp_files(*folders: Path) -> list[Path]:
    """Delete the temp files an interrupted ``write_atomic`` left in ``folders``.

    Call only while holding the folder's writer lock: then no write is in flight.
    """
    removed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for pattern in (".*.json.*.tmp", ".*.html.*.tmp"):
            for path in folder.glob(pattern):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def write_json(path: Path, obj: Any) -> None:
    """Atomically write any JSON-able object in the file-contract format."""
    write_atomic(path, orjson.dumps(obj, option=JSON_OPTIONS) + b"\n")


def read_json(path: Path) -> Any:
    """Read a bookkeeping JSON file; returns None when it is missing or unreadable."""
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def digest(data: bytes) -> str:
    """Content digest used to tell whether a file changed."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileState:
    """What we remember of a file: size, modification time and content digest."""

    size: int
    mtime_ns: int
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "digest": self.digest}

    @classmethod
    def from_dict(cls, data: Any) -> FileState | None:
        try:
            return cls(int(data["size"]), int(data["mtime_ns"]), str(data["digest"]))
        except (TypeError, KeyError, ValueError):
            return None

    @classmethod
    def of_bytes(cls, path: Path, data: bytes, known_digest: str | None = None) -> FileState:
        """State of a file whose bytes we already hold (avoids reading it twice)."""
        stat = path.stat()
        return cls(stat.st_size, stat.st_mtime_ns, known_digest or digest(data))


class BackgroundDigest:
    """sha256 of a byte string computed on another core (hashlib releases the GIL).

    Lets the digest of a stage file overlap with parsing or writing it.
    """

    def __init__(self, data: bytes) -> None:
        self._result: list[str] = []
        self._thread = threading.Thread(target=lambda: self._result.append(digest(data)))
        self._thread.start()

    def result(self) -> str:
        self._thread.join()
        return self._result[0]


_HASHED: dict[tuple[str, int, int], str] = {}
"""(path, size, mtime_ns) -> digest of the files `current_digest` had to read in this process:
what `confirmed_state` hands to a record, so a confirmed file is not read again."""


class BackgroundFileDigest:
    """sha256 of a file read a block at a time on another thread, in bounded memory; ``then``
    is called with the digest when it is known (from that thread)."""

    def __init__(self, path: Path, then: Any = None) -> None:
        self._result: list[str] = []
        self._error: list[OSError] = []
        self._thread = threading.Thread(target=self._run, args=(path, then), daemon=True)
        self._thread.start()

    def _run(self, path: Path, then: Any) -> None:
        sha = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                while block := handle.read(1 << 20):
                    sha.update(block)
        except OSError as exc:
            self._error.append(exc)
            return
        self._result.append(sha.hexdigest())
        if then is not None:
            then(self._result[0])

    def result(self, path: Path) -> str:
        self._thread.join()
        if self._error:
            raise _read_error(path, self._error[0])
        return self._result[0]


def current_digest(path: Path, known: FileState | None) -> str | None:
    """Digest of ``path`` now, reusing ``known`` when size and mtime are unchanged (as git does).

    Returns None when the file does not exist.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    if known and known.size == stat.st_size and known.mtime_ns == stat.st_mtime_ns:
        return known.digest
    data = path.read_bytes()
    now = digest(data)
    after = path.stat()
    unchanged = (after.st_size, after.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    if unchanged and len(data) == stat.st_size:  # not written to while it was read
        _HASHED[(str(path), stat.st_size, stat.st_mtime_ns)] = now
    return now


def confirmed_state(path: Path, known: FileState | None) -> FileState | None:
    """The state to record for ``path`` when its content was just read and found equal to
    ``known`` but its mtime (touch, copy) differs; None when there is nothing to update.

    Records are size+mtime shortcuts (as git's index): once the new mtime is recorded, the next
    check trusts it without reading the file. That is the intended trade-off: a same-size
    rewrite that also restores the mtime is not seen, as in git and make.
    """
    if known is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    if (stat.st_size, stat.st_mtime_ns) == (known.size, known.mtime_ns):
        return None
    if _HASHED.get((str(path), stat.st_size, stat.st_mtime_ns)) != known.digest:
        return None
    return FileState(stat.st_size, stat.st_mtime_ns, known.digest)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _utf8_error_position(data: bytes, line: int, column: int, message: str) -> tuple[int, int, str]:
    """Where invalid UTF-8 really is (orjson reports such errors at line 1, column 1)."""
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        line = data.count(b"\n", 0, start) + 1
        line_start = data.rfind(b"\n", 0, start) + 1
        column = len(bytes(data[line_start:start]).decode("utf-8", errors="replace")) + 1
        return line, column, f"invalid UTF-8 byte 0x{data[start]:02x}"
    return line, column, message


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
