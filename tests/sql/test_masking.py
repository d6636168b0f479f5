"""Masking and unmasking: every sample gold query survives the round trip (by execution),
masked text holds no real names or values, and the tricky cases written by hand."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from stages.answers.oracle import gold_schema_items, gold_schema_links, gold_values
from stages.sql.exec_match import exec_match
from stages.sql.masking import (
    mask_question,
    mask_sql,
    question_symbol_notes,
    symbolic_schema,
    unmask_sql,
)
from stages.sql.names import name_variants
from stages.sql.schema import Schema, load_schema
from stages.sql.symbols import SymbolTable
from stages.sql.tokens import Kind, tokenize, unquote_string

DATA = Path(__file__).resolve().parents[2] / "data"
TABLES = DATA / "tables.json"
ROWS = json.loads((DATA / "1_input.json").read_text(encoding="utf-8"))


def db_path(db_id: str) -> Path:
    return DATA / "databases" / db_id / f"{db_id}.sqlite"


def via_json(symbols: SymbolTable) -> SymbolTable:
    """The table as a later stage sees it: read back from the row's JSON."""
    return SymbolTable.from_dict(json.loads(json.dumps(symbols.to_dict(), ensure_ascii=False)))


def words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"\w+", text)}


def contains_term(text: str, term: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(term) + r"(?!\w)", text, re.IGNORECASE) is not None


def assert_no_real_names(masked_sql: str, schema: Schema) -> None:
    names = [t.name for t in schema.tables] + schema.column_names()
    for tok in tokenize(masked_sql):
        if tok.kind in (Kind.WORD, Kind.QIDENT):
            assert tok.name.lower() not in {n.lower() for n in names}, (tok.text, masked_sql)


def string_literals(sql: str) -> list[str]:
    return [unquote_string(t.text) for t in tokenize(sql) if t.kind == Kind.STRING]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"q{r['question_id']}")
def test_full_schema_round_trip(row: dict) -> None:
    """Mask with symbols for the whole schema (no values known), unmask, execute."""
    schema = load_schema(TABLES, row["db_id"])
    symbols = SymbolTable.from_schema(schema)
    masked = mask_sql(row["query"], schema, symbols)
    assert_no_real_names(masked, schema)
    for literal in string_literals(row["query"]):
        assert literal not in masked
        assert not any(literal in s for s in string_literals(masked))
    restored = unmask_sql(masked, via_json(symbols))
    result = exec_match(db_path(row["db_id"]), row["query"], restored)
    assert result.score == 1, (masked, restored, result)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"q{r['question_id']}")
def test_oracle_flow_round_trip(row: dict) -> None:
    """Ranked schema -> symbols -> question values -> masked SQL and question -> unmask."""
    schema = load_schema(TABLES, row["db_id"])
    items = gold_schema_items(row["query"], schema)
    kept = schema.filter(items)
    symbols = SymbolTable.from_schema(kept)
    values = gold_values(row["question"], row["query"], schema)
    links = gold_schema_links(row["question"], row["query"], schema, items)
    masked = mask_sql(row["query"], kept, symbols, values)
    question = mask_question(row["question"], values, links, symbols)
    assert_no_real_names(masked, schema)
    for v in values:
        assert not contains_term(masked, str(v["value"]))
        assert not contains_term(question, v["surface"])
    # no name of a used table/column, in any form the linker knows, is left in the question
    for table, columns in items.items():
        for name in [table, *columns]:
            for form in name_variants(name):
                assert not contains_term(question, form), (form, question)
    schema_text = symbolic_schema(kept, symbols)
    for name in [t.name for t in kept.tables] + kept.column_names():
        assert not contains_term(schema_text, name)
    restored = unmask_sql(masked, via_json(symbols))
    assert exec_match(db_path(row["db_id"]), row["query"], restored).score == 1


MUSIC = load_schema(TABLES, "music_festival")


