"""Run one SQL statement safely: read-only, no ATTACH, no writes, bounded in time, rows and bytes.

Model-written SQL is untrusted. The database is opened with a `mode=ro` URI (never created),
`PRAGMA query_only` is set, an authorizer allows only reading actions (three independent
layers). A progress handler and a timer calling `interrupt()` abort the statement at the
deadline; SQLite's own length limit bounds any single value, `printf`/`format` refuse widths
beyond it (SQLite would loop over them inside one call, out of the time limit's reach), and
a cap on the bytes of a result, counted row by row as they are fetched, bounds what one query
holds; a shared budget bounds the queries running at once (`ByteBudget`), and SQLite's own
heap is capped for the whole process as a last resort (`hard_heap_limit`).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
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
MAX_VALUE_BYTES = 10_000_000
"""SQLite's length limit on any one string or blob a query builds (SQLITE_LIMIT_LENGTH)."""
MAX_RESULT_BYTES = 64_000_000
"""Cap on the bytes of one result (all rows): beyond it the result is an error."""
MAX_TOTAL_BYTES = 256_000_000
"""Default budget shared by the queries running at once (each reserves its own cap)."""
MAX_KEPT_CHARS = 500
"""A value longer than this is shortened in what a row keeps of a result."""
_refused = threading.local()
"""Why a checked printf refused to run, in the thread that ran the statement."""


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
            "rows": [[_kept(v) for v in r] for r in _plain_rows(self.rows[:keep_rows])],
            "row_count": len(self.rows),
            "truncated": self.truncated,
        }


def _plain_rows(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as JSON lists (bytes as hex)."""
    return [[v.hex() if isinstance(v, bytes) else v for v in r] for r in rows]


def _kept(value: Any) -> Any:
    """A long text shortened to MAX_KEPT_CHARS, saying how long it was (stage files stay small)."""
    if isinstance(value, str) and len(value) > MAX_KEPT_CHARS:
        return f"{value[:MAX_KEPT_CHARS]}... ({len(value)} characters)"
    return value


def _value_bytes(value: Any) -> int:
    """Approximate memory a fetched value costs (for the result byte cap)."""
    if isinstance(value, str | bytes):
        return len(value) + 16
    return 16


class ByteBudget:
    """Bytes shared by concurrent executions: each reserves its result cap before it runs and
    gives it back when done, so the queries in flight never hold more than `total` together."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self.peak = 0
        self._free = threading.Condition()

    def reserve(self, amount: int) -> int:
        """Wait until `amount` (at most the whole budget) is free and take it; what was taken."""
        amount = min(amount, self.total)
        with self._free:
            self._free.wait_for(lambda: self.in_use + amount <= self.total)
            self.in_use += amount
            self.peak = max(self.peak, self.in_use)
        return amount

    def release(self, amount: int) -> None:
        """Give back what `reserve` took."""
        with self._free:
            self.in_use -= amount
            self._free.notify_all()


_budgets: dict[int, ByteBudget] = {}
_budgets_lock = threading.Lock()


def _forget_budgets() -> None:
    """In a forked worker: fresh budgets and lock (a thread of the parent may have held them)."""
    global _budgets_lock
    _budgets.clear()
    _budgets_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_budgets)


def shared_budget(total: int = MAX_TOTAL_BYTES) -> ByteBudget:
    """The process's budget of `total` bytes (one per size, shared by every stage using it)."""
    with _budgets_lock:
        budget = _budgets.get(total)
        if budget is None:
            budget = _budgets[total] = ByteBudget(total)
        return budget


_heap_capped: set[int] = set()


def _cap_sqlite_heap(total: int) -> None:
    """Cap SQLite's heap for the process at twice the budget (a row of many huge columns is
    built whole inside SQLite before it can be counted); a higher cap already set is kept."""
    if total in _heap_capped:
        return
    _heap_capped.add(total)
    con = sqlite3.connect(":memory:")
    try:
        current = con.execute("PRAGMA hard_heap_limit").fetchone()[0]
        wanted = 2 * total
        if current == 0 or current < wanted:
            con.execute(f"PRAGMA hard_heap_limit = {int(wanted)}")
    finally:
        con.close()


def spider_db_path(data_dir: str | os.PathLike[str], db_id: str) -> Path:
    """Where Spider keeps a database: `<data_dir>/databases/<db_id>/<db_id>.sqlite`."""
    return Path(data_dir) / "databases" / db_id / f"{db_id}.sqlite"


def read_only_authorizer(action: int, *_args: Any) -> int:
    """SQLite authorizer allowing only what a read-only query needs (also used by the
    symbolic check, which prepares model SQL against an in-memory schema)."""
    return sqlite3.SQLITE_OK if action in _ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


