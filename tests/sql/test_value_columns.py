"""The value-column alignment against a real SQLite file: a comparison moves only when its column
holds the value in no row and exactly one column of the query's tables does; a value living in
several columns is kept with all of them (symbol table, prompt notes, old rows still read)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from stages.privacy.guard import symbolic_schema_problems
from stages.sql.schema import Schema, load_schema
from stages.sql.symbols import SymbolTable
from stages.sql.value_columns import align_value_columns, database_holds
from tests.conftest import cli, load

# team: T1, player: T2; C1 team_id, C2 title, C3 city, C4 player_id, C5 full_name, C6 work_rate
TEAMS = [(1, "Lions", "Paris"), (2, "Bears", "Rome"), (3, "Owls", "Oslo")]
PLAYERS = [(1, "Paris", "high", 1), (2, "Ann Lee", "low", 2), (3, "Bo Rome", "medium", 3)]
JOIN = "SELECT A2.C4 FROM T2 AS A2 JOIN T1 AS A1 ON A2.C1 = A1.C1 WHERE"


def write_league(folder: Path) -> Path:
    """A Spider-layout folder with one database: 'Paris' is a team's city and a player's name."""
    db = folder / "databases" / "league" / "league.sqlite"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE team(team_id INTEGER PRIMARY KEY, title TEXT, city TEXT)")
        con.execute(
            "CREATE TABLE player(player_id INTEGER PRIMARY KEY, full_name TEXT, work_rate TEXT,"
            " team_id INTEGER REFERENCES team(team_id))"
        )
        con.executemany("INSERT INTO team VALUES (?, ?, ?)", TEAMS)
        con.executemany("INSERT INTO player VALUES (?, ?, ?, ?)", PLAYERS)
    names = [["team_id", "title", "city"], ["player_id", "full_name", "work_rate", "team_id"]]
    columns = [[-1, "*"]] + [[t, c] for t, cols in enumerate(names) for c in cols]
    tables = {
        "db_id": "league",
        "table_names_original": ["team", "player"],
        "table_names": ["team", "player"],
        "column_names_original": columns,
        "column_names": columns,
        "column_types": ["text", "number", "text", "text", "number", "text", "text", "number"],
        "primary_keys": [1, 4],
        "foreign_keys": [[7, 1]],
    }
    (folder / "tables.json").write_text(json.dumps([tables]), encoding="utf-8")
    return db


@pytest.fixture
def league(tmp_path: Path) -> tuple[Path, Schema, SymbolTable]:
    """The database, its schema, and symbols: V1 Paris (linked to team.city only, as an old row
    has it), V2 Rome (team.city), V3 high (player.work_rate)."""
    db = write_league(tmp_path / "league")
    schema = load_schema(tmp_path / "league" / "tables.json", "league")
    symbols = SymbolTable.from_schema(schema)
    assert symbols.item_symbol("player.full_name") == "T2.C5"  # the layout the queries use
    assert symbols.item_symbol("team.city") == "T1.C3"
    symbols.add_value("Paris", "team.city", "Paris")
    symbols.add_value("Rome", "team.city", "Rome")
    symbols.add_value("high", "player.work_rate", "high")
    return db, schema, symbols


def align(sql: str, league: tuple[Path, Schema, SymbolTable]) -> tuple[str, list[str]]:
    db, schema, symbols = league
    return align_value_columns(sql, symbols, schema, database_holds(db))


def test_a_comparison_with_a_column_holding_the_value_is_never_moved(league) -> None:
    """Paris is a player's name and a team's city (its linked column): the oracle's queries
    comparing it with either, or both, stay exactly as written."""
    for sql in (
        f"{JOIN} A2.C5 = V1",
        f"{JOIN} A1.C3 = V1 OR A2.C5 = V1",
        f"{JOIN} A2.C5 LIKE '%V1%'",
        "SELECT C4 FROM T2 JOIN T1 ON T2.C1 = T1.C1 WHERE T2.C5 = 'V1'",
    ):
        assert align(sql, league) == (sql, []), sql


def test_a_column_without_the_value_moves_to_the_one_column_that_has_it(league) -> None:
    """No player is named Rome, only a team's city is: the comparison moves there, keeping the
    query's own alias or qualifier."""
    cases = {
        f"{JOIN} A2.C5 = V2": f"{JOIN} A1.C3 = V2",
        f"{JOIN} A2.C6 <> V2": f"{JOIN} A1.C3 <> V2",
        "SELECT C2 FROM T1 WHERE C2 = V2": "SELECT C2 FROM T1 WHERE T1.C3 = V2",
        "SELECT C2 FROM T1 t WHERE t.C2 NOT LIKE 'V2%'": (
            "SELECT C2 FROM T1 t WHERE t.C3 NOT LIKE 'V2%'"
        ),
        # '%Rome%' matches a player's name (Bo Rome), no work rate
        "SELECT a.C4 FROM T2 AS a WHERE a.C6 LIKE '%V2%'": (
            "SELECT a.C4 FROM T2 AS a WHERE a.C5 LIKE '%V2%'"
        ),
    }
    for sql, expected in cases.items():
        aligned, changes = align(sql, league)
        assert aligned == expected, sql
        assert len(changes) == 1 and "holds V2" in changes[0], changes