def music_symbols() -> SymbolTable:
    # T1 stadium, T2 singer, T3 concert, T4 singer_in_concert;
    # C1 stadium_id, C2 name, C3 location, C4 capacity, C5 singer_id, C6 country, C7 age,
    # C8 "Home Town", C9 is_male, C10 concert_id, C11 concert_name, C12 theme, C13 year
    return SymbolTable.from_schema(MUSIC)


def test_spider_aliases_renamed_and_model_aliases_kept() -> None:
    gold = (
        "SELECT T2.name , count(*) FROM concert AS T1 JOIN stadium AS T2 "
        "ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id"
    )
    symbols = music_symbols()
    assert mask_sql(gold, MUSIC, symbols) == (
        "SELECT A1.C2 , count(*) FROM T3 AS A2 JOIN T1 AS A1 ON A2.C1 = A1.C1 GROUP BY A2.C1"
    )
    # a model writes Spider style: aliases T1/T2 that are also table symbols
    model = "SELECT T2.C2 , count(*) FROM T3 AS T1 JOIN T1 AS T2 ON T1.C1 = T2.C1 GROUP BY T1.C1"
    assert unmask_sql(model, symbols) == gold
    # implicit aliases and lower case work the same
    model = "select t2.C2, count(*) from T3 t1 join T1 t2 on t1.C1 = t2.C1 group by t1.C1"
    assert unmask_sql(model, symbols) == (
        "select t2.name, count(*) from concert t1 join stadium t2 "
        "on t1.stadium_id = t2.stadium_id group by t1.stadium_id"
    )


def test_values_quoted_back_correctly() -> None:
    symbols = music_symbols()
    symbols.add_value("Liam O'Brien", "singer.name")
    symbols.add_value(2014, "concert.year")
    symbols.add_value("Stark's", "stadium.name")
    out = unmask_sql(
        "SELECT C8 FROM T2 WHERE C2 = V1 OR C7 > V2 OR C2 LIKE '%V3%' OR C2 IN (V1, V9)",
        symbols,
    )
    assert out == (
        "SELECT \"Home Town\" FROM singer WHERE name = 'Liam O''Brien' OR age > 2014 "
        "OR name LIKE '%Stark''s%' OR name IN ('Liam O''Brien', V9)"
    )


def test_mask_string_with_quote_and_like_pattern() -> None:
    symbols = music_symbols()
    sql = "SELECT count(*) FROM singer WHERE name = 'Liam O''Brien' OR name LIKE '%Sharp%'"
    masked = mask_sql(sql, MUSIC, symbols, [{"value": "Sharp", "column": "singer.name"}])
    assert masked == "SELECT count(*) FROM T2 WHERE C2 = V2 OR C2 LIKE '%V1%'"
    assert symbols.value("V2").value == "Liam O'Brien"
    assert symbols.value("V2").column == "singer.name"
    restored = unmask_sql(masked, symbols)
    assert run(restored) == run(sql) == [(2,)]


