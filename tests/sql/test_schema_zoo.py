"""The symbolic schema and the guard's last check over a zoo of schemas (tests/helpers_zoo.py):
every declared-type form of SQLite's grammar passes and round-trips exactly with the oracle;
a real name or cell anywhere in a symbolic schema, a declared type included, is caught; a
declared type that names something is shown as its affinity; RowGuard masks every name and
cell of every zoo database."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from stages.privacy.guard import RowGuard, symbolic_schema_problems
from stages.privacy.value_index import ValueIndex
from stages.sql.masking import symbolic_schema
from stages.sql.schema import Column, Schema, Table, load_schema, shown_type
from stages.sql.symbols import SymbolTable
from tests.conftest import cli, load
from tests.helpers_zoo import DATABASES, QUESTIONS, build_zoo
from tests.masksql.test_pipeline import recomputed_accuracy
from tests.privacy.test_privacy_end_to_end import (
    last_file,
    leaks_in_llm_prompts,
    mentions,
    prompt_logs,
)

SHOWN = {  # declared type (as SQLite reports it) -> as the symbolic schema must show it
    "varchar(255)": "varchar(255)",
    "decimal(10, 2)": "decimal(10,2)",
    "double precision": "double precision",
    "unsigned big int": "unsigned big int",
    "character varying(20)": "character varying(20)",
    "int(11)": "int(11)",
    "numeric(-5, +3)": "numeric(-5,+3)",
    "": "",
    "date": "date",
    "gizmo": "numeric",  # the name of a table of the database: its affinity instead
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zoo(tmp_path_factory.mktemp("zoo") / "data")


@pytest.fixture(scope="module")
def zoo_run(zoo: Path) -> Path:
    proc = cli("--data", str(zoo), cwd=zoo.parent)
    assert proc.returncode == 0, proc.stderr
    return zoo


def guard_of(zoo: Path, db_id: str, tmp: Path) -> RowGuard:
    schema = load_schema(zoo / "tables.json", db_id)
    db = zoo / "databases" / db_id / f"{db_id}.sqlite"
    return RowGuard(schema, {}, SymbolTable(), ValueIndex.for_database(db, tmp / "index"))


def secrets(zoo: Path, db_id: str) -> list[str]:
    """Every table and column name and every text cell of one zoo database, read directly."""
    entry = next(e for e in load(zoo / "tables.json") if e["db_id"] == db_id)
    found = set(entry["table_names_original"])
    found |= {c for t, c in entry["column_names_original"] if t >= 0}
    with sqlite3.connect(zoo / "databases" / db_id / f"{db_id}.sqlite") as con:
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            for row in con.execute(f'SELECT * FROM "{table}"'):
                found |= {c for c in row if isinstance(c, str)}
    return sorted(found)


def full_rendering(guard: RowGuard) -> str:
    """Every table and column of the guard's database with symbols, two value notes."""
    symbols = SymbolTable.from_schema(guard.schema)
    first = guard.schema.tables[0]
    symbols.add_value("x", f"{first.name}.{first.columns[-1].name}", "x")
    symbols.add_value("y", None, "y")
    guard.symbols = symbols
    guard.kept = {t.name: [] for t in guard.schema.tables}
    return guard.render_schema()


def test_oracle_round_trip_is_exact_on_every_zoo_database(zoo_run: Path) -> None:
    rows = load(last_file(zoo_run))
    assert len(rows) == sum(len(q) for q in QUESTIONS.values())
    assert [r["pipe_error"] for r in rows if "pipe_error" in r] == []
    for db_id in DATABASES:
        assert [r["exec_acc"] for r in rows if r["db_id"] == db_id] == [1] * len(QUESTIONS[db_id])
    assert recomputed_accuracy(zoo_run, rows) == 1.0
    found, checked = leaks_in_llm_prompts(zoo_run)
    assert checked >= len(rows) and found == []


def test_declared_types_are_shown_in_grammar_or_as_their_affinity(zoo_run: Path) -> None:
    schemas = "\n".join(r["symbolic_schema"] for r in load(last_file(zoo_run)))
    for declared, shown in SHOWN.items():
        assert re.search(rf"C\d+{' ' if shown else ''}{re.escape(shown)}[,)]", schemas), declared
    # `tint amber`: the type is a cell of the database, only the guard knows it: affinity
    assert re.search(r"C\d+ numeric[,)]", schemas) and "amber" not in schemas.lower()
    assert "gizmo" not in schemas.lower()


