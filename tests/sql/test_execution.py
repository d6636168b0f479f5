"""Safe execution on real SQLite files: reads work, writes/ATTACH/runaway queries are errors,
the database file never changes, and a missing file is reported (never created)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from stages.sql.execution import run_sql, spider_db_path

DATA = Path(__file__).resolve().parents[2] / "data"
MUSIC = DATA / "databases" / "music_festival" / "music_festival.sqlite"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A private copy of the sample music database."""
    target = tmp_path / "music.sqlite"
    shutil.copyfile(MUSIC, target)
    return target


def test_select_returns_columns_rows_and_nulls(db: Path) -> None:
    res = run_sql(db, "SELECT name, \"Home Town\" FROM singer WHERE country = 'Ireland' ORDER BY 1")
    assert res.ok and res.error is None
    assert res.columns == ["name", "Home Town"]
    assert res.rows == [("Aoife Byrne", None), ("Liam O'Brien", "Cork")]
    assert not res.truncated


def test_row_cap_truncates(db: Path) -> None:
    res = run_sql(db, "SELECT singer_id FROM singer ORDER BY singer_id", max_rows=3)
    assert res.rows == [(1,), (2,), (3,)] and res.truncated
    assert run_sql(db, "SELECT singer_id FROM singer", max_rows=8).truncated is False


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE singer",
        "INSERT INTO singer (singer_id, name) VALUES (99, 'X')",
        "UPDATE singer SET age = 0",
        "DELETE FROM singer",
        "CREATE TABLE t (x)",
        "CREATE TEMP TABLE t (x)",
        "PRAGMA journal_mode = WAL",
        "PRAGMA query_only = OFF",
        "SELECT 1; DROP TABLE singer",
        "VACUUM",
        "BEGIN IMMEDIATE",
    ],
)
def test_writes_are_errors_and_file_unchanged(db: Path, sql: str) -> None:
    before = sha256(db)
    res = run_sql(db, sql)
    assert res.error, f"{sql!r} should be refused"
    assert res.rows == []
    assert sha256(db) == before
    # the database still holds all its data
    assert run_sql(db, "SELECT count(*) FROM singer").rows == [(8,)]


def test_attach_is_refused_and_creates_nothing(db: Path, tmp_path: Path) -> None:
    before = sha256(db)
    other = tmp_path / "other.sqlite"
    res = run_sql(db, f"ATTACH DATABASE '{other}' AS other")
    assert res.error
    assert not other.exists()
    res = run_sql(db, "DETACH DATABASE main")
    assert res.error
    assert sha256(db) == before


def test_endless_recursive_cte_times_out_quickly(db: Path) -> None:
    before = sha256(db)
    sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    start = time.monotonic()
    res = run_sql(db, sql, timeout=1.0)
    elapsed = time.monotonic() - start
    assert res.error and "timed out" in res.error
    assert elapsed < 4.0
    assert sha256(db) == before


def test_the_timer_alone_stops_a_statement(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the progress handler made too rare to fire, only the timer's interrupt() can stop
    an endless statement (SQLite work inside one VM step, e.g. a huge function call)."""
    from stages.sql import execution

    monkeypatch.setattr(execution, "_PROGRESS_STEPS", 2**31 - 1)  # fires after ~minutes
    started = time.monotonic()
    res = run_sql(
        db,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c",
        timeout=0.5,
    )
    assert res.error and "timed out" in res.error
    assert time.monotonic() - started < 15  # the handler alone would take far longer


def test_endless_rows_are_capped_not_hung(db: Path) -> None:
    sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"
    start = time.monotonic()
    res = run_sql(db, sql, max_rows=50)
    assert time.monotonic() - start < 4.0
    assert res.ok and res.truncated and len(res.rows) == 50 and res.rows[-1] == (50,)


def test_missing_database_is_named_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "gone.sqlite"
    res = run_sql(missing, "SELECT 1")
    assert res.error and str(missing) in res.error
    assert not missing.exists() and not missing.parent.exists()
    missing2 = tmp_path / "gone.sqlite"
    res = run_sql(missing2, "SELECT 1")
    assert res.error and str(missing2) in res.error
    assert not missing2.exists()


def test_syntax_error_is_reported(db: Path) -> None:
    res = run_sql(db, "SELEC name FROM singer")
    assert res.error and "syntax error" in res.error


def test_path_with_spaces_and_umlauts(tmp_path: Path) -> None:
    path = tmp_path / "Ordner mit Ä" / "db #1.sqlite"
    path.parent.mkdir()
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE Städte (Name TEXT)")
    con.execute("INSERT INTO Städte VALUES ('Köln')")
    con.commit()
    con.close()
    assert run_sql(path, "SELECT Name FROM Städte").rows == [("Köln",)]


def test_repository_sample_database_unchanged_by_refused_write() -> None:
    before = sha256(MUSIC)
    assert run_sql(MUSIC, "DELETE FROM singer").error
    assert sha256(MUSIC) == before


def test_spider_layout_path() -> None:
    assert spider_db_path(DATA, "music_festival") == MUSIC
    assert MUSIC.is_file()
