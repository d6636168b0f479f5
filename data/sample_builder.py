"""What both sample builders share: SQLite files from table tuples, Spider tables.json entries,
the JSON files, and the check that every gold query runs.

A table is (name, [(column, sqlite type, spider type)], primary key columns,
foreign keys [(column, ref_table, ref_column)], rows).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_database(path: Path, tables: list[tuple]) -> None:
    """Create one SQLite file from scratch (old file removed first, so output is deterministic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        for name, cols, pks, fks, rows in tables:
            defs = [f"{_q(c)} {sqlt}" for c, sqlt, _ in cols]
            defs.append(f"PRIMARY KEY ({', '.join(_q(p) for p in pks)})")
            defs += [f"FOREIGN KEY ({_q(c)}) REFERENCES {_q(t)}({_q(r)})" for c, t, r in fks]
            con.execute(f"CREATE TABLE {_q(name)} ({', '.join(defs)})")
            marks = ", ".join("?" for _ in cols)
            con.executemany(f"INSERT INTO {_q(name)} VALUES ({marks})", rows)
        con.commit()
        con.execute("VACUUM")
    finally:
        con.close()


def tables_entry(db_id: str, tables: list[tuple]) -> dict:
    """The Spider tables.json entry of one database."""
    names = [t[0] for t in tables]
    columns: list[list] = [[-1, "*"]]
    types = ["text"]
    index: dict[tuple[str, str], int] = {}
    for t_idx, (tname, cols, _, _, _) in enumerate(tables):
        for cname, _, stype in cols:
            index[(tname, cname)] = len(columns)
            columns.append([t_idx, cname])
            types.append(stype)
    pks = []
    for tname, _, tpks, _, _ in tables:
        idx = [index[(tname, p)] for p in tpks]
        pks.append(idx[0] if len(idx) == 1 else idx)
    fks = [
        [index[(tname, c)], index[(ref, rc)]]
        for tname, _, _, tfks, _ in tables
        for c, ref, rc in tfks
    ]
    return {
        "db_id": db_id,
        "table_names_original": names,
        "table_names": [n.replace("_", " ").lower() for n in names],
        "column_names_original": columns,
        "column_names": [[t, c.replace("_", " ").lower()] for t, c in columns],
        "column_types": types,
        "primary_keys": pks,
        "foreign_keys": fks,
    }


def dump(path: Path, data: object) -> None:
    """Write JSON as the shipped files are: 2-space indent, UTF-8 unescaped, final newline."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_sample(
    databases: dict[str, list[tuple]],
    folder: Path,
    tables_file: Path,
    questions_file: Path,
    rows: list[dict],
    sql_key: str,
) -> None:
    """Write each database under `folder`/<db_id>/<db_id>.sqlite, the tables and questions
    files, then run every gold query (`row[sql_key]`) and print which returned no rows."""
    for db_id, tables in databases.items():
        build_database(folder / db_id / f"{db_id}.sqlite", tables)
    dump(tables_file, [tables_entry(db, t) for db, t in databases.items()])
    dump(questions_file, rows)
    empty = []
    for row in rows:
        db_path = folder / row["db_id"] / f"{row['db_id']}.sqlite"
        con = sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)
        try:
            if not con.execute(row[sql_key]).fetchall():
                empty.append(row["question_id"])
        finally:
            con.close()
    print(f"wrote {len(rows)} questions over {len(databases)} databases; empty results: {empty}")
