"""An index of a database's text cells, built once per database file and reused across runs.

The guard and the leak audit ask "which phrases of this text are cells of the database?". On a
database with millions of cells a scan per question is too slow, so the distinct text cells
(normalised, at most MAX_PHRASE_WORDS words) go once into an indexed SQLite table kept in the
bookkeeping folder, `DIR/.masksql_pipe/value_index/<sha256 of the db file>.sqlite`; a lookup is
one indexed `IN (...)` query over the phrases of the text.

The index carries a header (table `meta`: format, the database's sha256, the number of cells)
checked when it is opened: a damaged, truncated or emptied index is named in one warning and
rebuilt, never trusted (an index that finds nothing lets every value through the guard). The temp
files of a build whose process died are swept before the next build.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from masksql_pipe.errors import InputError
from stages.privacy.text import MAX_PHRASE_WORDS, WORD, normalize
from stages.sql.tokens import quote_identifier

FORMAT = "4"
"""Bumped when the index layout or `normalize` changes (part of the file name, so old files are
not reused: 3 = NFKC, invisible characters removed, mixed-script look-alikes; 4 = the header)."""

_TEMP = re.compile(r".+\.sqlite\.(\d+)\.(\d+)\.tmp(-journal)?")
"""A build's temp file (and SQLite's rollback journal beside it): `<index>.<pid>.<thread>.tmp`."""


@dataclass(frozen=True)
class Cell:
    """One distinct cell value: as stored, and the `table.column` it was found in."""

    value: str
    table: str
    column: str

    @property
    def item(self) -> str:
        """`table.column`."""
        return f"{self.table}.{self.column}"


_DIGESTS: dict[tuple[str, int, int], str] = {}
_OPEN: dict[str, ValueIndex] = {}
_LOCK = threading.Lock()


def database_digest(db_path: Path) -> str:
    """sha256 of the database file (remembered while its size and mtime stay the same)."""
    st = db_path.stat()
    key = (str(db_path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        sha = hashlib.sha256()
        with open(db_path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        digest = sha.hexdigest()
        _DIGESTS[key] = digest
    return digest


class ValueIndex:
    """Lookups of normalised phrases among a database's distinct text cells."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    @classmethod
    def for_database(cls, db_path: Path, index_dir: Path) -> ValueIndex:
        """The index of `db_path`, built into `index_dir` the first time (thread-safe)."""
        digest = database_digest(db_path)
        path = index_dir / f"{digest[:32]}-v{FORMAT}.sqlite"
        with _LOCK:
            index = _OPEN.get(str(path))
            if index is None:
                sweep_temp_files(index_dir)
                problem = check_index(path, digest) if path.is_file() else "missing"
                if problem != "":
                    if problem != "missing":
                        print(f"warning: {path}: {problem}; rebuilt", file=sys.stderr, flush=True)
                    try:
                        build_index(db_path, path, digest)
                    except sqlite3.DatabaseError as exc:
                        raise InputError(
                            f"{db_path}: not a readable SQLite database ({exc})"
                        ) from None
                index = cls(path)
                _OPEN[str(path)] = index
            return index

    def lookup(self, normalized: Iterable[str]) -> dict[str, list[Cell]]:
        """For each given normalised phrase that is a cell: the cells it equals."""
        wanted = sorted(set(normalized))
        found: dict[str, list[Cell]] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT norm, value, tbl, col FROM cells WHERE norm IN ({marks})"
                for norm, value, table, column in self._con.execute(query, chunk):
                    found.setdefault(norm, []).append(Cell(value, table, column))
        return found

    def size(self) -> int:
        """Number of indexed (phrase, column) entries."""
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM cells").fetchone()[0])


def check_index(path: Path, digest: str) -> str:
    """What is wrong with the index at `path` for a database of sha256 `digest` (a phrase),
    or "" when its header matches: same format, same database, as many cells as it says."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            cells = con.execute("SELECT count(*) FROM cells").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error as exc:
        return f"damaged value index ({exc})"
    if meta.get("format") != FORMAT or meta.get("database") != digest:
        return "value index of another database or format"
    if meta.get("cells") != str(cells):
        return f"value index holds {cells} cells, its header says {meta.get('cells')}"
    return ""


def sweep_temp_files(index_dir: Path) -> list[Path]:
    """Delete the temp files of builds whose process is gone (or of this process: builds run
    under the lock the caller holds, so none of ours is in flight)."""
    removed = []
    for path in index_dir.glob("*.tmp*") if index_dir.is_dir() else ():
        m = _TEMP.fullmatch(path.name)
        if m and (int(m.group(1)) == os.getpid() or not _alive(int(m.group(1)))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def build_index(db_path: Path, path: Path, digest: str | None = None) -> None:
    """Write the index of `db_path`'s text cells and its header to `path` (temp file, then
    rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    journal = tmp.with_name(tmp.name + "-journal")
    tmp.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    out = sqlite3.connect(tmp)
    try:
        _copy_cells(source, out)
        _write_header(out, digest or database_digest(db_path))
    except BaseException:
        out.close()
        source.close()
        tmp.unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
        raise
    out.close()
    source.close()
    os.replace(tmp, path)


def _write_header(out: sqlite3.Connection, digest: str) -> None:
    """The `meta` table: format, database digest and cell count, checked on open."""
    cells = out.execute("SELECT count(*) FROM cells").fetchone()[0]
    out.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")
    out.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("format", FORMAT), ("database", digest), ("cells", str(cells))],
    )
    out.commit()


def _copy_cells(source: sqlite3.Connection, out: sqlite3.Connection) -> None:
    """Every distinct text cell of `source`, normalised, into the indexed table of `out`."""
    out.execute("CREATE TABLE cells(norm TEXT NOT NULL, value TEXT, tbl TEXT, col TEXT)")
    tables = [
        r[0]
        for r in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    for table in tables:
        qtable = quote_identifier(table)
        columns = [r[1] for r in source.execute(f"PRAGMA table_info({qtable})")]
        for column in columns:
            qcol = quote_identifier(column)
            cursor = source.execute(
                f"SELECT DISTINCT {qcol} FROM {qtable} WHERE typeof({qcol}) = 'text'"
            )
            out.executemany(
                "INSERT INTO cells VALUES (?, ?, ?, ?)",
                _entries(cursor, table, column),
            )
    out.execute("CREATE INDEX cells_norm ON cells(norm)")
    out.commit()


def _entries(
    cursor: Iterable[tuple[str]], table: str, column: str
) -> Iterator[tuple[str, str, str, str]]:
    seen: set[str] = set()
    for (value,) in cursor:
        norm = normalize(value)
        if not norm or norm in seen or len(WORD.findall(norm)) > MAX_PHRASE_WORDS:
            continue
        seen.add(norm)
        yield norm, value, table, column
