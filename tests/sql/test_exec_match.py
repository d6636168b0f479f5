"""Execution match: multiset vs ordered rows, duplicates, column permutations, NULLs, floats."""

from __future__ import annotations

import time
from pathlib import Path

from stages.sql.exec_match import exec_match, has_top_level_order_by, results_equal

DATA = Path(__file__).resolve().parents[2] / "data"
MUSIC = DATA / "databases" / "music_festival" / "music_festival.sqlite"
UNI = DATA / "databases" / "university" / "university.sqlite"


def test_row_order_ignored_without_order_by() -> None:
    assert results_equal([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], order_matters=False)
    assert not results_equal([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], order_matters=True)
    assert results_equal([(1, "a"), (2, "b")], [(1, "a"), (2, "b")], order_matters=True)


def test_duplicates_count() -> None:
    assert not results_equal([(1,), (1,), (2,)], [(1,), (2,), (2,)], order_matters=False)
    assert not results_equal([(1,), (1,)], [(1,)], order_matters=False)
    assert results_equal([(1,), (2,), (1,)], [(1,), (1,), (2,)], order_matters=False)


def test_column_permutation() -> None:
    gold = [("Rose", 41), ("John", 43)]
    assert results_equal(gold, [(43, "John"), (41, "Rose")], order_matters=False)
    assert results_equal(gold, [(41, "Rose"), (43, "John")], order_matters=True)
    assert not results_equal(gold, [(43, "Rose"), (41, "John")], order_matters=False)
    # same per-column multisets, but rows pair the values differently
    assert not results_equal([(1, 2), (2, 1)], [(1, 1), (2, 2)], order_matters=False)


def test_column_counts_must_agree() -> None:
    assert not results_equal([(1, 2)], [(1,)], order_matters=False)
    assert not results_equal([], [], order_matters=False, gold_ncols=2, pred_ncols=1)
    assert results_equal([], [], order_matters=False, gold_ncols=2, pred_ncols=2)


def test_nulls_and_floats() -> None:
    assert results_equal([(None, 1)], [(1, None)], order_matters=False)
    assert not results_equal([(None,)], [(0,)], order_matters=False)
    assert not results_equal([(None,)], [("",)], order_matters=False)
    assert results_equal([(0.1 + 0.2,)], [(0.3,)], order_matters=False)
    assert results_equal([(34.5,)], [(34.50000000001,)], order_matters=True)
    assert results_equal([(2.0,)], [(2,)], order_matters=False)
    assert not results_equal([(0.3,)], [(0.31,)], order_matters=False)
    assert not results_equal([("1",)], [(1,)], order_matters=False)


def test_many_identical_columns_is_fast() -> None:
    rows = [tuple([i % 3] * 8) for i in range(300)]
    start = time.monotonic()
    assert results_equal(rows, list(reversed(rows)), order_matters=False)
    swapped = [(*r[:7], (r[7] + 1) % 3) for r in rows]
    assert not results_equal(rows, swapped, order_matters=False)
    assert time.monotonic() - start < 2.0


def test_top_level_order_by_detection() -> None:
    assert has_top_level_order_by("SELECT a FROM t ORDER BY a")
    assert has_top_level_order_by("select a from t order\n  by a desc limit 1")
    assert not has_top_level_order_by("SELECT a FROM t WHERE b IN (SELECT b FROM u ORDER BY b)")
    assert not has_top_level_order_by("SELECT 'ORDER BY' FROM t -- ORDER BY a")
    assert not has_top_level_order_by('SELECT "order" FROM t')


def test_exec_match_on_real_database() -> None:
    gold = "SELECT name, age FROM singer WHERE country = 'France' ORDER BY age"
    assert exec_match(MUSIC, gold, gold).score == 1
    # same rows, columns swapped: equal
    swapped = "SELECT age, name FROM singer WHERE country = 'France' ORDER BY age"
    assert exec_match(MUSIC, gold, swapped).score == 1
    # gold orders rows: the reverse order is wrong
    reverse = "SELECT name, age FROM singer WHERE country = 'France' ORDER BY age DESC"
    assert exec_match(MUSIC, gold, reverse).score == 0
    # without ORDER BY in gold, the order does not matter
    unordered = "SELECT name, age FROM singer WHERE country = 'France'"
    assert exec_match(MUSIC, unordered, reverse).score == 1
    # different rows
    other = "SELECT name, age FROM singer WHERE country = 'Ireland'"
    assert exec_match(MUSIC, unordered, other).score == 0


def test_avg_float_matches_hand_value() -> None:
    # France ages 29, 41, 43, 25 -> 34.5
    res = exec_match(MUSIC, "SELECT avg(age) FROM singer WHERE country = 'France'", "SELECT 34.5")
    assert res.score == 1
    # instructor salaries in Physics: 87000, 95000 -> 91000 (int vs float)
    res = exec_match(UNI, "SELECT avg(salary) FROM instructor WHERE dept_id = 1", "SELECT 91000")
    assert res.score == 1


def test_failing_prediction_scores_zero() -> None:
    res = exec_match(MUSIC, "SELECT name FROM singer", "SELECT nope FROM singer")
    assert res.score == 0 and res.pred_error and "nope" in res.pred_error
    res = exec_match(MUSIC, "SELECT name FROM singer", "DROP TABLE singer")
    assert res.score == 0 and res.pred_error
    assert exec_match(MUSIC, "SELECT name FROM singer", "SELECT name FROM singer").score == 1
