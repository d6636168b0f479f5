"""The privacy guard's parts on the sample data: masking what the small model missed with fresh
symbols that unmask back, the value index (built once, keyed by the database file), the policy,
replies as real models write them, and the local check of symbol misuse."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from masksql_pipe.engine.stage import StageRun
from masksql_pipe.errors import ConfigError
from stages.add_symbolic_question import checked_links
from stages.answers.replies import ReplyParseError, parse_sql_reply
from stages.detect_values import DetectValues
from stages.link_values import LinkValues
from stages.privacy import value_index
from stages.privacy.guard import GuardBlocked, GuardPolicy, RowGuard
from stages.privacy.value_index import ValueIndex
from stages.sql.masking import unmask_sql
from stages.sql.schema import load_schema
from stages.sql.symbolic_check import symbol_misuse, symbolic_problems
from stages.sql.symbols import SymbolTable
from tests.conftest import ROOT, cli
from tests.masksql.test_pipeline import copy_data

DATA = ROOT / "data"
MUSIC = DATA / "databases" / "music_festival" / "music_festival.sqlite"


@pytest.fixture
def music(tmp_path: Path) -> tuple[object, ValueIndex]:
    schema = load_schema(DATA / "tables.json", "music_festival")
    return schema, ValueIndex.for_database(MUSIC, tmp_path / "index")


def guard_for(music, kept, policy=None) -> RowGuard:
    schema, index = music
    return RowGuard(schema, kept, SymbolTable.from_schema(schema.filter(kept)), index, policy)


def test_guard_masks_what_ranking_dropped_and_unmasking_restores_it(music) -> None:
    guard = guard_for(music, {"singer": ["singer_id"]})
    masked = guard.mask("What is the home town of Liam O'Brien, born 1984?")
    assert masked == "What is the C2 of V1, born V2?"
    assert "Home Town" in guard.filtered_schema()["singer"]  # the kept schema grew
    assert guard.changed
    sql = "SELECT T1.C2 FROM T1 WHERE T1.C3 = V1 AND C4 > V2"
    symbols = guard.symbols
    assert symbols.column_name("C3") == "name" and symbols.value("V1").column == "singer.name"
    symbols.add_column("age")
    assert unmask_sql(sql, symbols) == (
        "SELECT T1.\"Home Town\" FROM T1 WHERE T1.name = 'Liam O''Brien' AND age > 1984"
    ).replace("T1.", "singer.").replace("FROM T1", "FROM singer")


def test_guard_uses_the_small_models_symbols_first(music) -> None:
    guard = guard_for(music, {"singer": ["singer_id", "name", "country"]})
    first = guard.symbols.add_value("France", "singer.country", "France")
    assert guard.mask("singers from France") == f"T1 from {first}"
    assert len(guard.symbols.values) == 1


def test_number_policy_and_block_mode(music) -> None:
    text = "Which courses have 4 credits since 2014?"
    assert (
        guard_for(music, {}, GuardPolicy(number_digits=2))
        .mask(text)
        .endswith("have 4 credits since V1?")
    )
    assert guard_for(music, {}).mask(text).endswith("have V1 credits since V2?")
    blocking = guard_for(music, {}, GuardPolicy(mode="block"))
    with pytest.raises(GuardBlocked, match="prompt not sent"):
        blocking.enforce("the concerts of 2014", "question")
    assert blocking.enforce("How many T1 are there?", "question") == "How many T1 are there?"


def test_policy_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"privacy\.guard"):
        GuardPolicy.from_settings({"guard": "warn"})
    with pytest.raises(ConfigError, match=r"privacy\.number_digits"):
        GuardPolicy.from_settings({"number_digits": 0})
    folder = copy_data(tmp_path / "data")
    proc = cli("--data", str(folder), "privacy.guard=warn", cwd=tmp_path)
    assert proc.returncode == 2 and "privacy.guard" in proc.stderr


def test_value_index_is_built_once_and_keyed_by_the_database_file(tmp_path: Path) -> None:
    db = tmp_path / "music.sqlite"
    shutil.copy(MUSIC, db)
    first = ValueIndex.for_database(db, tmp_path / "index")
    stamp = first.path.stat().st_mtime_ns
    assert first.lookup(["glasgow", "liam o'brien", "nowhere"]).keys() == {
        "glasgow",
        "liam o'brien",
    }
    value_index._OPEN.clear()  # as a new run (another process) would find it: on disk only
    again = ValueIndex.for_database(db, tmp_path / "index")
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp
    with sqlite3.connect(db) as con:
        con.execute("UPDATE stadium SET location = 'Dundee' WHERE location = 'Glasgow'")
    changed = ValueIndex.for_database(db, tmp_path / "index")
    assert changed.path != first.path
    assert "dundee" in changed.lookup(["dundee"]) and not changed.lookup(["glasgow"])


def test_sql_replies_take_the_final_block_and_no_sql_fails() -> None:
    reply = (
        "Step 1, a draft:\n```sql\nSELECT C1 FROM T1\n```\nStep 2, with the filter:\n"
        "```sql\nSELECT C1 FROM T1 WHERE C2 = V1;\n```\nThat is the answer."
    )
    assert parse_sql_reply(reply) == "SELECT C1 FROM T1 WHERE C2 = V1"
    assert (
        parse_sql_reply("First SELECT 1;\nbetter:\nSELECT C1 FROM T1;\nok") == "SELECT C1 FROM T1"
    )
    for text in ("I am not sure how to answer that.", "", "```json\n[]\n```"):
        with pytest.raises(ReplyParseError):
            parse_sql_reply(text)


def test_local_check_catches_value_aliases_and_symbol_prose() -> None:
    schema = load_schema(DATA / "tables.json", "music_festival").filter({"singer": []})
    symbols = SymbolTable.from_schema(schema)
    symbols.add_value("France", "singer.country")
    assert symbol_misuse("SELECT C2 AS V1 FROM T1")
    assert symbol_misuse("SELECT C2 FROM T1 WHERE C3 LIKE 'a value of T1.C3'")
    assert symbol_misuse("SELECT C2 FROM T1 WHERE C3 LIKE '%V1%'") == []
    assert symbolic_problems("SELECT C2 AS V1 FROM T1", schema, symbols)
    assert symbolic_problems("SELECT C2 FROM T1 WHERE C3 = V1", schema, symbols) == []


def _stage_run(tmp_path: Path) -> StageRun:
    return StageRun(DATA, tmp_path, "x", tmp_path / "in.json", tmp_path / "out.json")


def test_detected_values_must_occur_in_the_question(tmp_path: Path) -> None:
    stage = DetectValues()
    stage._setup_dataset(_stage_run(tmp_path))
    row = {"db_id": "music_festival", "question": "Which singers come from \u2019France\u2019?"}
    reply = '```json\n["France", "singers", "singer.name", "10", "Spain"]\n```'
    assert stage._process_output(row, reply) == ["France"]
    assert row["values_dropped"] == ["singers", "singer.name", "10", "Spain"]


def test_a_link_to_a_column_ranking_dropped_is_kept(tmp_path: Path) -> None:
    stage = LinkValues()
    stage._setup_dataset(_stage_run(tmp_path))
    schema = load_schema(DATA / "tables.json", "music_festival")
    kept = {"singer": ["singer_id", "name"]}
    row = {
        "db_id": "music_festival",
        "question": "Which singers are older than 40?",
        "values": ["40"],
        "filtered_schema": kept,
        "symbols": SymbolTable.from_schema(schema.filter(kept)).to_dict(),
    }
    row["value_links"] = stage._process_output(row, '{"40": "singer.age"}')
    assert row["value_links"] == {"40": "singer.age"}
    stage._keep_linked_columns(row)
    assert "age" in row["filtered_schema"]["singer"]
    assert "age" in row["symbols"]["columns"].values()


def test_small_model_links_are_checked_before_masking(music) -> None:
    question = (
        "Which singers from France are older than the average age of singers from France? "
        "Which stadium has the largest capacity?"
    )
    links = {
        "France": "singer.country",  # a database value, not a column term
        "older than the average age of singers from France": "singer.age",  # not a term
        "stadium": "stadium.name",  # spells the table's own name
        "capacity": "singer.age",  # spells another column's name
        "older": "singer.age",  # a synonym the small model may well know
    }
    guard = guard_for(music, {"singer": ["singer_id"]})
    checked = checked_links(question, links, guard)
    assert checked == {"stadium": "stadium", "capacity": "stadium.capacity", "older": "singer.age"}
    # the linked items are kept again, with symbols, so the symbolic schema shows them
    assert guard.filtered_schema()["singer"] == ["singer_id", "age"]
    assert "capacity" in guard.filtered_schema()["stadium"]
    assert guard.symbols.column_symbol("capacity") and guard.symbols.column_symbol("age")


def test_a_link_that_would_hide_a_value_or_call_a_column_a_table_is_dropped(music) -> None:
    # seen with Qwen2.5-Coder-1.5B: "History department" -> department swallowed the value,
    # "total credits" -> student masked a column as a table
    question = "How many singers from France sang at the Glasgow stadium with the most seats?"
    links = {
        "singers": "singer",  # shares the table's stem: kept
        "Glasgow stadium": "stadium",  # holds the value Glasgow: dropped
        "most seats": "stadium",  # no word of the table's name: dropped
        "seats": "stadium.capacity",  # a column synonym: kept
    }
    guard = guard_for(music, {"singer": ["singer_id"], "stadium": ["stadium_id"]})
    checked = checked_links(question, links, guard)
    assert checked == {"singers": "singer", "seats": "stadium.capacity"}
    masked = guard.mask(question)
    assert "Glasgow" not in masked and "V1" in masked  # the guard masks it as a value


def test_a_masked_column_name_is_kept_in_every_kept_table_that_has_it(music) -> None:
    guard = guard_for(music, {"singer": ["singer_id"], "stadium": ["stadium_id"]})
    assert guard.mask("the names") == "the C3"
    kept = guard.filtered_schema()
    assert "name" in kept["singer"] and "name" in kept["stadium"]


def test_a_value_is_linked_to_a_column_that_holds_it(tmp_path: Path) -> None:
    stage = LinkValues()
    stage._setup_dataset(_stage_run(tmp_path))
    stage._index_dir = tmp_path / "index"
    row = {
        "db_id": "music_festival",
        "filtered_schema": {"stadium": ["stadium_id", "name"]},
        "value_links": {"Glasgow": "stadium.name", "France": "singer.country", "Mars": None},
    }
    stage._link_to_cells(row)
    assert row["value_links"] == {
        "Glasgow": "stadium.location",  # the cell's column replaces one without that cell
        "France": "singer.country",  # already a column that holds it
        "Mars": None,  # not a cell: left as the small model said
    }
