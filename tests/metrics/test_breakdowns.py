"""Research figures from hand-built rows: each EA definition, leak rate, RIS, MCS, breakdowns."""

from __future__ import annotations

import pytest

from stages.metrics.breakdowns import research_figures


def _row(db: str, difficulty: str, sql: str, ea: int, original: int, **extra) -> dict:
    return {
        "db_id": db,
        "difficulty": difficulty,
        "query": sql,
        "exec_acc": ea,
        "exec_acc_original": original,
        "exec_acc_before_repair": 0,
        **extra,
    }


EASY = "SELECT count(*) FROM t"
MEDIUM = "SELECT a, b FROM t ORDER BY a"

ROWS = [
    _row("d1", "simple", EASY, 1, 1, ris=1.0, leaks=[]),
    _row("d1", "simple", EASY, 1, 0, ris=0.5, leaks=[{"kind": "name"}]),
    _row(
        "d2",
        "moderate",
        MEDIUM,
        0,
        0,
        ris=0.0,
        leaks=[],
        mcs={"score": 0.5, "covered": 1, "annotated": 2},
    ),
    # a failed row scores 0 whatever its fields say; it was not audited
    {**_row("d2", "moderate", MEDIUM, 1, 1), "pipe_error": {"stage": "X", "message": "m"}},
]


def test_whole_run_figures_by_hand():
    result = research_figures(ROWS)
    assert result["rows"] == 4
    # test-suite EA: rows 1 and 2 (row 4 has an error) -> 2 / 4
    assert result["ea"]["test_suite"]["count"] == 2
    assert result["ea"]["test_suite"]["rate"] == 0.5
    # original EA: only row 1 -> 1 / 4
    assert result["ea"]["original"]["rate"] == 0.25
    # before repair: 0 everywhere
    assert result["ea"]["before_repair"]["count"] == 0
    low, high = result["ea"]["test_suite"]["ci95"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
    # leak audit on 3 rows, one with a leak
    assert (result["leak"]["rows"], result["leak"]["count"]) == (3, 1)
    assert result["leak"]["rate"] == pytest.approx(1 / 3, abs=1e-6)
    # RIS mean of 1.0, 0.5, 0.0 = 0.5; MCS from the one annotated row
    assert result["ris"] == {"mean": 0.5, "rows": 3}
    assert result["mcs"]["mean"] == 0.5 and result["mcs"]["annotated"] == 2


def test_breakdowns_by_difficulty_database_and_hardness():
    by = research_figures(ROWS)["by"]
    assert list(by["difficulty"]) == ["simple", "moderate"]
    assert by["difficulty"]["simple"]["ea"]["test_suite"]["rate"] == 1.0
    assert by["difficulty"]["moderate"]["ea"]["test_suite"]["rate"] == 0.0
    assert by["db_id"]["d1"]["rows"] == 2
    # count(*) alone is easy; two columns with ORDER BY is medium (see test_sql_hardness)
    assert list(by["hardness"]) == ["easy", "medium"]
    assert by["hardness"]["easy"]["ea"]["original"]["count"] == 1


def test_spider_rows_have_no_difficulty_breakdown():
    rows = [{"db_id": "d", "query": EASY, "exec_acc": 1}]
    by = research_figures(rows)["by"]
    assert "difficulty" not in by and "hardness" in by
    assert research_figures(rows)["leak"] is None


def test_hardness_groups_in_spider_order_not_alphabetical():
    hard = "SELECT name FROM a UNION SELECT name FROM b"  # nested 1 only: hard
    rows = [
        {"db_id": "d", "query": hard, "exec_acc": 1},
        {"db_id": "d", "query": MEDIUM, "exec_acc": 0},
    ]
    assert list(research_figures(rows)["by"]["hardness"]) == ["medium", "hard"]
