"""Masking and unmasking: real SQL, questions and schemas <-> their symbolic (T#/C#/V#) forms.

Every rewrite replaces single tokens of the lossless tokenizer, so whitespace, comments,
keyword case and everything the masking does not own survive unchanged. Aliases defined in a
query (Spider's `singer AS T1`) collide with table symbols, so masking renames them to A1,
A2 ... and unmasking keeps any name the query itself defines as an alias.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from stages.sql.schema import Schema, shown_type
from stages.sql.symbols import SymbolTable
from stages.sql.tokens import (
    Kind,
    NameRefs,
    Role,
    Token,
    format_value,
    name_refs,
    quote_identifier,
    quote_string,
    tokenize,
    unquote_string,
)

NUMERIC_TYPES = ("number", "int", "integer", "real", "float", "double", "numeric", "decimal")


def schema_is_name(schema: Schema) -> Callable[[str], bool]:
    """A predicate: is `text` a table or column name of `schema` (case-insensitive)."""

    def is_name(text: str) -> bool:
        return schema.table(text) is not None or schema.has_column_name(text)

    return is_name


def literal_value(token: Token) -> str | int | float | None:
    """The Python value of a STRING or NUMBER token (None for blobs and other tokens)."""
    if token.kind == Kind.STRING and token.text.startswith("'"):
        return unquote_string(token.text)
    if token.kind == Kind.NUMBER:
        text = token.text
        try:
            return int(text, 16) if text[:2].lower() == "0x" else int(text)
        except ValueError:
            return float(text)
    return None


def coerce_value(text: Any, column_type: str | None) -> str | int | float:
    """A value found in a question, typed for SQL: a number when the column is numeric."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return text
    raw = str(text).strip()
    if column_type and column_type.lower() in NUMERIC_TYPES:
        try:
            return int(raw)
        except ValueError:
            try:
                return float(raw)
            except ValueError:
                pass
    return raw


def in_limit(sig: list[Token], k: int) -> bool:
    """Whether significant token `k` is the count of a LIMIT/OFFSET clause."""
    prev = sig[k - 1] if k > 0 else None
    if prev is None:
        return False
    if prev.kind == Kind.WORD and prev.upper in ("LIMIT", "OFFSET"):
        return True
    before = sig[k - 3] if k >= 3 else None
    return (
        prev.kind == Kind.OP
        and prev.text == ","
        and before is not None
        and before.kind == Kind.WORD
        and before.upper == "LIMIT"
    )


_STOP_WORDS = {"WHERE", "SELECT", "ON", "HAVING", "OR", "WHEN", "THEN", "ELSE", "CASE", "FROM"}
_SKIP_WORDS = {"IN", "NOT", "LIKE", "GLOB", "BETWEEN", "IS", "AND"}


def compared_column(
    tokens: list[Token], refs: NameRefs, schema: Schema, literal_idx: int
) -> str | None:
    """`table.column` that the literal at `tokens[literal_idx]` is compared with, if evident.

    Looks left over operators, other literals and IN/LIKE/BETWEEN for the nearest column
    reference (then right, for `'x' = col`), and resolves its table through the alias, the
    tables of the query, or the schema.
    """
    sig = [i for i, t in enumerate(tokens) if t.kind not in (Kind.WS, Kind.COMMENT)]
    pos = sig.index(literal_idx)
    found = None
    for step in (-1, 1):
        k = pos + step
        while 0 <= k < len(sig):
            t = tokens[sig[k]]
            role = refs.roles.get(sig[k])
            if role == Role.COLUMN:
                found = k
                break
            if t.kind == Kind.WORD and role == Role.KEYWORD:
                if t.upper in _SKIP_WORDS and step < 0:
                    k += step
                    continue
                break
            if t.kind in (Kind.OP, Kind.STRING, Kind.NUMBER) and t.text not in (";",):
                k += step
                continue
            break
        if found is not None:
            break
    if found is None:
        return None
    col = tokens[sig[found]].name
    table = None
    if found >= 2 and tokens[sig[found - 1]].text == ".":
        q = tokens[sig[found - 2]]
        table = refs.alias_tables.get(q.name.lower(), q.name)
    if table is None or schema.column(table, col) is None:
        used = [tokens[i].name for i, r in refs.roles.items() if r == Role.TABLE]
        used += list(refs.alias_tables.values())
        cands = [t for t in used if schema.column(t, col) is not None]
        cands += [t.name for t in schema.tables_with_column(col)]
        if not cands:
            return None
        table = cands[0]
    tab = schema.table(table)
    column = schema.column(table, col)
    return f"{tab.name}.{column.name}" if tab and column else None


