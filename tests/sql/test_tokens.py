"""Tokenizer: exact round trip, token kinds and spans, quoting helpers, name roles."""

from __future__ import annotations

import random

import pytest

from stages.sql.tokens import (
    Kind,
    Role,
    format_value,
    name_refs,
    quote_identifier,
    quote_string,
    significant,
    tokenize,
    unquote_identifier,
    unquote_string,
    untokenize,
)

SAMPLES = [
    "SELECT count(*) FROM singer",
    'select T1."home town", `x`, [y z] from Städte AS T1 -- trailing comment',
    "/* lead */ SELECT name FROM singer WHERE name = 'O''Brien' AND age >= 1.5e3;",
    "SELECT Bürgermeister FROM Städte WHERE Name = 'Köln'\n\tORDER BY 2 DESC LIMIT 1",
    "SELECT a||b, c->>'$.k', d -> 'x', ?1, :p, @q, $r, X'0aFF', .5, 0x1F FROM t WHERE e<>f",
    "SELECT 'unterminated",
    'SELECT "unterminated ident',
    "SELECT /* unterminated comment",
    "",
    "   ",
    "SELECT 1abc, _x, été, 名前 FROM t",
]


@pytest.mark.parametrize("sql", SAMPLES)
def test_round_trip_and_contiguous_spans(sql: str) -> None:
    tokens = tokenize(sql)
    assert untokenize(tokens) == sql
    pos = 0
    for t in tokens:
        assert t.start == pos and sql[t.start : t.end] == t.text and t.end > t.start
        pos = t.end
    assert pos == len(sql)


def test_round_trip_random_fragments() -> None:
    fragments = [
        "SELECT",
        " ",
        "'a''b'",
        '"c d"',
        "`e`",
        "[f]",
        "--x\n",
        "/*y*/",
        "1.5",
        "ä",
        "(",
        ")",
        ",",
        "<=",
        "||",
        "?",
        ":n",
        "\n",
        "'",
        '"',
        "x",
        "é",
        "0x",
        "e5",
        "*",
    ]
    rng = random.Random(7)
    for _ in range(300):
        sql = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 25)))
        assert untokenize(tokenize(sql)) == sql


def test_kinds_of_a_hand_labelled_query() -> None:
    sql = "SELECT T1.\"home town\" FROM [Städte] AS T1 WHERE x = 'O''Brien' AND n <= 2.5 -- c"
    got = [(t.kind, t.text) for t in tokenize(sql) if t.kind != Kind.WS]
    assert got == [
        (Kind.WORD, "SELECT"),
        (Kind.WORD, "T1"),
        (Kind.OP, "."),
        (Kind.QIDENT, '"home town"'),
        (Kind.WORD, "FROM"),
        (Kind.QIDENT, "[Städte]"),
        (Kind.WORD, "AS"),
        (Kind.WORD, "T1"),
        (Kind.WORD, "WHERE"),
        (Kind.WORD, "x"),
        (Kind.OP, "="),
        (Kind.STRING, "'O''Brien'"),
        (Kind.WORD, "AND"),
        (Kind.WORD, "n"),
        (Kind.OP, "<="),
        (Kind.NUMBER, "2.5"),
        (Kind.COMMENT, "-- c"),
    ]


def test_umlaut_words_are_single_tokens() -> None:
    words = [t.text for t in significant(tokenize("SELECT Bürgermeister FROM Städte"))]
    assert words == ["SELECT", "Bürgermeister", "FROM", "Städte"]


def test_parameters_and_multichar_operators() -> None:
    kinds = {t.text: t.kind for t in tokenize("a ?1 :p @q $r || <> != ->> b")}
    for p in ("?1", ":p", "@q", "$r"):
        assert kinds[p] == Kind.PARAM
    for op in ("||", "<>", "!=", "->>"):
        assert kinds[op] == Kind.OP


def test_quoting_helpers() -> None:
    assert unquote_identifier('"a ""b"""') == 'a "b"'
    assert unquote_identifier("`x`") == "x"
    assert unquote_identifier("[y z]") == "y z"
    assert unquote_string("'O''Brien'") == "O'Brien"
    assert quote_string("O'Brien") == "'O''Brien'"
    assert quote_identifier("Städte") == "Städte"
    assert quote_identifier("home town") == '"home town"'
    assert quote_identifier("order") == '"order"'
    assert quote_identifier('a"b') == '"a""b"'
    assert format_value(3) == "3"
    assert format_value(2.5) == "2.5"
    assert format_value("it's") == "'it''s'"
    assert format_value(None) == "NULL"


def roles_of(sql: str) -> list[tuple[str, str]]:
    tokens = tokenize(sql)
    refs = name_refs(tokens)
    return [(tokens[i].text, str(r)) for i, r in sorted(refs.roles.items()) if r != Role.KEYWORD]


def test_name_roles_aliases_and_functions() -> None:
    sql = "SELECT T1.name, count(*) AS n FROM singer AS T1 JOIN concert t2 ON T1.id = t2.sid"
    assert roles_of(sql) == [
        ("T1", "alias_ref"),
        ("name", "column"),
        ("count", "function"),
        ("n", "alias_def"),
        ("singer", "table"),
        ("T1", "alias_def"),
        ("concert", "table"),
        ("t2", "alias_def"),
        ("T1", "alias_ref"),
        ("id", "column"),
        ("t2", "alias_ref"),
        ("sid", "column"),
    ]


def test_name_roles_cte_cast_and_table_named_like_alias() -> None:
    sql = "WITH x AS (SELECT C1 FROM T1) SELECT CAST(C2 AS TEXT) FROM x, T3 AS T1 WHERE T1.C2 = 1"
    assert roles_of(sql) == [
        ("x", "alias_def"),
        ("C1", "column"),
        ("T1", "table"),
        ("C2", "column"),
        ("TEXT", "type"),
        ("x", "alias_ref"),
        ("T3", "table"),
        ("T1", "alias_def"),
        ("T1", "alias_ref"),
        ("C2", "column"),
    ]
