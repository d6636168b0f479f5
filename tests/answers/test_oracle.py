"""Oracle answers from gold SQL (checked against hand-made answers), reply rendering and the
tolerant reply parsers, and a whole oracle run over the sample data through reply text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.answers.oracle import (
    gold_schema_items,
    gold_schema_links,
    gold_symbolic_sql,
    gold_values,
)
from stages.answers.replies import (
    ReplyParseError,
    parse_json_reply,
    parse_list_reply,
    parse_object_reply,
    parse_sql_reply,
    render_detect_values_reply,
    render_link_values_reply,
    render_schema_items_reply,
    render_schema_links_reply,
    render_sql_reply,
)
from stages.sql.exec_match import exec_match
from stages.sql.masking import coerce_value, mask_question, symbolic_schema, unmask_sql
from stages.sql.schema import load_schema
from stages.sql.symbols import SymbolTable

DATA = Path(__file__).resolve().parents[2] / "data"
TABLES = DATA / "tables.json"
ROWS = json.loads((DATA / "1_input.json").read_text(encoding="utf-8"))
MUSIC = load_schema(TABLES, "music_festival")
UNI = load_schema(TABLES, "university")
DE = load_schema(TABLES, "deutsche_staedte")


def test_values_found_once_with_their_column() -> None:
    q = "Which singers from France are older than the average age of singers from France?"
    sql = (
        "SELECT name FROM singer WHERE country = 'France' AND age > "
        "(SELECT avg(age) FROM singer WHERE country = 'France')"
    )
    assert gold_values(q, sql, MUSIC) == [
        {"value": "France", "surface": "France", "column": "singer.country"}
    ]


def test_values_in_question_order_numbers_like_and_limit() -> None:
    q = (
        "Who is the Bürgermeister of each city in Nordrhein-Westfalen "
        "with more than 500000 Einwohner?"
    )
    sql = (
        "SELECT T1.Bürgermeister FROM Städte AS T1 JOIN Bundesländer AS T2 ON T1.Kürzel = "
        "T2.Kürzel WHERE T1.Einwohner > 500000 AND T2.Name = 'Nordrhein-Westfalen'"
    )
    assert gold_values(q, sql, DE) == [
        {
            "value": "Nordrhein-Westfalen",
            "surface": "Nordrhein-Westfalen",
            "column": "Bundesländer.Name",
        },
        {"value": 500000, "surface": "500000", "column": "Städte.Einwohner"},
    ]
    like = gold_values(
        "List the instructors whose name starts with mar.",
        "SELECT name FROM instructor WHERE name LIKE 'Mar%'",
        UNI,
    )
    assert like == [{"value": "Mar", "surface": "mar", "column": "instructor.name"}]
    # a LIMIT count is not a value even when the question has the number
    assert gold_values("Show the top 3 stadiums", "SELECT name FROM stadium LIMIT 3", MUSIC) == []
    # a value not in the question is not reported
    assert (
        gold_values("Female singers?", "SELECT name FROM singer WHERE is_male = 'F'", MUSIC) == []
    )


def test_schema_items_resolve_aliases_scopes_and_star() -> None:
    sql = (
        "SELECT T2.name , count(*) FROM concert AS T1 JOIN stadium AS T2 "
        "ON T1.stadium_id = T2.stadium_id GROUP BY T1.stadium_id"
    )
    assert gold_schema_items(sql, MUSIC) == {
        "stadium": ["stadium_id", "name"],
        "concert": ["stadium_id"],
    }
    sql = "SELECT name FROM singer WHERE singer_id NOT IN (SELECT singer_id FROM singer_in_concert)"
    assert gold_schema_items(sql, MUSIC) == {
        "singer": ["singer_id", "name"],
        "singer_in_concert": ["singer_id"],
    }
    assert gold_schema_items("SELECT * FROM Bundesländer", DE) == {
        "Bundesländer": ["Kürzel", "Name", "Hauptstadt"]
    }
    assert gold_schema_items("SELECT count(*) FROM course", UNI) == {"course": []}


def test_schema_links_plural_underscore_and_values_excluded() -> None:
    q = "What are the names and ages of singers from France?"
    sql = "SELECT name , age FROM singer WHERE country = 'France'"
    assert gold_schema_links(q, sql, MUSIC) == {
        "names": "singer.name",
        "ages": "singer.age",
        "singers": "singer",
    }
    q = "List the concert names of concerts in 2014."
    sql = "SELECT concert_name FROM concert WHERE year = 2014"
    assert gold_schema_links(q, sql, MUSIC) == {
        "concert names": "concert.concert_name",
        "concerts": "concert",
    }
    # a value's words are never linked, even when they spell a used column ("Name")
    q = "Which Städte are in the Bundesland called Name?"
    sql = (
        "SELECT T1.Name FROM Städte AS T1 JOIN Bundesländer AS T2 ON T1.Kürzel = T2.Kürzel "
        "WHERE T2.Name = 'Name'"
    )
    assert gold_schema_links(q, sql, DE) == {"Städte": "Städte"}


def test_symbolic_sql_uses_row_symbols_without_changing_them() -> None:
    kept = MUSIC.filter({"singer": ["name", "country", "is_male"]})
    symbols = SymbolTable.from_schema(
        kept
    )  # T1 singer; C1 singer_id, C2 name, C3 country, C4 is_male
    symbols.add_value("France", "singer.country", "France")
    before = symbols.to_dict()
    sql = "SELECT name FROM singer WHERE country = 'France' AND is_male = 'F'"
    # 'F' is not a question value: a perfect model would write it as is
    assert gold_symbolic_sql(sql, kept, symbols) == "SELECT C2 FROM T1 WHERE C3 = V1 AND C4 = 'F'"
    assert symbols.to_dict() == before


def test_reply_parsers_are_tolerant() -> None:
    assert parse_json_reply('Sure!\n```json\n{"a": [1, 2]}\n```\nDone.') == {"a": [1, 2]}
    assert parse_json_reply('Here you go: ["x", "y"] -- hope it helps') == ["x", "y"]
    assert parse_json_reply("```\n[1]\n```") == [1]
    assert parse_json_reply('{"k": "v"}') == {"k": "v"}
    with pytest.raises(ReplyParseError):
        parse_json_reply("no json at all")
    assert parse_list_reply('{"values": ["France"]}') == ["France"]
    assert parse_object_reply('[["a", "b"]]') == {"a": "b"}
    with pytest.raises(ReplyParseError):
        parse_object_reply('["just", "a", "list"]')
    assert parse_sql_reply("```sql\nSELECT 1;\n```") == "SELECT 1"
    assert parse_sql_reply("Answer:\n```SQLite\nSELECT 2\n```\nexplanation") == "SELECT 2"
    assert parse_sql_reply("Reasoning...\nSQL: SELECT 3;") == "SELECT 3"
    assert parse_sql_reply("  SELECT 4  ") == "SELECT 4"
    with pytest.raises(ReplyParseError):
        parse_sql_reply("```sql\n\n```")


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"q{r['question_id']}")
def test_oracle_run_through_reply_text(row: dict) -> None:
    """What the stages will do with oracle replies: parse each reply, build the masked
    prompt inputs, unmask the symbolic SQL reply, and match the gold result."""
    schema = load_schema(TABLES, row["db_id"])
    question, gold = row["question"], row["query"]
    items = parse_object_reply(render_schema_items_reply(gold_schema_items(gold, schema)))
    kept = schema.filter(items)
    symbols = SymbolTable.from_schema(kept)
    values = gold_values(question, gold, schema)
    surfaces = parse_list_reply(render_detect_values_reply(values))
    value_links = parse_object_reply(render_link_values_reply(values))
    assert list(value_links) == surfaces
    for surface in surfaces:
        column = value_links[surface]
        table, col = column.split(".", 1)
        ctype = schema.column(table, col).type
        symbols.add_value(coerce_value(surface, ctype), column, surface)
    links = parse_object_reply(render_schema_links_reply(gold_schema_links(question, gold, schema)))
    masked_question = mask_question(question, None, links, symbols)
    schema_text = symbolic_schema(kept, symbols)
    row_symbols = SymbolTable.from_dict(json.loads(json.dumps(symbols.to_dict())))
    reply = render_sql_reply(gold_symbolic_sql(gold, kept, row_symbols))
    restored = unmask_sql(parse_sql_reply(reply), row_symbols)
    for surface in surfaces:
        assert surface not in masked_question
        assert surface not in reply
    assert "V" in schema_text or not surfaces
    db = DATA / "databases" / row["db_id"] / f"{row['db_id']}.sqlite"
    assert exec_match(db, gold, restored).score == 1, (reply, restored)