def open_readonly(
    db_path: str | os.PathLike[str],
    *,
    uri_read_only: bool = True,
    query_only: bool = True,
    authorizer: bool = True,
    max_value: int = MAX_VALUE_BYTES,
) -> sqlite3.Connection:
    """A read-only connection to an existing database file (FileNotFoundError if missing).

    The three layers (``mode=ro``, ``query_only``, the authorizer) each refuse writes on their
    own; the keywords exist so tests can prove that of each layer alone.
    """
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"database file not found: {path}")
    uri = path.resolve().as_uri() + ("?mode=ro" if uri_read_only else "")
    con = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    if query_only:
        con.execute("PRAGMA query_only = ON")
    if authorizer:
        con.set_authorizer(read_only_authorizer)
    con.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, min(max_value, MAX_VALUE_BYTES))
    _guard_printf(con)
    return con


_PRINTF_SPEC = re.compile(r"%[-+ 0#,!]*(\*|\d+)?(?:\.(\*|\d+))?(?:ll|l)?([a-zA-Z%])")


def _guard_printf(con: sqlite3.Connection) -> None:
    """Replace printf/format by a copy that refuses a width or precision beyond the length limit.

    SQLite pads such a value character by character inside one function call (seconds, no
    progress callback); the checked call runs the real printf on a private in-memory database.
    """
    helper = sqlite3.connect(":memory:", check_same_thread=False)
    helper.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)

    def checked(name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if not args or not isinstance(args[0], str):
                return helper.execute(
                    f"SELECT {name}({','.join('?' * len(args))})", args
                ).fetchone()[0]
            rest = list(args[1:])
            for match in _PRINTF_SPEC.finditer(args[0]):
                for part in match.group(1), match.group(2):
                    size = rest.pop(0) if part == "*" and rest else part
                    try:
                        number = abs(int(size or 0))
                    except (TypeError, ValueError):
                        number = 0
                    if number > MAX_VALUE_BYTES:
                        _refused.message = f"{name} width {number} exceeds {MAX_VALUE_BYTES}"
                        raise ValueError(_refused.message)
                if match.group(3) != "%" and rest:
                    rest.pop(0)
            marks = ",".join("?" * len(args))
            return helper.execute(f"SELECT {name}({marks})", args).fetchone()[0]

        return call

    for name in ("printf", "format"):
        con.create_function(name, -1, checked(name), deterministic=True)


def run_sql(
    db_path: str | os.PathLike[str],
    sql: str,
    *,
    timeout: float = 5.0,
    max_rows: int = 10000,
    max_bytes: int = MAX_RESULT_BYTES,
    budget: ByteBudget | None = None,
) -> ExecResult:
    """Execute one read-only statement on `db_path`; never raises for bad SQL, never hangs.

    Errors (syntax, denied writes/ATTACH, time limit, a value or result too large, missing file)
    come back in `error`. At most `max_rows` rows are returned; `truncated` says more existed.
    The run first reserves `max_bytes` from `budget` (the shared default one when None).
    """
    budget = budget if budget is not None else shared_budget()
    _cap_sqlite_heap(budget.total)
    taken = budget.reserve(max_bytes)
    try:
        return _run_reserved(db_path, sql, timeout, max_rows, max_bytes)
    finally:
        budget.release(taken)


def _run_reserved(
    db_path: str | os.PathLike[str], sql: str, timeout: float, max_rows: int, max_bytes: int
) -> ExecResult:
    """`run_sql` once its bytes are reserved: rows fetched one at a time, counted as they come."""
    try:
        con = open_readonly(db_path, max_value=max_bytes)
    except FileNotFoundError:
        return ExecResult(error=f"database file not found: {db_path}")
    except sqlite3.Error as exc:
        return ExecResult(error=f"cannot open database {db_path}: {exc}")
    deadline = time.monotonic() + timeout
    timed_out = threading.Event()
    _refused.message = None

    def progress() -> int:
        if time.monotonic() > deadline:
            timed_out.set()
            return 1
        return 0

    def interrupt() -> None:
        timed_out.set()
        con.interrupt()

    con.set_progress_handler(progress, _PROGRESS_STEPS)
    timer = threading.Timer(timeout, interrupt)
    timer.daemon = True
    timer.start()
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description or []]
        rows: list[tuple[Any, ...]] = []
        size = 0
        for row in cur:  # one row at a time: the cap holds whatever a row weighs
            size += sum(_value_bytes(v) for v in row)
            if size > max_bytes:
                del rows[:]
                return ExecResult(
                    columns, error=f"result larger than {max_bytes // 1_000_000} MB (not kept)"
                )
            rows.append(row)
            if len(rows) > max_rows:
                break
        truncated = len(rows) > max_rows
        return ExecResult(columns, [tuple(r) for r in rows[:max_rows]], None, truncated)
    except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError, MemoryError) as exc:
        if timed_out.is_set():
            return ExecResult(error=f"query timed out after {timeout:g} s")
        refused = getattr(_refused, "message", None)
        if refused:
            return ExecResult(error=f"{type(exc).__name__}: {refused}")
        return ExecResult(error=f"{type(exc).__name__}: {exc}")
    finally:
        timer.cancel()
        con.close()
