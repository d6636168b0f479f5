"""tables.json and the databases agree, or the run stops before the first stage: a renamed
table or column, a db_id declared twice, an empty or non-SQLite database file each stop the run
with one line naming the file (exit 2, nothing written); `data.schema_check=warn` runs anyway
and records the disagreement on each affected row. Real SQLite files, the real CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from tests.conftest import cli, load, write_rows

SHOP = {
    "db_id": "shop",
    "table_names_original": ["items"],
    "table_names": ["items"],
    "column_names_original": [[-1, "*"], [0, "id"], [0, "name"]],
    "column_names": [[-1, "*"], [0, "id"], [0, "name"]],
    "column_types": ["text", "number", "text"],
    "primary_keys": [1],
    "foreign_keys": [],
}
ZOO = {**SHOP, "db_id": "zoo"}


def make_db(path: Path, create: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        con.execute(create)
        table = create.split()[2]
        con.execute(f"INSERT INTO {table} VALUES (1, 'lamp'), (2, 'desk')")
    return path


def dataset(folder: Path, shop_create: str = "CREATE TABLE items (id INTEGER, name TEXT)") -> Path:
    """Two databases (shop, zoo), their tables.json, one question on each."""
    make_db(folder / "databases" / "shop" / "shop.sqlite", shop_create)
    make_db(
        folder / "databases" / "zoo" / "zoo.sqlite", "CREATE TABLE items (id INTEGER, name TEXT)"
    )
    (folder / "tables.json").write_bytes(orjson.dumps([SHOP, ZOO]))
    ask = {"question": "How many items are there?", "query": "SELECT count(*) FROM items"}
    write_rows(folder / "1_input.json", [{"db_id": "zoo", **ask}, {"db_id": "shop", **ask}])
    return folder


def stage_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.json") if p.name[0].isdigit() and p.name[1] != "_")


def stops(folder: Path, *args: str) -> str:
    """Run; it must stop with exit 2 before any stage, on one line; that line."""
    proc = cli("--data", str(folder), *args, cwd=folder.parent)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert stage_files(folder) == [], "a stage ran before the check"
    (line,) = [ln for ln in proc.stderr.splitlines() if "schema_check" in ln]
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


def test_agreeing_dataset_runs_and_names_are_compared_case_insensitively(tmp_path: Path) -> None:
    folder = dataset(tmp_path / "data", "CREATE TABLE ITEMS (ID INTEGER, Name TEXT)")
    cased = {
        **SHOP,
        "table_names_original": ["Items"],
        "column_names_original": [[-1, "*"], [0, "iD"], [0, "NAME"]],
    }
    (folder / "tables.json").write_bytes(orjson.dumps([cased, ZOO]))
    proc = cli("--data", str(folder), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert load(folder / "results.json")["exec_acc"] == 1.0


@pytest.mark.parametrize(
    ("create", "expected"),
    [
        ("CREATE TABLE t1 (c1 INTEGER, c2 TEXT)", "table 'items'"),
        ("CREATE TABLE items (id INTEGER, label TEXT)", "column items.'name'"),
    ],
)
def test_renamed_table_or_column_stops_the_run(tmp_path: Path, create: str, expected: str) -> None:
    folder = dataset(tmp_path / "data", create)
    line = stops(folder)
    db = folder / "databases" / "shop" / "shop.sqlite"
    assert line.startswith(f"{db}: {expected} of tables.json (db_id 'shop') is not in the database")


def test_duplicate_db_id_stops_the_run(tmp_path: Path) -> None:
    folder = dataset(tmp_path / "data")
    other = {**SHOP, "table_names_original": ["goods"], "table_names": ["goods"]}
    (folder / "tables.json").write_bytes(orjson.dumps([SHOP, ZOO, other]))
    line = stops(folder)
    assert f"{folder / 'tables.json'}: db_id 'shop' is declared more than once" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "empty file (0 bytes)"), (b"id,name\n1,lamp\n" * 40, "not a readable SQLite database")],
)
def test_empty_or_foreign_database_file_stops_the_run(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    folder = dataset(tmp_path / "data")
    db = folder / "databases" / "shop" / "shop.sqlite"
    db.write_bytes(content)
    line = stops(folder)
    assert line.startswith(f"{db}: {expected}")


def test_only_the_databases_of_the_rows_run_are_checked(tmp_path: Path) -> None:
    folder = dataset(tmp_path / "data", "CREATE TABLE t1 (c1 INTEGER, c2 TEXT)")
    proc = cli("--data", str(folder), "--limit", "1", cwd=tmp_path)  # row 0 is on zoo
    assert proc.returncode == 0, proc.stderr


def test_warn_runs_and_records_the_mismatch_on_affected_rows(tmp_path: Path) -> None:
    folder = dataset(tmp_path / "data", "CREATE TABLE items (id INTEGER, label TEXT)")
    proc = cli(
        "--data", str(folder), "data.schema_check=warn", "--max-errors", "5", cwd=tmp_path
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (last,) = folder.glob("*_Results.json")
    zoo, shop = load(last)
    assert "schema_mismatch" not in zoo
    db = folder / "databases" / "shop" / "shop.sqlite"
    assert shop["schema_mismatch"].startswith(f"{db}: column items.'name'")
    assert load(folder / "results.json")["schema_mismatch_rows"] == 1
    assert "disagrees with tables.json" in proc.stdout + proc.stderr


def test_a_bad_schema_check_setting_is_one_line(tmp_path: Path) -> None:
    folder = dataset(tmp_path / "data")
    proc = cli("--data", str(folder), "data.schema_check=maybe", cwd=tmp_path)
    assert proc.returncode == 2
    assert "data.schema_check" in proc.stderr and "Traceback" not in proc.stderr


def test_warn_on_a_foreign_file_fails_its_rows_with_the_path(tmp_path: Path) -> None:
    folder = dataset(tmp_path / "data")
    db = folder / "databases" / "shop" / "shop.sqlite"
    db.write_bytes(b"id,name\n1,lamp\n" * 40)
    proc = cli(
        "--data", str(folder), "data.schema_check=warn", "--max-errors", "5", cwd=tmp_path
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (last,) = folder.glob("*_Results.json")
    zoo, shop = load(last)
    assert "pipe_error" not in zoo
    assert str(db) in shop["pipe_error"]["message"]
