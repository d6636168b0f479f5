"""MaskSQL stage helpers checked against hand-made answers: the local symbolic SQL check, model
reply normalization, re-identification scoring, the results summary; and relocation/staleness."""

from __future__ import annotations

import shutil
from pathlib import Path

from stages.add_inference_attack import reidentification
from stages.link_values import resolve_column
from stages.pipelines.masksql import mask_coverage, summarize
from stages.rank_schema_items import normalize_items, oracle_items
from stages.sql.schema import load_schema
from stages.sql.symbolic_check import symbolic_problems
from stages.sql.symbols import SymbolTable
from tests.conftest import cli, load
from tests.masksql.test_pipeline import copy_data

DATA = Path(__file__).resolve().parents[2] / "data"
MUSIC = load_schema(DATA / "tables.json", "music_festival")


def singer_symbols() -> tuple[object, SymbolTable]:
    kept = MUSIC.filter({"singer": ["name", "country"], "concert": ["year"]})
    symbols = SymbolTable.from_schema(kept)
    symbols.add_value("France", "singer.country", "France")
    return kept, symbols


def test_symbol_layout_used_below() -> None:
    _, symbols = singer_symbols()
    assert symbols.tables == {"T1": "singer", "T2": "concert"}
    assert symbols.columns == {
        "C1": "singer_id",
        "C2": "name",
        "C3": "country",
        "C4": "concert_id",
        "C5": "year",
    }


def test_symbolic_check_accepts_good_queries() -> None:
    kept, symbols = singer_symbols()
    assert symbolic_problems("SELECT C2 FROM T1 WHERE C3 = V1", kept, symbols) == []
    assert symbolic_problems("SELECT C2 FROM T1 WHERE C3 LIKE '%V1%'", kept, symbols) == []
    assert symbolic_problems("SELECT A1.C2 FROM T1 AS A1 JOIN T2 AS A2 ON 1", kept, symbols) == []


def test_symbolic_check_finds_problems() -> None:
    kept, symbols = singer_symbols()
    assert symbolic_problems("SELECT C9 FROM T1", kept, symbols) == ["no such column: C9"]
    assert symbolic_problems("SELECT C2 FROM T7", kept, symbols) == ["no such table: T7"]
    assert symbolic_problems("SELECT C5 FROM T1", kept, symbols) == ["no such column: C5"]
    assert symbolic_problems("SELECT C2 FROM T1 WHERE C3 = V4", kept, symbols) == [
        "no such column: V4"
    ]
    assert symbolic_problems("", kept, symbols) == ["the query is empty"]
    assert "syntax error" in symbolic_problems("SELECT FROM WHERE", kept, symbols)[0]
    for hostile in ("DROP TABLE T1", "DELETE FROM T1", "ATTACH DATABASE 'x.db' AS x"):
        problems = symbolic_problems(hostile, kept, symbols)
        assert len(problems) == 1 and "not authorized" in problems[0], hostile
    assert symbolic_problems("SELECT 1; SELECT 2", kept, symbols)


def test_normalize_items_keeps_known_names_in_schema_spelling() -> None:
    reply = {"SINGER": ["Name", "nope"], "ghost": ["x"], "concert": "year"}
    assert normalize_items(reply, MUSIC) == {"singer": ["name"], "concert": ["year"]}
    assert normalize_items(["singer.age", "stadium", "x.y"], MUSIC) == {
        "singer": ["age"],
        "stadium": [],
    }
    assert normalize_items("text", MUSIC) == {}


def test_oracle_items_add_what_the_question_names() -> None:
    items = oracle_items(
        "What are the names of singers who have not performed in any concert?",
        "SELECT name FROM singer WHERE singer_id NOT IN (SELECT singer_id FROM singer_in_concert)",
        MUSIC,
    )
    assert items == {
        "singer": ["singer_id", "name"],
        "singer_in_concert": ["singer_id"],
        "concert": ["concert_id"],  # named: kept with its key; "names" is already covered
    }
    items = oracle_items(
        "Which students have more total credits than every student of the History department?",
        "SELECT name FROM student WHERE tot_cred > 5",
        load_schema(DATA / "tables.json", "university"),
    )
    assert items == {
        "department": ["dept_id"],
        "student": ["name", "tot_cred"],
        "course": ["credits"],
    }


def test_resolve_column() -> None:
    kept, _ = singer_symbols()
    assert resolve_column("singer.country", kept) == ("singer.country", "text")
    assert resolve_column("YEAR", kept) == ("concert.year", "number")
    assert resolve_column("singer.year", kept) is None
    assert resolve_column(None, kept) is None


def test_reidentification_counts_case_insensitive_matches() -> None:
    _, symbols = singer_symbols()  # 2 tables + 5 columns + 1 value = 8 symbols
    guesses = {"T1": "Singer", "c2": "NAME", "C3": "nation", "V1": "france", "T2": ["x"]}
    score = reidentification(guesses, symbols)
    assert score == {
        "symbols": 8,
        "reidentified": 3,
        "rate": 0.375,
        "reidentified_symbols": ["T1", "C2", "V1"],
    }
    assert reidentification({}, symbols)["rate"] == 0.0


def test_summary_by_hand() -> None:
    rows = [
        {
            "exec_acc": 1,
            "total_toks": 10,
            "total_latency": 0.5,
            "reidentification": {"symbols": 4, "reidentified": 1, "rate": 0.25},
            "symbolic_question": "How many T1 from V1?",
            "gold_links": ["singers", "France"],
        },
        {
            "exec_acc": 0,
            "total_toks": 30,
            "total_latency": 1.5,
            "reidentification": {"symbols": 6, "reidentified": 0, "rate": 0.0},
            "symbolic_question": "Which T1 sing in Paris?",
            "gold_links": ["Paris"],
        },
        {"total_toks": 2, "pipe_error": {"stage": "LinkValues", "type": "X", "message": "m"}},
    ]
    assert mask_coverage(rows[0]) == (2, 2)
    assert mask_coverage(rows[1]) == (0, 1)
    assert mask_coverage(rows[2]) is None
    summary = summarize(rows)
    assert summary["rows"] == 3 and summary["correct"] == 1
    assert summary["exec_acc"] == round(1 / 3, 6)
    assert summary["tokens"] == {"total": 42, "mean": 14.0}
    assert summary["latency"] == {"total": 2.0, "mean": round(2 / 3, 6)}
    assert summary["privacy"]["reidentification_rate"] == 0.1
    assert summary["privacy"]["reidentification_mean"] == 0.125
    assert summary["privacy"]["mask_coverage"] == round(2 / 3, 6)
    assert summary["errors"] == {"rows": 1, "by_stage": {"LinkValues": 1}}


def test_moved_folder_stays_up_to_date_and_schema_edit_reruns(tmp_path: Path) -> None:
    folder = copy_data(tmp_path / "a" / "data")
    assert cli("--data", str(folder), "--limit", "2", cwd=tmp_path).returncode == 0
    moved = tmp_path / "b" / "data"
    shutil.move(str(folder.parent), str(moved.parent))
    proc = cli("--data", str(moved), "--limit", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ran" not in {
        line.split("│")[2].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("│") and "_" in line
    }
    tables = load(moved / "tables.json")
    (moved / "tables.json").write_text(__import__("json").dumps(tables, indent=1))
    proc = cli("--data", str(moved), "--limit", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ran = [line for line in proc.stderr.splitlines() if "RankSchemaItems.json" in line]
    assert ran and "ran" in ran[0]
