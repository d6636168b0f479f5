"""Run one SQL statement safely: read-only, no ATTACH, no writes, a time limit and a row cap.

Model-written SQL is untrusted. The database is opened with a `mode=ro` URI (never created),
`PRAGMA query_only` is set, an authorizer allows only reading actions, and a progress handler
aborts the statement at the deadline, so a runaway query returns an error instead of hanging.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Authorizer action codes that a read-only query needs.
_ALLOWED_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}
_PROGRESS_STEPS = 1000


@dataclass
class ExecResult:
    """Outcome of `run_sql`: column names and rows, or an error message; `truncated` if capped."""

    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    error: str | None = None
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """True when the statement ran without error."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (rows as lists; bytes as hex)."""
        return {
            "columns": list(self.columns),
            "rows": _plain_rows(self.rows),
            "error": self.error,
            "truncated": self.truncated,
        }

    def summary(self, keep_rows: int) -> dict[str, Any]:
        """What a row keeps of a result: ok/error, columns, the first rows and the row count."""
        return {
            "ok": self.ok,
            "error": self.error,
            "columns": list(self.columns),
            "rows": _plain_rows(self.rows[:keep_rows]),
            "row_count": len(self.rows),
            "truncated": self.truncated,
        }


def _plain_rows(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as JSON lists (bytes as hex)."""
    return [[v.hex() if isinstance(v, bytes) else v for v in r] for r in rows]


def spider_db_path(data_dir: str | os.PathLike[str], db_id: str) -> Path:
    """Where Spider keeps a database: `<data_dir>/databases/<db_id>/<db_id>.sqlite`."""
    return Path(data_dir) / "databases" / db_id / f"{db_id}.sqlite"


def _authorizer(action: int, *_args: Any) -> int:
    return sqlite3.SQLITE_OK if action in _ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


def open_readonly(db_path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection to an existing database file (FileNotFoundError if missing)."""
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"database file not found: {path}")
    uri = f"{path.resolve().as_uri()}?mode=ro"
    con = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    con.execute("PRAGMA query_only = ON")
    con.set_authorizer(_authorizer)
    return con


def run_sql(
    db_path: str | os.PathLike[str],
    sql: str,
    *,
    timeout: float = 5.0,
    max_rows: int = 10000,
) -> ExecResult:
    """Execute one read-only statement on `db_path`; never raises for bad SQL, never hangs.

    Errors (syntax, denied writes/ATTACH, time limit, missing file) come back in `error`.
    At most `max_rows` rows are returned; `truncated` says more existed.
    """
    try:
        con = open_readonly(db_path)
    except FileNotFoundError:
        return ExecResult(error=f"database file not found: {db_path}")
    except sqlite3.Error as exc:
        return ExecResult(error=f"cannot open database {db_path}: {exc}")
    deadline = time.monotonic() + timeout
    timed_out = False

    def progress() -> int:
        nonlocal timed_out
        if time.monotonic() > deadline:
            timed_out = True
            return 1
        return 0

    con.set_progress_handler(progress, _PROGRESS_STEPS)
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description or []]
        rows = cur.fetchmany(max_rows + 1)
        truncated = len(rows) > max_rows
        return ExecResult(columns, [tuple(r) for r in rows[:max_rows]], None, truncated)
    except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError) as exc:
        if timed_out:
            return ExecResult(error=f"query timed out after {timeout:g} s")
        return ExecResult(error=f"{type(exc).__name__}: {exc}")
    finally:
        con.close()