def _alias_prefix(schema: Schema) -> str:
    """`A` unless the schema has names like A1; then a longer prefix that no name starts."""
    names = {t.name.lower() for t in schema.tables} | {c.lower() for c in schema.column_names()}
    for prefix in ("A", "AL", "ALS", "ALIAS"):
        if not any(re.fullmatch(prefix.lower() + r"\d+", n) for n in names):
            return prefix
    return "ALIAS_"


def _register_values(symbols: SymbolTable, values: Iterable[Any] | None) -> None:
    for item in values or []:
        if isinstance(item, Mapping):
            column = item.get("column")
            if column and "." not in str(column) and item.get("table"):
                column = f"{item['table']}.{column}"
            symbols.add_value(item["value"], column, item.get("surface"))
        else:
            symbols.add_value(item)


def mask_sql(
    sql: str,
    schema: Schema,
    symbols: SymbolTable,
    values: Iterable[Any] | None = None,
    *,
    new_values: bool = True,
) -> str:
    """Rewrite `sql` with symbols: tables -> T#, columns -> C#, aliases -> A#, values -> V#.

    `values` (raw values or {"value", "column"/"table", "surface"} dicts, e.g. the question's
    values) are added to `symbols` first, in order. A LIKE pattern around a known value keeps
    its wildcards (`'%V1%'`). Other string literals become new V# entries (with the column
    they are compared with) when `new_values`, else stay as written. Numbers are masked when
    they are known values; LIMIT/OFFSET counts stay. Names not in `symbols` stay as they are.
    Comments are removed (they may mention real names or values).
    """
    _register_values(symbols, values)
    tokens = tokenize(sql)
    refs = name_refs(tokens, schema_is_name(schema))
    sig_idx = [i for i, t in enumerate(tokens) if t.kind not in (Kind.WS, Kind.COMMENT)]
    sig = [tokens[i] for i in sig_idx]
    pos_of = {idx: k for k, idx in enumerate(sig_idx)}
    prefix = _alias_prefix(schema)
    alias_map: dict[str, str] = {}
    out: list[str] = []
    for i, t in enumerate(tokens):
        role = refs.roles.get(i)
        text = t.text
        if role in (Role.ALIAS_DEF, Role.ALIAS_REF):
            text = alias_map.setdefault(t.name.lower(), f"{prefix}{len(alias_map) + 1}")
        elif role in (Role.TABLE, Role.QUALIFIER):
            text = symbols.table_symbol(t.name) or text
        elif role == Role.COLUMN:
            text = symbols.column_symbol(t.name) or text
        elif t.kind == Kind.STRING and t.text.startswith("'"):
            text = _mask_string(tokens, refs, schema, symbols, i, new_values)
        elif t.kind == Kind.COMMENT:  # comments may name real things: drop them
            text = " " if t.text.startswith("/*") else ""
        elif t.kind == Kind.NUMBER and not in_limit(sig, pos_of[i]):
            value = literal_value(t)
            sym = symbols.value_symbol(value)
            if sym is not None:
                text = sym
        out.append(text)
    return "".join(out)


def _mask_string(
    tokens: list[Token],
    refs: NameRefs,
    schema: Schema,
    symbols: SymbolTable,
    i: int,
    new_values: bool,
) -> str:
    inner = unquote_string(tokens[i].text)
    sym = symbols.value_symbol(inner)
    if sym is not None:
        return sym
    known = sorted(
        ((s, str(e.value)) for s, e in symbols.values.items() if isinstance(e.value, str)),
        key=lambda pair: -len(pair[1]),
    )
    for s, value in known:
        if value and value in inner and not inner.replace(value, "", 1).strip("%_"):
            return quote_string(inner.replace(value, s, 1))
    if not new_values:
        return tokens[i].text
    return symbols.add_value(inner, compared_column(tokens, refs, schema, i))


_VALUE_IN_STRING = re.compile(r"(?<![A-Za-z0-9_])V([1-9]\d*)(?![0-9A-Za-z_])")