def test_two_candidate_columns_or_none_leave_the_query_alone(league, tmp_path: Path) -> None:
    """Paris as a work rate (no row) could be the player's name or the team's city: not moved.
    Nor when no column of the query's tables holds it, the comparison is not `=`/`LIKE`, or the
    database cannot be asked."""
    db, schema, symbols = league
    for sql in (
        f"{JOIN} A2.C6 = V1",  # full_name and city both hold Paris
        "SELECT C4 FROM T2 WHERE C6 = V2",  # Rome: only a team's city, and T1 is not read
        "SELECT C2 FROM T1 WHERE C2 > V2",
    ):
        assert align(sql, league) == (sql, []), sql
    moved = "SELECT C2 FROM T1 WHERE C2 = V2"
    for holds in (database_holds(tmp_path / "missing.sqlite"), database_holds(db, budget=0)):
        assert align_value_columns(moved, symbols, schema, holds) == (moved, [])


def test_old_rows_read_and_every_column_reaches_the_notes(league) -> None:
    """An entry written with one `column` reads as before; one with several keeps them all,
    in its JSON, after a round trip and in the prompt notes, which the guard accepts."""
    _, schema, symbols = league
    assert symbols.to_dict()["values"]["V1"] == {
        "value": "Paris",
        "column": "team.city",
        "surfaces": ["Paris"],
    }
    symbols.add_value("Paris", None, "paris", ["player.full_name", "team.city"])
    data = json.loads(json.dumps(symbols.to_dict()))
    assert data["values"]["V1"]["columns"] == ["team.city", "player.full_name"]
    back = SymbolTable.from_dict(data)
    assert back.value("V1").columns == ["team.city", "player.full_name"]
    assert back.value_notes()[0] == "V1: a value of T1.C3 or T2.C5"
    notes = "\n".join(["T1(C1 number primary key, C3 text)", "Values:", *back.value_notes()])
    assert symbolic_schema_problems(notes, schema) == []
    assert symbolic_schema_problems(notes + " or Paris", schema) != []


def test_oracle_run_rewrites_nothing_and_shows_both_columns(tmp_path: Path) -> None:
    """The masked pipeline with the oracle on questions whose value lives in two columns: the
    prompt notes name both (when the row keeps both), no query is rewritten, every row is
    right. Before, the first row's `T1.C5 = V1` was moved to V1's one linked column."""
    folder = tmp_path / "data"
    write_league(folder)
    rows = [
        {
            "question_id": 1,
            "db_id": "league",
            "question": "Which players are called Paris or play for a team from Paris?",
            "query": "SELECT T1.player_id FROM player AS T1 JOIN team AS T2 ON T1.team_id ="
            " T2.team_id WHERE T2.city = 'Paris' OR T1.full_name = 'Paris'",
        },
        {
            "question_id": 2,
            "db_id": "league",
            "question": "What is the work rate of the player called Paris?",
            "query": "SELECT T1.work_rate FROM player AS T1 JOIN team AS T2 ON T1.team_id ="
            " T2.team_id WHERE T1.full_name = 'Paris'",
        },
    ]
    (folder / "1_input.json").write_text(json.dumps(rows), encoding="utf-8")
    proc = cli("--data", str(folder), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (final,) = folder.glob("*_Results.json")
    results = load(final)
    for row in results:
        symbols = SymbolTable.from_dict(row["symbols"])
        kept = {symbols.item_symbol("team.city"), symbols.item_symbol("player.full_name")}
        kept.discard(None)  # a column the row's schema does not keep is not named
        note = next(n for n in symbols.value_notes() if n.startswith("V1:"))
        assert set(note.removeprefix("V1: a value of ").split(" or ")) == kept, note
        assert note in row["symbolic_schema"]
        assert "symbolic_sql_unaligned" not in row and "value_columns_aligned" not in row
        assert row["exec_acc"] == 1
    assert " or " in SymbolTable.from_dict(results[0]["symbols"]).value_notes()[0]
