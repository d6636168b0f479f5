"""Value symbols compared with the column they belong to, a local fix of masked SQL.

A masked model sees `V1: a value of T2.C10` yet often writes `T2.C5 = V1` (the first column
it meets): the value is known locally to live in T2.C10, so the comparison is moved there. Only
`=`, `!=`, `<>`, `LIKE` and `NOT LIKE` with a value symbol on the right are touched, and only
when the value's table is in the query; nothing is sent anywhere.
"""

from __future__ import annotations

import re

from stages.sql.symbols import SymbolTable
from stages.sql.tokens import Kind, Token, tokenize

_VALUE = re.compile(r"%*(V[1-9]\d*)%*", re.IGNORECASE)
_COLUMN = re.compile(r"C[1-9]\d*", re.IGNORECASE)
_TABLE = re.compile(r"T[1-9]\d*", re.IGNORECASE)
_COMPARISONS = {"=", "==", "!=", "<>", "LIKE"}
_NOT_ALIASES = {"ON", "WHERE", "JOIN", "INNER", "LEFT", "RIGHT", "CROSS", "NATURAL", "GROUP"}
_NOT_ALIASES |= {"ORDER", "LIMIT", "UNION", "EXCEPT", "INTERSECT", "HAVING", "USING", "OUTER"}


def _scope(tokens: list[Token]) -> dict[str, str]:
    """Alias or table symbol, as written -> table symbol, for every table after FROM or JOIN."""
    scope: dict[str, str] = {}
    for i, token in enumerate(tokens[:-1]):
        nxt = tokens[i + 1]
        if token.upper not in ("FROM", "JOIN") or not _TABLE.fullmatch(nxt.text):
            continue
        table = nxt.text.upper()
        scope.setdefault(nxt.text, table)
        rest = tokens[i + 2 : i + 4]
        if rest and rest[0].upper == "AS":
            rest = rest[1:]
        if rest and rest[0].kind == Kind.WORD and rest[0].upper not in _NOT_ALIASES:
            scope[rest[0].text] = table
    return scope


def align_value_columns(sql: str, symbols: SymbolTable) -> tuple[str, list[str]]:
    """`sql` with each value symbol compared with its own column, and what was changed."""
    all_tokens = tokenize(sql)
    tokens = [t for t in all_tokens if t.kind not in (Kind.WS, Kind.COMMENT)]
    scope = _scope(tokens)
    resolve = {a.upper(): t for a, t in scope.items()}
    new_text: dict[int, str] = {}  # id(token) -> replacement text
    changes: list[str] = []
    for i, token in enumerate(tokens):
        inner = token.text[1:-1] if token.kind == Kind.STRING else token.text
        match = _VALUE.fullmatch(inner) if token.kind in (Kind.WORD, Kind.STRING) else None
        if match is None or i < 2:
            continue
        entry = symbols.value(match.group(1).upper())
        wanted = symbols.item_symbol(entry.column) if entry and entry.column else None
        if not wanted or "." not in wanted:
            continue
        op = tokens[i - 1].upper
        j = i - 2 if op != "LIKE" or tokens[i - 2].upper != "NOT" else i - 3
        if op not in _COMPARISONS or j < 0 or not _COLUMN.fullmatch(tokens[j].text):
            continue
        want_table, want_column = wanted.split(".")
        column = tokens[j]
        qualifier = tokens[j - 2] if j >= 2 and tokens[j - 1].text == "." else None
        where = qualifier.text.upper() if qualifier else None
        if column.text.upper() == want_column and (
            where is None or resolve.get(where) == want_table
        ):
            continue
        names = [a for a, t in scope.items() if t == want_table]
        alias = next((a for a in names if a.upper() != want_table), names[0] if names else None)
        if alias is None:
            continue  # the value's table is not in the query: left to the model's repair
        old = f"{qualifier.text}.{column.text}" if qualifier else column.text
        if qualifier is not None and resolve.get(where) == want_table:
            alias = qualifier.text
        if qualifier is not None:
            new_text[id(qualifier)] = alias
            new_text[id(column)] = want_column
        else:
            new_text[id(column)] = f"{alias}.{want_column}"
        changes.append(f"{old} -> {alias}.{want_column} ({match.group(1)} is a value of {wanted})")
    if not changes:
        return sql, []
    return "".join(new_text.get(id(t), t.text) for t in all_tokens), changes