def unmask_sql(symbolic_sql: str, symbols: SymbolTable) -> str:
    """Rewrite symbolic SQL (e.g. a model's answer) back to real names and quoted values.

    Names the query defines as aliases stay as written (so `FROM T3 AS T1 ... T1.C2` works);
    T#/C# become (quoted when needed) names; V# becomes a SQL literal (strings with '' escaping,
    numbers bare) and V# inside a string literal (`'%V1%'`) becomes the raw value. Unknown
    symbols are left alone, for execution to report.
    """
    tokens = tokenize(symbolic_sql)
    refs = name_refs(tokens, lambda text: symbols.is_symbol(text))
    out: list[str] = []
    for i, t in enumerate(tokens):
        role = refs.roles.get(i)
        text = t.text
        if role in (Role.TABLE, Role.QUALIFIER, Role.COLUMN):
            text = _unmask_name(t.name, role, symbols) or text
        elif t.kind == Kind.STRING and t.text.startswith("'"):
            text = _VALUE_IN_STRING.sub(lambda m: _value_text(m, symbols), t.text)
        out.append(text)
    return "".join(out)


def _unmask_name(name: str, role: Role, symbols: SymbolTable) -> str | None:
    sym = name.upper()
    if sym.startswith("V") and role == Role.COLUMN:
        entry = symbols.value(sym)
        return format_value(entry.value) if entry else None
    real = symbols.table_name(sym) if sym.startswith("T") else None
    if real is None and sym.startswith("C"):
        real = symbols.column_name(sym)
    return quote_identifier(real) if real is not None else None


def _value_text(match: re.Match[str], symbols: SymbolTable) -> str:
    entry = symbols.value(match.group(0))
    if entry is None:
        return match.group(0)
    return str(entry.value).replace("'", "''")


def _links(schema_links: Any) -> list[tuple[str, str]]:
    """Normalize schema links: {term: item}, [{"term", "item"}], or [[term, item]]."""
    if not schema_links:
        return []
    if isinstance(schema_links, Mapping):
        pairs = list(schema_links.items())
    else:
        pairs = []
        for link in schema_links:
            if isinstance(link, Mapping):
                pairs.append((link.get("term"), link.get("item") or link.get("schema_item")))
            elif isinstance(link, Sequence) and not isinstance(link, str) and len(link) == 2:
                pairs.append((link[0], link[1]))
    out = []
    for term, item in pairs:
        if isinstance(item, list):  # one term linked to several items: take the first
            item = item[0] if item else None
        if term and item:
            out.append((str(term), str(item)))
    return out


def mask_question(
    question: str,
    values: Iterable[Any] | None,
    schema_links: Any,
    symbols: SymbolTable,
) -> str:
    """Replace every value surface form with its V# and every linked term with its symbol.

    `values`: raw values or dicts with "value"/"surface" (unknown ones are added to
    `symbols`); value entries already in `symbols` and their surface forms count too.
    `schema_links`: term -> "table" | "table.column" | "column" (or a list of term/item
    pairs); a table becomes T#, a column C#. Matching ignores case, respects word boundaries
    and prefers the longest term; each part of the question is replaced at most once.
    """
    _register_values(symbols, values)
    terms: dict[str, str] = {}
    for sym, entry in symbols.values.items():
        for form in [str(entry.value), *entry.surfaces]:
            if form.strip():
                terms.setdefault(form.strip().lower(), sym)
    for term, item in _links(schema_links):
        sym = symbols.item_symbol(item)
        if sym is None:
            continue
        sym = sym.split(".")[-1] if "." in item else sym
        terms.setdefault(term.strip().lower(), sym)
    if not terms:
        return question
    ordered = sorted(terms, key=lambda s: (-len(s), s))
    pattern = re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(t) for t in ordered) + r")(?!\w)", re.IGNORECASE
    )
    return pattern.sub(lambda m: terms[m.group(0).lower()], question)


