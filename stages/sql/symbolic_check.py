"""Local checks of symbolic SQL: compile it against an empty in-memory copy of the symbolic schema.

Nothing is executed (only `EXPLAIN` is prepared) and an authorizer allows reading actions only,
so unknown symbols, a column used on the wrong table, syntax errors, unknown functions, several
statements or a write/ATTACH are all found without a database or a model.
"""

from __future__ import annotations

import re
import sqlite3

from stages.sql.schema import Schema
from stages.sql.symbols import SymbolTable
from stages.sql.tokens import Kind, quote_identifier, tokenize

_VALUE = re.compile(r"V[1-9]\d*", re.IGNORECASE)
_READ_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}


def _authorizer(action: int, *_args: object) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


def _values_as_literals(sql: str, symbols: SymbolTable) -> str:
    """Bare known V# tokens become NULL so the query compiles; unknown ones stay to be reported."""
    out = []
    for token in tokenize(sql):
        known = (
            token.kind == Kind.WORD and _VALUE.fullmatch(token.text) and symbols.value(token.text)
        )
        out.append("NULL" if known else token.text)
    return "".join(out)


def symbolic_problems(sql: str, schema: Schema, symbols: SymbolTable) -> list[str]:
    """What is wrong with symbolic `sql` over the symbols of `schema` (empty: nothing found)."""
    if not sql.strip():
        return ["the query is empty"]
    con = sqlite3.connect(":memory:")
    try:
        for table in schema.tables:
            tsym = symbols.table_symbol(table.name)
            cols = [symbols.column_symbol(c.name) for c in table.columns]
            cols = [quote_identifier(c) for c in cols if c]
            if tsym and cols:
                con.execute(f"CREATE TABLE {quote_identifier(tsym)} ({', '.join(cols)})")
        con.set_authorizer(_authorizer)
        try:
            con.execute("EXPLAIN " + _values_as_literals(sql, symbols))
        except (sqlite3.Error, sqlite3.Warning, ValueError) as exc:
            message = str(exc)
            if "not authorized" in message:
                message += " (only one read-only SELECT statement is allowed)"
            return [message]
        return []
    finally:
        con.close()
