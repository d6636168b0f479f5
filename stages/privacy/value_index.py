"""An index of a database's text cells, built once per database file and reused across runs.

The guard and the leak audit ask "which phrases of this text are cells of the database?". On a
database with millions of cells a scan per question is too slow, so the distinct text cells
(normalised, at most MAX_PHRASE_WORDS words) go once into an indexed SQLite table kept in the
bookkeeping folder, `DIR/.masksql_pipe/value_index/<sha256 of the db file>.sqlite`; a lookup is
one indexed `IN (...)` query over the phrases of the text.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from masksql_pipe.errors import InputError
from stages.privacy.text import MAX_PHRASE_WORDS, WORD, normalize
from stages.sql.tokens import quote_identifier

FORMAT = "3"
"""Bumped when the index layout or `normalize` changes (part of the file name, so old files are
not reused: 3 = NFKC, invisible characters removed, mixed-script look-alikes)."""


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
                if not path.is_file():
                    try:
                        build_index(db_path, path)
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


def build_index(db_path: Path, path: Path) -> None:
    """Write the index of `db_path`'s text cells to `path` (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    out = sqlite3.connect(tmp)
    try:
        _copy_cells(source, out)
    except BaseException:
        out.close()
        source.close()
        tmp.unlink(missing_ok=True)
        raise
    out.close()
    source.close()
    os.replace(tmp, path)


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