def run(sql: str) -> list[tuple]:
    con = sqlite3.connect(f"{db_path('music_festival').as_uri()}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_nested_queries_count_distinct_star_and_mixed_case() -> None:
    symbols = music_symbols()
    sql = (
        "Select COUNT(DISTINCT t1.Singer_ID), * From Singer_In_Concert AS t1 "
        "WHERE t1.concert_ID IN (select Concert_Id FROM CONCERT where YEAR = 2014 "
        "AND stadium_id NOT IN (SELECT stadium_id FROM stadium WHERE capacity < 5000))"
    )
    masked = mask_sql(sql, MUSIC, symbols, [2014])
    assert masked == (
        "Select COUNT(DISTINCT A1.C5), * From T4 AS A1 "
        "WHERE A1.C10 IN (select C10 FROM T3 where C13 = V1 "
        "AND C1 NOT IN (SELECT C1 FROM T1 WHERE C4 < 5000))"
    )
    restored = unmask_sql(masked, symbols)
    assert run(restored) == run(sql)


def test_limit_counts_and_unknown_numbers_stay() -> None:
    symbols = music_symbols()
    masked = mask_sql("SELECT name FROM singer WHERE age > 30 LIMIT 3", MUSIC, symbols, [30])
    assert masked == "SELECT C2 FROM T2 WHERE C7 > V1 LIMIT 3"
    masked = mask_sql("SELECT name FROM singer WHERE age > 30 LIMIT 3", MUSIC, music_symbols())
    assert masked == "SELECT C2 FROM T2 WHERE C7 > 30 LIMIT 3"


def test_column_alias_renamed_and_order_by_reference() -> None:
    symbols = music_symbols()
    sql = "SELECT country, count(*) AS cnt FROM singer GROUP BY country ORDER BY cnt DESC"
    masked = mask_sql(sql, MUSIC, symbols)
    assert masked == "SELECT C6, count(*) AS A1 FROM T2 GROUP BY C6 ORDER BY A1 DESC"
    assert run(unmask_sql(masked, symbols)) == run(sql)


# --- a hand-made database with umlauts, spaces and every quoting style -------------------

TRICK_TABLES = {
    "db_id": "trick",
    "table_names_original": ["Städte", "Bezirke"],
    "column_names_original": [
        [-1, "*"],
        [0, "Stadt_ID"],
        [0, "Name"],
        [0, "Bürgermeister"],
        [0, "home town"],
        [0, "Einwohner"],
        [1, "Bezirk_ID"],
        [1, "Stadt_ID"],
        [1, "Name"],
        [1, "x"],
        [1, "y"],
    ],
    "column_types": [
        *["text", "number", "text", "text", "text", "number"],
        *["number", "number", "text", "number", "text"],
    ],
    "primary_keys": [1, 6],
    "foreign_keys": [[7, 1]],
}


@pytest.fixture
def trick(tmp_path: Path) -> tuple[Schema, Path]:
    (tmp_path / "tables.json").write_text(json.dumps([TRICK_TABLES], ensure_ascii=False))
    db = tmp_path / "trick.sqlite"
    con = sqlite3.connect(db)
    con.executescript(
        """
        CREATE TABLE Städte (Stadt_ID INTEGER PRIMARY KEY, Name TEXT, Bürgermeister TEXT,
                             "home town" TEXT, Einwohner INTEGER);
        CREATE TABLE Bezirke (Bezirk_ID INTEGER PRIMARY KEY, Stadt_ID INTEGER, Name TEXT,
                              x INTEGER, y TEXT);
        INSERT INTO Städte VALUES (1, 'Köln', 'Liam O''Brien', 'Cork', 1000),
                                  (2, 'Bonn', 'Eva Thür', 'Bonn', 300),
                                  (3, 'Aachen', 'Max Ärger', NULL, 250);
        INSERT INTO Bezirke VALUES (1, 1, 'Innenstadt', 5, 'a'), (2, 1, 'Ehrenfeld', 7, 'b'),
                                   (3, 2, 'Beuel', 3, 'a'), (4, 3, 'Mitte', 5, 'c');
        """
    )
    con.commit()
    con.close()
    return load_schema(tmp_path / "tables.json", "trick"), db


TRICK_CASES = [
    (
        "SELECT T1.\"home town\" FROM Städte AS T1 WHERE T1.Bürgermeister = 'Liam O''Brien'",
        [("Cork",)],
    ),
    (
        "select t2.Name, T1.name from städte as t1 join bezirke T2 on t1.stadt_id = T2.Stadt_ID "
        "where T2.`x` > 4 order by T2.[x] DESC, T2.Name",
        [("Ehrenfeld", "Köln"), ("Innenstadt", "Köln"), ("Mitte", "Aachen")],
    ),
    (
        "SELECT COUNT(DISTINCT T1.y) FROM Bezirke AS T1 WHERE T1.Stadt_ID IN "
        "(SELECT Stadt_ID FROM Städte WHERE Einwohner > 280)",
        [(2,)],
    ),
    ("SELECT * FROM [Städte] WHERE Name = 'Bonn'", [(2, "Bonn", "Eva Thür", "Bonn", 300)]),
    (
        'SELECT "Bürgermeister" FROM `Städte` WHERE "home town" IS NULL -- Aachen',
        [("Max Ärger",)],
    ),
]


@pytest.mark.parametrize(("sql", "expected"), TRICK_CASES)
def test_tricky_queries_round_trip(trick: tuple[Schema, Path], sql: str, expected: list) -> None:
    schema, db = trick
    con = sqlite3.connect(db)
    assert con.execute(sql).fetchall() == expected  # the hand-computed answer
    con.close()
    symbols = SymbolTable.from_schema(schema)
    masked = mask_sql(sql, schema, symbols)
    assert_no_real_names(masked, schema)
    assert not {"köln", "bonn", "brien", "aachen"} & words(masked)
    restored = unmask_sql(masked, via_json(symbols))
    con = sqlite3.connect(db)
    assert con.execute(restored).fetchall() == expected
    con.close()


def test_umlaut_names_unmask_bare_and_spaces_quoted(trick: tuple[Schema, Path]) -> None:
    schema, _ = trick
    symbols = SymbolTable.from_schema(schema)
    # T1 Städte, T2 Bezirke; C1 Stadt_ID, C2 Name, C3 Bürgermeister, C4 home town,
    # C5 Einwohner, C6 Bezirk_ID, C7 x, C8 y
    assert mask_sql('SELECT Bürgermeister, "home town" FROM Städte', schema, symbols) == (
        "SELECT C3, C4 FROM T1"
    )
    # T1 is not an alias here, so it is the table symbol
    assert unmask_sql("SELECT T1.C3, T1.C4, C7 FROM T1", symbols) == (
        'SELECT Städte.Bürgermeister, Städte."home town", x FROM Städte'
    )
    assert unmask_sql("SELECT T1.C3 FROM T2 AS T1", symbols) == (
        "SELECT T1.Bürgermeister FROM Bezirke AS T1"
    )


def test_mask_question_term_twice_longest_first_and_boundaries() -> None:
    symbols = music_symbols()
    question = "Which singers from France are older than the average age of singers from france?"
    masked = mask_question(
        question,
        [{"value": "France", "surface": "France"}],
        {"singers": "singer", "age": "singer.age"},
        symbols,
    )
    assert masked == "Which T2 from V1 are older than the average C7 of T2 from V1?"
    masked = mask_question(
        "What is the home town of the singer in Glasgow town, not Glasgowville?",
        ["Glasgow"],
        [{"term": "home town", "item": "singer.Home Town"}, {"term": "singer", "item": "singer"}],
        symbols,
    )
    assert masked == "What is the C8 of the T2 in V2 town, not Glasgowville?"


def test_mask_question_umlauts_and_apostrophes() -> None:
    symbols = music_symbols()
    masked = mask_question(
        "Wer ist Bürgermeister von Köln, nicht vom Kölner Dom? Und Liam O'Brien's Alter?",
        ["Köln", {"value": "Liam O'Brien"}],
        {"Alter": "singer.age"},
        symbols,
    )
    assert masked == "Wer ist Bürgermeister von V1, nicht vom Kölner Dom? Und V2's C7?"


def test_symbolic_schema_has_only_symbols() -> None:
    kept = MUSIC.filter({"singer": ["name", "country"], "concert": ["year"]})
    symbols = SymbolTable.from_schema(kept)
    symbols.add_value("France", "singer.country", "France")
    text = symbolic_schema(kept, symbols)
    assert text == (
        "T1(C1 number primary key, C2 text, C3 text)\n"
        "T2(C4 number primary key, C5 number)\n"
        "Values:\n"
        "V1: a value of T1.C3"
    )
    with_fk = MUSIC.filter({"stadium": ["name"], "concert": ["year"]})
    fk_symbols = SymbolTable.from_schema(with_fk)
    assert symbolic_schema(with_fk, fk_symbols) == (
        "T1(C1 number primary key, C2 text)\n"
        "T2(C3 number primary key, C1 number, C4 number)\n"
        "Foreign keys:\n"
        "T2.C1 = T1.C1"
    )


def test_question_symbols_are_located_in_the_symbolic_schema() -> None:
    kept = MUSIC.filter({"stadium": ["name"], "singer": ["name", "country"]})
    symbols = SymbolTable.from_schema(kept)
    symbols.add_value("France", "singer.country", "France")
    text = symbolic_schema(kept, symbols)
    name, country = symbols.column_symbol("name"), symbols.column_symbol("country")
    singer = symbols.table_symbol("singer")
    question = f"What are the {name} of {singer} from V1, and their {country}? {name} again"
    assert question_symbol_notes(question, text) == [
        f"{name}: a column of T1 and T2",  # each symbol once, in the question's order
        f"{singer}: a table",
        f"V1: a value of {singer}.{country}",
        f"{country}: a column of {singer}",
    ]
    assert question_symbol_notes("How many are there?", text) == []


def test_two_tables_a_link_table_joins_are_named_with_its_keys() -> None:
    kept = MUSIC.filter(
        {"stadium": ["name"], "singer": ["name"], "concert": ["year"], "singer_in_concert": []}
    )
    symbols = SymbolTable.from_schema(kept)
    text = symbolic_schema(kept, symbols)
    singer, concert, link, stadium = (
        symbols.table_symbol(t) for t in ("singer", "concert", "singer_in_concert", "stadium")
    )
    notes = question_symbol_notes(f"Which {singer} sang in no {concert}?", text)
    (joined,) = [n for n in notes if "meet through" in n]
    assert joined.startswith(f"{singer} and {concert} meet through {link}: ")
    assert joined.count(f"{link}.") == 2  # both keys start at the link table
    # tables with a key between them (concert -> stadium) need no note; nor one table alone
    assert not [n for n in question_symbol_notes(f"{concert} at {stadium}", text) if "meet" in n]
    assert not [n for n in question_symbol_notes(f"How many {singer}?", text) if "meet" in n]


def test_name_that_is_both_table_and_column_and_quoted_symbols(tmp_path: Path) -> None:
    entry = {
        "db_id": "geo",
        "table_names_original": ["country", "city"],
        "column_names_original": [[-1, "*"], [0, "country"], [0, "order"], [1, "country"]],
        "column_types": ["text", "text", "number", "text"],
        "primary_keys": [1],
        "foreign_keys": [[3, 1]],
    }
    (tmp_path / "tables.json").write_text(json.dumps([entry]))
    schema = load_schema(tmp_path / "tables.json", "geo")
    symbols = SymbolTable.from_schema(schema)  # T1 country, T2 city; C1 country, C2 order
    sql = 'SELECT country.country, "order" FROM country JOIN city ON city.country = country.country'
    masked = mask_sql(sql, schema, symbols)
    assert masked == "SELECT T1.C1, C2 FROM T1 JOIN T2 ON T2.C1 = T1.C1"
    assert unmask_sql(masked, symbols) == (
        'SELECT country.country, "order" FROM country JOIN city ON city.country = country.country'
    )
    # a model that quotes symbols is understood too
    assert unmask_sql('SELECT "C2" FROM [T1]', symbols) == 'SELECT "order" FROM country'


def test_a_table_both_merely_point_to_is_not_a_link() -> None:
    # student and course both point to department; only takes links the two
    university = load_schema(DATA / "tables.json", "university")
    kept = university.filter({t.name: [] for t in university.tables})
    symbols = SymbolTable.from_schema(kept)
    text = symbolic_schema(kept, symbols)
    student, course, takes = (symbols.table_symbol(t) for t in ("student", "course", "takes"))
    notes = question_symbol_notes(f"Which {student} took no {course}?", text)
    assert [n.split(":")[0] for n in notes if "meet" in n] == [
        f"{student} and {course} meet through {takes}"
    ]
