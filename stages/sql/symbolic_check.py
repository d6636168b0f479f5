"""Local checks of symbolic SQL: compile it against an empty in-memory copy of the symbolic schema.

Nothing is executed (only `EXPLAIN` is prepared) and an authorizer allows reading actions only,
so unknown symbols, a column used on the wrong table, syntax errors, unknown functions, several
statements or a write/ATTACH are all found without a database or a model.
"""

from __future__ import annotations

import itertools
import re
import sqlite3

from stages.sql.execution import read_only_authorizer
from stages.sql.schema import Schema
from stages.sql.symbols import SymbolTable
from stages.sql.tokens import Kind, quote_identifier, tokenize

_VALUE = re.compile(r"V[1-9]\d*", re.IGNORECASE)


def _values_as_literals(sql: str, symbols: SymbolTable) -> str:
    """Bare known V# tokens become NULL so the query compiles; unknown ones stay to be reported."""
    out = []
    for token in tokenize(sql):
        known = (
            token.kind == Kind.WORD and _VALUE.fullmatch(token.text) and symbols.value(token.text)
        )
        out.append("NULL" if known else token.text)
    return "".join(out)


_SYMBOL = re.compile(r"(?<![A-Za-z0-9_])[TCV][1-9]\d*(?![A-Za-z0-9_])", re.IGNORECASE)
_LIKE_VALUE = re.compile(r"%*V[1-9]\d*%*", re.IGNORECASE)


def symbol_misuse(sql: str) -> list[str]:
    """Symbols used where they cannot be unmasked: a value symbol as an alias (`AS V1`), or
    symbols inside a string literal other than a LIKE pattern around one value (`'%V1%'`),
    such as the symbol table's prose copied into SQL (`'a value of T2.C5'`)."""
    problems = []
    significant = [t for t in tokenize(sql) if t.kind not in (Kind.WS, Kind.COMMENT)]
    for prev, token in itertools.pairwise(significant):
        if prev.upper == "AS" and token.is_name and _VALUE.fullmatch(token.name):
            problems.append(
                f"value symbol {token.name} used as an alias; write a value symbol only where "
                "the value itself goes"
            )
    for token in significant:
        if token.kind != Kind.STRING or not token.text.startswith("'"):
            continue
        inner = token.text[1:-1]
        if _SYMBOL.search(inner) and not _LIKE_VALUE.fullmatch(inner.strip()):
            problems.append(
                f"string literal {token.text} holds symbols; write a value symbol bare (V1) "
                "or as a LIKE pattern '%V1%', never the schema description"
            )
    return problems


def symbolic_problems(
    sql: str, schema: Schema, symbols: SymbolTable, *, masked: bool = True
) -> list[str]:
    """What is wrong with symbolic `sql` over the symbols of `schema` (empty: nothing found).

    With `masked=False` (the unmasked baseline) the query is checked against the real names.
    """
    if not sql.strip():
        return ["the query is empty"]
    misuse = symbol_misuse(sql) if masked else []
    con = sqlite3.connect(":memory:")
    try:
        for table in schema.tables:
            if masked:
                tsym = symbols.table_symbol(table.name)
                cols = [symbols.column_symbol(c.name) for c in table.columns]
            else:
                tsym, cols = table.name, [c.name for c in table.columns]
            cols = [quote_identifier(c) for c in cols if c]
            if tsym and cols:
                con.execute(f"CREATE TABLE {quote_identifier(tsym)} ({', '.join(cols)})")
        con.set_authorizer(read_only_authorizer)
        try:
            checked = _values_as_literals(sql, symbols) if masked else sql
            con.execute("EXPLAIN " + checked)
        except (sqlite3.Error, sqlite3.Warning, ValueError) as exc:
            message = str(exc)
            if "not authorized" in message:
                message += " (only one read-only SELECT statement is allowed)"
            return [message, *misuse]
        return misuse
    finally:
        con.close()
