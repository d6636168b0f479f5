"""A schema zoo written by the tests: small SQLite files, their Spider-style tables.json entries
(declared types read back from SQLite itself) and a few questions with gold SQL per database.

It holds every declared-type form of SQLite's grammar, composite and self-referencing foreign
keys, identifiers with spaces, umlauts, `%`, parentheses and digits, a value in two columns of
two tables, numeric-looking text, dates, an empty table, and declared types that are a table
name or a cell of their own database.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

DATABASES: dict[str, list[str]] = {
    "gizmo_types": [
        """CREATE TABLE gizmo (gizmo_id integer primary key, moniker varchar(255),
        heft decimal(10, 2), quotient double precision, tally unsigned big int,
        glyph character varying(20), vintage int(11), whatnot, skew numeric(-5, +3))""",
        """CREATE TABLE cubby (aisle int, niche int, placard text, primary key (aisle, niche))""",
        """CREATE TABLE widget (widget_id integer primary key, aisle int, niche int,
        parent_widget int, gizmo_ref int, keeper gizmo, tint amber,
        foreign key (aisle, niche) references cubby (aisle, niche),
        foreign key (parent_widget) references widget (widget_id),
        foreign key (gizmo_ref) references gizmo (gizmo_id))""",
        "INSERT INTO gizmo VALUES (1, 'amber', 12.5, 0.25, 900, 'qx-20', 1999, 'misc', 3.5)",
        "INSERT INTO gizmo VALUES (2, 'cobalt', 7.75, 0.5, 40, 'zz-31', 2004, NULL, -1)",
        "INSERT INTO gizmo VALUES (3, 'ochre', 3.0, 0.75, 5, 'qx-77', 2011, 'odd', 0)",
        "INSERT INTO cubby VALUES (1, 1, 'north bay'), (1, 2, 'south bay'), (2, 1, 'loft')",
        "INSERT INTO widget VALUES (1, 1, 1, NULL, 1, 1, 'pale'), (2, 1, 2, 1, 2, 2, 'dark')",
        "INSERT INTO widget VALUES (3, 2, 1, 1, 3, 3, 'pale'), (4, 1, 1, 3, 1, 1, 'dim')",
    ],
    "baum_namen": [
        """CREATE TABLE "Straßen Bäume" ("Baum Nr" integer primary key, "Höhe (m)" real,
        "Anteil %" real, "Zone 51" text, "Stadtteil" text, "Pflanzdatum" date)""",
        """CREATE TABLE "Bezirk 2" ("Bezirk Nr" integer primary key, "Name (amtlich)" text,
        "Postleitzahl" text)""",
        'CREATE TABLE "Leere Liste" ("Eintrag Nr" integer primary key, "Notiz" text)',
        """INSERT INTO "Straßen Bäume" VALUES (1, 12.5, 40.0, '007', 'Lindenau', '2019-04-12'),
        (2, 8.0, 15.5, '12', 'Plagwitz', '2020-11-03'),
        (3, 15.0, 60.0, '007', 'Lindenau', '2018-06-30'),
        (4, 4.5, 5.0, '0815', 'Gohlis', '2021-02-14')""",
        """INSERT INTO "Bezirk 2" VALUES (1, 'Lindenau', '04177'), (2, 'Gohlis', '04157'),
        (3, 'Plagwitz', '04229')""",
    ],
}

QUESTIONS: dict[str, list[tuple[str, str]]] = {
    "gizmo_types": [
        ("What is the heft of the gizmo amber?", "SELECT heft FROM gizmo WHERE moniker = 'amber'"),
        (
            "Which widgets have widget 3 as parent widget?",
            "SELECT widget_id FROM widget WHERE parent_widget = 3",
        ),
        (
            "What is the placard of the cubby of widget 2?",
            "SELECT T2.placard FROM widget AS T1 JOIN cubby AS T2 ON T1.aisle = T2.aisle "
            "AND T1.niche = T2.niche WHERE T1.widget_id = 2",
        ),
        (
            "How many gizmos have the glyph qx-77?",
            "SELECT count(*) FROM gizmo WHERE glyph = 'qx-77'",
        ),
        (
            "What is the vintage of the gizmo of widget 3?",
            "SELECT T2.vintage FROM widget AS T1 JOIN gizmo AS T2 ON T1.gizmo_ref = T2.gizmo_id "
            "WHERE T1.widget_id = 3",
        ),
        ("Which widgets have the tint pale?", "SELECT widget_id FROM widget WHERE tint = 'pale'"),
        ("Which widgets have keeper 2?", "SELECT widget_id FROM widget WHERE keeper = 2"),
        (
            "What are the skew, tally and quotient of the gizmo cobalt?",
            "SELECT skew, tally, quotient FROM gizmo WHERE moniker = 'cobalt'",
        ),
        ("Which gizmo has the whatnot odd?", "SELECT moniker FROM gizmo WHERE whatnot = 'odd'"),
    ],
    "baum_namen": [
        (
            "How many trees stand in Lindenau?",
            'SELECT count(*) FROM "Straßen Bäume" WHERE "Stadtteil" = \'Lindenau\'',
        ),
        (
            "What is the Postleitzahl of the Bezirk 2 Lindenau?",
            'SELECT "Postleitzahl" FROM "Bezirk 2" WHERE "Name (amtlich)" = \'Lindenau\'',
        ),
        (
            "Which trees were planted after 2019-01-01?",
            'SELECT "Baum Nr" FROM "Straßen Bäume" WHERE "Pflanzdatum" > \'2019-01-01\'',
        ),
        ("How many entries does the Leere Liste have?", 'SELECT count(*) FROM "Leere Liste"'),
        (
            "Which trees are in zone 007?",
            'SELECT "Baum Nr" FROM "Straßen Bäume" WHERE "Zone 51" = \'007\'',
        ),
        (
            "Which Bezirk 2 has the Postleitzahl 04157?",
            'SELECT "Name (amtlich)" FROM "Bezirk 2" WHERE "Postleitzahl" = \'04157\'',
        ),
    ],
}


def tables_entry(db_id: str, db: Path) -> dict[str, Any]:
    """The Spider tables.json entry of `db`, read from SQLite's own catalogue."""
    with sqlite3.connect(db) as con:
        tables = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        columns: list[list[Any]] = [[-1, "*"]]
        types, keys, pairs = ["text"], [], []
        where: dict[tuple[str, str], int] = {}
        for t, table in enumerate(tables):
            info = con.execute(f'PRAGMA table_info("{table}")').fetchall()
            pk = [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]]
            for _, name, declared, *_ in info:
                where[(table, name)] = len(columns)
                columns.append([t, name])
                types.append(declared)
            keys.append([where[(table, c)] for c in pk] if len(pk) > 1 else where[(table, pk[0])])
        for table in tables:
            for row in con.execute(f'PRAGMA foreign_key_list("{table}")'):
                pairs.append([where[(table, row[3])], where[(row[2], row[4])]])
    return {
        "db_id": db_id,
        "table_names_original": tables,
        "table_names": [t.lower() for t in tables],
        "column_names_original": columns,
        "column_names": [[t, n.lower()] for t, n in columns],
        "column_types": types,
        "primary_keys": keys,
        "foreign_keys": pairs,
    }


def build_zoo(folder: Path) -> Path:
    """A data folder (1_input.json, tables.json, databases/) holding the whole zoo."""
    entries, rows = [], []
    for db_id, statements in DATABASES.items():
        db = folder / "databases" / db_id / f"{db_id}.sqlite"
        db.parent.mkdir(parents=True)
        with sqlite3.connect(db) as con:
            for sql in statements:
                con.execute(sql)
        entries.append(tables_entry(db_id, db))
        for question, query in QUESTIONS[db_id]:
            rows.append({"question_id": len(rows), "db_id": db_id, "question": question})
            rows[-1]["query"] = query
    (folder / "tables.json").write_text(json.dumps(entries, ensure_ascii=False), "utf-8")
    (folder / "1_input.json").write_text(json.dumps(rows, ensure_ascii=False), "utf-8")
    return folder