@pytest.mark.parametrize(
    ("declared", "shown"),
    [
        ("varchar(max)", "text"),  # not grammar: SQLite's affinity rules, in their order
        ("decimal(1,2,3)", "numeric"),
        ("floating point(2", "integer"),  # INT comes first: SQLite's own example
        ("double(x)", "real"),
        ("blob 'x'", "blob"),
        ("Tinyint(1)", "Tinyint(1)"),
        ("int8  unsigned ( 3 )", "int8 unsigned(3)"),
        ("point", "integer"),  # a column name of the schema, and holds INT
    ],
)
def test_shown_type_follows_sqlites_grammar_and_affinity(declared: str, shown: str) -> None:
    schema = Schema("s", [Table("t", [Column("t", "point", "text")])])
    assert shown_type(declared, schema.is_name) == shown
    rendered = symbolic_schema(
        Schema("s", [Table("t", [Column("t", "point", declared)])]), SymbolTable.from_schema(schema)
    )
    assert rendered == f"T1(C1 {shown})"
    assert symbolic_schema_problems(rendered, schema) == []


@pytest.mark.parametrize("db_id", list(DATABASES))
def test_guard_passes_every_rendering_and_catches_every_real_word(
    zoo: Path, db_id: str, tmp_path: Path
) -> None:
    guard = guard_of(zoo, db_id, tmp_path)
    text = full_rendering(guard)
    assert guard.schema_problems(text) == []
    table_line, *rest = text.splitlines()
    for secret in secrets(zoo, db_id):
        words = [w.lower() for w in re.findall(r"\w+", secret)]
        for bad in (
            text.replace("(C1 ", f"(C1 {secret} ", 1),  # inside a declared type
            "\n".join([f"{table_line[:-1]}, C99 {secret})", *rest]),  # as a whole type
            f"{text}\n{secret}",
            f"{text}\nV9: a value of {secret}",
            f"{text}\nT1.C1 = {secret}",
            f"{secret}({text.splitlines()[0][3:]}",  # as the table
        ):
            odd = " ".join(guard.schema_problems(bad)).lower()
            assert any(w in odd for w in words), (secret, bad)


def test_a_declared_type_naming_a_table_or_cell_is_caught(zoo: Path, tmp_path: Path) -> None:
    guard = guard_of(zoo, "gizmo_types", tmp_path)
    assert guard.schema_problems("T1(C1 gizmo, C2 unsigned big int)") == ["gizmo"]
    assert guard.schema_problems("T1(C1 big placard int(11))") == ["placard"]
    assert guard.schema_problems("T1(C1 amber primary key)") == ["amber"]  # a cell
    assert symbolic_schema_problems("T1(C1 amber primary key)", guard.schema) == []
    assert guard.schema_problems("T1(C1 text, C2 integer)\nFoo bar:") == ["Foo", "bar"]


@pytest.mark.parametrize("db_id", list(DATABASES))
def test_row_guard_masks_every_name_and_cell(zoo: Path, db_id: str, tmp_path: Path) -> None:
    guard = guard_of(zoo, db_id, tmp_path)
    everything = secrets(zoo, db_id)
    masked = guard.mask("Tell me about " + "; and ".join(everything) + "?")
    assert [s for s in everything if mentions(masked, s)] == []
    assert re.fullmatch(r"Tell me about [TCV]\d+(; and [TCV]\d+)*\?", masked), masked


def test_a_blocked_schema_names_its_words_and_sends_nothing(tmp_path: Path) -> None:
    folder = build_zoo(tmp_path / "data")
    args = ["--data", str(folder), "--limit", "2", "--max-errors", "9"]
    assert cli(*args, cwd=tmp_path).returncode == 0
    before = sum(e["row"] == 0 for e in prompt_logs(folder)["11_GenerateSymbolicSql"])
    (edited,) = folder.glob("*_AddSymbolicQuestion.json")
    rows = load(edited)
    assert "varchar(255)" in rows[0]["symbolic_schema"]
    rows[0]["symbolic_schema"] = rows[0]["symbolic_schema"].replace("varchar(255)", "moniker")
    edited.write_text(json.dumps(rows), encoding="utf-8")
    assert cli(*args, cwd=tmp_path).returncode == 0
    row = load(last_file(folder))[0]
    assert row["pipe_error"]["type"] == "GuardBlocked"
    assert "'moniker'" in row["pipe_error"]["message"]
    assert sum(e["row"] == 0 for e in prompt_logs(folder)["11_GenerateSymbolicSql"]) == before
    assert not any(
        "moniker" in json.dumps(e) for e in prompt_logs(folder)["11_GenerateSymbolicSql"]
    )