def symbolic_schema(
    schema: Schema,
    symbols: SymbolTable,
    *,
    values: bool = True,
    names: Schema | None = None,
    hidden: Callable[[str], bool] | None = None,
) -> str:
    """The schema with symbols only: `T1(C1 number primary key, C2 text)`, foreign keys, values.

    Only tables and columns that have symbols appear; with `values`, one note per value
    symbol says which column it belongs to. A declared type is shown as declared only when it
    follows SQLite's type grammar and none of its words is a name of `names` (the full schema;
    default `schema`) or flagged by `hidden` (a value): else as its affinity (`text`...).
    """
    full = names or schema

    def secret(phrase: str) -> bool:
        return full.is_name(phrase) or bool(hidden and hidden(phrase))

    lines = []
    for tab in schema.tables:
        tsym = symbols.table_symbol(tab.name)
        if tsym is None:
            continue
        cols = []
        for col in tab.columns:
            csym = symbols.column_symbol(col.name)
            if csym is None:
                continue
            shown = shown_type(col.type, secret)
            key = " primary key" if tab.is_primary_key(col.name) else ""
            cols.append(f"{csym}{' ' if shown else ''}{shown}{key}")
        lines.append(f"{tsym}({', '.join(cols)})")
    fks = []
    for fk in schema.foreign_keys:
        a, b = (
            symbols.item_symbol(f"{fk.table}.{fk.column}"),
            symbols.item_symbol(f"{fk.ref_table}.{fk.ref_column}"),
        )
        if a and b and "." in a and "." in b:
            fks.append(f"{a} = {b}")
    if fks:
        lines.append("Foreign keys:")
        lines.extend(fks)
    if values and symbols.values:
        lines.append("Values:")
        lines.extend(symbols.value_notes())
    return "\n".join(lines)


_TABLE_LINE = re.compile(r"^(T\d+)\((.*)\)$")
_VALUE_LINE = re.compile(r"^(V\d+): (.+)$")
_QUESTION_SYMBOL = re.compile(r"(?<!\w)([TCV]\d+)(?!\w)")


def question_symbol_notes(question: str, schema_text: str) -> list[str]:
    """Where each symbol of a masked question lives, read off the symbolic schema: `T3: a
    table`, `C11: a column of T4`, `V1: a value of T5.C13`, and how two tables the question
    names meet when no key joins them directly (`T2 and T3 meet through T4: T4.C5 = T2.C5
    and T4.C7 = T3.C7`). Symbols only (nothing to leak): a small model reading symbols
    cannot tell a link table by its name, as it can `singer_in_concert`."""
    columns: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    keys: list[tuple[str, str, str]] = []  # (table, other table, "Ta.Cx = Tb.Cy")
    for line in schema_text.splitlines():
        line = line.strip()
        if m := _TABLE_LINE.match(line):
            for col in re.findall(r"(?<!\w)(C\d+)(?!\w)", m.group(2)):
                columns.setdefault(col, []).append(m.group(1))
        elif m := _VALUE_LINE.match(line):
            values[m.group(1)] = m.group(2)
        elif m := _KEY_LINE.match(line):
            keys.append((m.group(1), m.group(2), line))
    tables = {t for ts in columns.values() for t in ts}
    notes: list[str] = []
    named: list[str] = []  # tables the question names, itself or through a column or value
    for sym in dict.fromkeys(_QUESTION_SYMBOL.findall(question)):
        if sym in tables:
            notes.append(f"{sym}: a table")
            named.append(sym)
        elif sym in columns:
            notes.append(f"{sym}: a column of {' and '.join(columns[sym])}")
            named.extend(columns[sym] if len(columns[sym]) == 1 else [])
        elif sym in values:
            notes.append(f"{sym}: {values[sym]}")
            if m := re.search(r"\b(T\d+)\.C\d+", values[sym]):
                named.append(m.group(1))
    return notes + _link_notes(list(dict.fromkeys(named)), keys)


_KEY_LINE = re.compile(r"^(T\d+)\.C\d+ = (T\d+)\.C\d+$")


def _link_notes(named: list[str], keys: list[tuple[str, str, str]]) -> list[str]:
    """For each pair of named tables with no key between them, the tables holding a foreign
    key to each (a link table such as singer_in_concert), with those keys. A table both
    merely point to (a shared department) is not a link between them."""

    def key(a: str, b: str) -> str | None:
        return next((k for x, y, k in keys if {x, y} == {a, b}), None)

    def points(link: str, to: str) -> str | None:
        return next((k for x, y, k in keys if x == link and y == to), None)

    notes = []
    tables = {x for x, _, _ in keys}
    for i, a in enumerate(named):
        for b in named[i + 1 :]:
            if key(a, b) is not None:
                continue
            for link in sorted(tables - {a, b}):
                to_a, to_b = points(link, a), points(link, b)
                if to_a and to_b:
                    notes.append(f"{a} and {b} meet through {link}: {to_a} and {to_b}")
    return notes
