"""The original MaskSQL's EA, RIS and MCS on hand-built cases, values worked out by hand."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from stages.metrics.original import (
    annotated_terms,
    masked_terms,
    original_exec_match,
    original_mcs,
    original_ris,
)
from stages.sql.exec_match import exec_match
from stages.sql.execution import run_sql


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(2, "x"), (1, "y"), (3, "z")])
    con.commit()
    con.close()
    return path


def test_row_order_without_order_by_splits_the_two_definitions(db: Path):
    gold = "SELECT a FROM t"  # rows come back 2, 1, 3
    pred = "SELECT a FROM t ORDER BY a"  # 1, 2, 3: same multiset, other order
    assert exec_match(db, gold, pred).score == 1  # ours: gold has no ORDER BY -> multiset
    assert original_exec_match(run_sql(db, gold), run_sql(db, pred)) == 0  # list equality


def test_column_order_and_shared_failures(db: Path):
    gold, pred = "SELECT a, b FROM t", "SELECT b, a FROM t"
    assert exec_match(db, gold, pred).score == 1  # ours allows a column permutation
    assert original_exec_match(run_sql(db, gold), run_sql(db, pred)) == 0
    same = "SELECT a, b FROM t"
    assert original_exec_match(run_sql(db, gold), run_sql(db, same)) == 1
    # two failing queries are both None in the original, hence "equal"
    broken = "SELECT nope FROM t"
    assert original_exec_match(run_sql(db, broken), run_sql(db, broken)) == 1
    assert exec_match(db, broken, broken).score == 0


def test_masked_terms_from_the_two_texts():
    question = "How many singers are from 'France' and older than 30?"
    symbolic = "How many T1 are from V1 and older than V2?"
    assert masked_terms(question, symbolic) == ["singers", "France", "30"]
    assert masked_terms("Name the home town of each singer", "Name the C1 of each T1") == [
        "home town",
        "singer",
    ]
    assert masked_terms("Nothing masked", "Nothing masked") == []


def test_ris_by_hand():
    terms = ["singers", "France", "30"]
    # the attacker recovers "singers" (as a substring of "Singers") and "30", not France
    rewrite = "How many Singers are from Germany and older than 30?"
    # found 2 of 3 -> RIS = 1 - 2/3
    assert original_ris(terms, rewrite) == pytest.approx(1 - 2 / 3)
    assert original_ris(terms, "How many T1 are from V1 and older than V2?") == 1.0
    assert original_ris([], "anything") == 1.0


def test_mcs_by_hand():
    terms = ["singers", "home town"]
    # annotated: "singers" in "singers", "town" in "home town", "age" in neither -> 2 of 3
    score, covered = original_mcs(["singers", "town", "age"], terms)
    assert (covered, score) == (2, pytest.approx(2 / 3))
    assert original_mcs([], terms) == (1.0, 0)


def test_annotated_terms_read_either_field():
    assert annotated_terms({"annotated_links": {"singers": "singer"}}) == ["singers"]
    assert annotated_terms({"gold_links": ["age", " "]}) == ["age"]
    assert annotated_terms({"question": "q"}) is None
