"""SQL bounded in bytes and time inside one call, truncated results never scored, and each of
the three read-only layers refusing a write on its own (real SQLite files)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from stages.sql.exec_match import exec_match
from stages.sql.execution import MAX_KEPT_CHARS, open_readonly, run_sql

DATA = Path(__file__).resolve().parents[2] / "data"
MUSIC = DATA / "databases" / "music_festival" / "music_festival.sqlite"
LAYERS = ("uri_read_only", "query_only", "authorizer")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    target = tmp_path / "music.sqlite"
    shutil.copyfile(MUSIC, target)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SELECT zeroblob(300000000)", "too big"),
        ("SELECT printf('%.*c', 900000000, 'x')", "printf width"),
        ("SELECT format('%900000000d', 1)", "format width"),
    ],
)
def test_huge_single_values_are_row_errors_not_timeouts(db: Path, sql: str, says: str) -> None:
    # a generous time limit: the error must come from the size bounds, not the clock
    res = run_sql(db, sql, timeout=120)
    assert res.error and says in res.error, res.error
    assert res.rows == []


def test_printf_within_bounds_still_works(db: Path) -> None:
    res = run_sql(db, "SELECT printf('%s is %5.1f%%', name, 12.345) FROM singer ORDER BY 1 LIMIT 1")
    assert res.ok and res.rows[0][0].endswith(" 12.3%")


def test_result_byte_cap_turns_a_huge_result_into_an_error(db: Path) -> None:
    sql = "SELECT printf('%.*c', 1000000, 'x') FROM singer AS a, singer AS b"  # 64 MB
    res = run_sql(db, sql, timeout=120, max_bytes=10_000_000)
    assert res.error and "larger than 10 MB" in res.error
    assert res.rows == []


def test_a_long_value_is_shortened_in_what_a_row_keeps(db: Path) -> None:
    res = run_sql(db, "SELECT printf('%.*c', 200000, 'x')")
    assert res.ok and len(res.rows[0][0]) == 200000
    kept = res.summary(5)["rows"][0][0]
    assert len(kept) < MAX_KEPT_CHARS + 40 and "200000 characters" in kept


def _count(n: int) -> str:
    recursive = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
    return f"{recursive} WHERE x < {n}) SELECT x FROM c"


def test_truncated_results_never_score_a_match(db: Path) -> None:
    # 20,000 gold rows against 30,000 predicted: equal in the first 10,000 (the cap)
    match = exec_match(db, _count(20000), _count(30000), max_rows=10000)
    assert match.score == 0 and match.gold_error and match.pred_error
    assert exec_match(db, _count(20000), _count(20000), max_rows=30000).score == 1


@pytest.mark.parametrize("layer", LAYERS)
def test_each_read_only_layer_alone_refuses_writes(db: Path, layer: str) -> None:
    before = sha256(db)
    only = {name: name == layer for name in LAYERS}
    con = open_readonly(db, **only)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            con.execute("DELETE FROM singer")
    finally:
        con.close()
    assert sha256(db) == before


def test_without_any_layer_the_write_would_happen(db: Path) -> None:
    """The control for the test above: its DELETE really writes when no layer stops it."""
    con = open_readonly(db, uri_read_only=False, query_only=False, authorizer=False)
    con.execute("DELETE FROM singer")
    con.close()
    assert run_sql(db, "SELECT count(*) FROM singer").rows == [(0,)]
