"""Value symbols compared with a column that cannot match them, a local fix of masked SQL.

A masked model sees `V1: a value of T2.C10` yet sometimes writes `T2.C5 = V1` (the first column
it meets). A value may live in several columns, so the comparison is moved only when a local
test shows the query as written is wrong: the database holds the value in no row of the
compared column, and in exactly one column of the tables the query already reads. Anything
else (the compared column holds it, no or several candidates, a check that cannot run) leaves
the query exactly as written. Only `=`, `!=`, `<>`, `LIKE` and `NOT LIKE` with a value symbol
on the right are looked at; the checks are bounded read-only queries on the local database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stages.sql.execution import run_sql
from stages.sql.masking import unmask_sql
from stages.sql.schema import Schema
from stages.sql.symbols import SymbolTable
from stages.sql.tokens import Kind, Token, format_value, quote_identifier, tokenize

_VALUE = re.compile(r"%*(V[1-9]\d*)%*", re.IGNORECASE)
_COLUMN = re.compile(r"C[1-9]\d*", re.IGNORECASE)
_TABLE = re.compile(r"T[1-9]\d*", re.IGNORECASE)
_COMPARISONS = {"=", "==", "!=", "<>", "LIKE"}
_NOT_ALIASES = {"ON", "WHERE", "JOIN", "INNER", "LEFT", "RIGHT", "CROSS", "NATURAL", "GROUP"}
_NOT_ALIASES |= {"ORDER", "LIMIT", "UNION", "EXCEPT", "INTERSECT", "HAVING", "USING", "OUTER"}

CHECK_SECONDS = 5.0
"""Time budget of one query's database checks; a check past it counts as unknown."""

Holds = Callable[[str, str, str, str], bool | None]
"""(table, column, operator `=` or `LIKE`, SQL literal) -> whether some row matches; None when
the check could not run."""


def database_holds(db_path: Path, budget: float = CHECK_SECONDS) -> Holds:
    """Checks against `db_path`: `SELECT 1 FROM table WHERE column op literal LIMIT 1`, read-only
    and sharing one time budget (stages.sql.execution.run_sql)."""
    deadline = time.monotonic() + budget
    known: dict[tuple[str, str, str, str], bool | None] = {}

    def holds(table: str, column: str, op: str, literal: str) -> bool | None:
        key = (table, column, op, literal)
        if key not in known:
            known[key] = check(table, column, op, literal)
        return known[key]

    def check(table: str, column: str, op: str, literal: str) -> bool | None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        where = f"{quote_identifier(column)} {op} {literal}"
        result = run_sql(
            db_path, f"SELECT 1 FROM {quote_identifier(table)} WHERE {where} LIMIT 1", timeout=left
        )
        return bool(result.rows) if result.ok else None

    return holds


@dataclass
class _Context:
    """What the checks need: the kept schema, the symbols and the database test."""

    schema: Schema
    symbols: SymbolTable
    holds: Holds


@dataclass
class _Comparison:
    """`[qualifier.]column op value` found in the query."""

    qualifier: Token | None
    column: Token
    op: str  # `=` or `LIKE`: the test whether a row matches
    literal: str  # the value as the unmasked query writes it
    symbol: str


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


def _comparison(tokens: list[Token], i: int, symbols: SymbolTable) -> _Comparison | None:
    """The comparison whose right side is the value symbol at `tokens[i]`, if there is one."""
    token = tokens[i]
    inner = token.text[1:-1] if token.kind == Kind.STRING else token.text
    match = _VALUE.fullmatch(inner) if token.kind in (Kind.WORD, Kind.STRING) else None
    if match is None or i < 2 or symbols.value(match.group(1)) is None:
        return None
    op = tokens[i - 1].upper
    j = i - 2 if op != "LIKE" or tokens[i - 2].upper != "NOT" else i - 3
    if op not in _COMPARISONS or j < 0 or not _COLUMN.fullmatch(tokens[j].text):
        return None
    if token.kind == Kind.STRING:
        literal = unmask_sql(token.text, symbols)
    else:
        literal = format_value(symbols.values[match.group(1).upper()].value)
    qualifier = tokens[j - 2] if j >= 2 and tokens[j - 1].text == "." else None
    test = "LIKE" if op == "LIKE" else "="
    return _Comparison(qualifier, tokens[j], test, literal, match.group(1).upper())


def _holders(
    tables: list[str], column: str | None, found: _Comparison, ctx: _Context
) -> list[tuple[str, str]] | None:
    """(T#, C#) among `tables` (all their kept columns, or only `column`) whose rows match the
    comparison; None when a check could not run."""
    out: list[tuple[str, str]] = []
    for tsym in tables:
        table = ctx.schema.table(ctx.symbols.table_name(tsym) or "")
        for col in table.columns if table else []:
            csym = ctx.symbols.column_symbol(col.name)
            if csym is None or (column is not None and csym != column):
                continue
            held = ctx.holds(table.name, col.name, found.op, found.literal)
            if held is None:
                return None
            if held:
                out.append((tsym, csym))
    return out


def _target(found: _Comparison, scope: dict[str, str], ctx: _Context) -> tuple[str, str] | None:
    """(alias, C#) the comparison must move to, or None to leave it as written."""
    resolve = {a.upper(): t for a, t in scope.items()}
    in_query = list(dict.fromkeys(scope.values()))
    where = found.qualifier.text.upper() if found.qualifier else None
    if where is not None and where not in resolve:
        return None  # a qualifier the scan does not understand (a subquery's alias...)
    compared = [resolve[where]] if where is not None else in_query
    if _holders(compared, found.column.text.upper(), found, ctx) != []:
        return None  # the compared column holds the value, or the check could not run
    holders = _holders(in_query, None, found, ctx)
    written = {(t, found.column.text.upper()) for t in compared}
    candidates = [h for h in holders or [] if h not in written]
    if holders is None or len(candidates) != 1:
        return None
    table, column = candidates[0]
    if where is not None and resolve[where] == table:
        return found.qualifier.text, column  # type: ignore[union-attr]
    names = [a for a, t in scope.items() if t == table]
    aliases = [a for a in names if a.upper() != table]
    if len(aliases) > 1:
        return None  # the table is read twice: which copy is meant is not evident
    return (aliases or names)[0], column


def align_value_columns(
    sql: str, symbols: SymbolTable, schema: Schema, holds: Holds
) -> tuple[str, list[str]]:
    """`sql` with each value symbol that its compared column cannot match moved to the one
    column of the query's tables that can (`holds` asks the database), and what was changed."""
    all_tokens = tokenize(sql)
    tokens = [t for t in all_tokens if t.kind not in (Kind.WS, Kind.COMMENT)]
    scope = _scope(tokens)
    new_text: dict[int, str] = {}  # id(token) -> replacement text
    changes: list[str] = []
    ctx = _Context(schema, symbols, holds)
    for i in range(len(tokens)):
        found = _comparison(tokens, i, symbols)
        target = _target(found, scope, ctx) if found else None
        if found is None or target is None:
            continue
        alias, column = target
        old = found.column.text
        old = f"{found.qualifier.text}.{old}" if found.qualifier else old
        if found.qualifier is not None:
            new_text[id(found.qualifier)] = alias
            new_text[id(found.column)] = column
        else:
            new_text[id(found.column)] = f"{alias}.{column}"
        changes.append(
            f"{old} -> {alias}.{column} (no row of {old} holds {found.symbol}; "
            f"{alias}.{column} is the one column of the query's tables that does)"
        )
    if not changes:
        return sql, []
    return "".join(new_text.get(id(t), t.text) for t in all_tokens), changes
