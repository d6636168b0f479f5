"""Oracle answers from a row's gold SQL: what a perfect model would answer, for offline runs.

Each oracle function returns plain JSON data for one model stage: DetectValues / LinkValues
(`gold_values`), RankSchemaItems (`gold_schema_items`), LinkSchema (`gold_schema_links`) and
GenerateSymbolicSql (`gold_symbolic_sql`); `stages.answers.replies` renders them as reply text.
"""

from __future__ import annotations

import re
from typing import Any

from stages.sql.masking import compared_column, in_limit, literal_value, mask_sql, schema_is_name
from stages.sql.names import name_variants
from stages.sql.schema import Schema
from stages.sql.symbols import SymbolTable
from stages.sql.tokens import Kind, Role, name_refs, tokenize


def _find(question: str, term: str) -> re.Match[str] | None:
    if not term.strip():
        return None
    return re.search(r"(?<!\w)" + re.escape(term) + r"(?!\w)", question, re.IGNORECASE)


def gold_values(question: str, sql: str, schema: Schema) -> list[dict[str, Any]]:
    """Literal values of the gold SQL that the question mentions, in question order.

    Each: {"value": SQL value (LIKE wildcards stripped), "surface": the words of the question,
    "column": "table.column" it is compared with (or None)}. LIMIT counts are not values.
    """
    tokens = tokenize(sql)
    refs = name_refs(tokens, schema_is_name(schema))
    sig_idx = [i for i, t in enumerate(tokens) if t.kind not in (Kind.WS, Kind.COMMENT)]
    sig = [tokens[i] for i in sig_idx]
    found: dict[tuple[str, Any], tuple[int, dict[str, Any]]] = {}
    for k, i in enumerate(sig_idx):
        value = literal_value(tokens[i])
        if value is None or in_limit(sig, k):
            continue
        if isinstance(value, str):
            stripped = value.strip("%")
            value = stripped if stripped and not re.search(r"[%_]", stripped) else value
            forms = [value]
        else:
            forms = [tokens[i].text, repr(value)]
            if isinstance(value, float) and value.is_integer():
                forms.append(str(int(value)))
        for form in forms:
            m = _find(question, str(form))
            if m is None:
                continue
            key = (type(value).__name__ if isinstance(value, str) else "num", value)
            if key not in found:
                column = compared_column(tokens, refs, schema, i)
                found[key] = (m.start(), {"value": value, "surface": m.group(0), "column": column})
            break
    return [entry for _, entry in sorted(found.values(), key=lambda p: p[0])]


def gold_schema_items(sql: str, schema: Schema) -> dict[str, list[str]]:
    """Tables and columns the gold SQL uses: {table: [columns]} in schema order.

    Unqualified columns belong to the first table of the query that has them; `*` and `t.*`
    count as every column of the table(s) concerned; `count(*)` uses no column.
    """
    tokens = tokenize(sql)
    refs = name_refs(tokens, schema_is_name(schema))
    sig = [i for i, t in enumerate(tokens) if t.kind not in (Kind.WS, Kind.COMMENT)]
    # paren groups: the tables named directly in each, so columns resolve to their own query
    group_of: dict[int, int] = {}
    parent: dict[int, int] = {0: -1}
    stack, next_id = [0], 1
    for i in sig:
        if tokens[i].text == "(":
            parent[next_id] = stack[-1]
            stack.append(next_id)
            next_id += 1
        elif tokens[i].text == ")" and len(stack) > 1:
            stack.pop()
        group_of[i] = stack[-1]
    group_tables: dict[int, list[str]] = {}
    tables: list[str] = []
    for i, r in sorted(refs.roles.items()):
        tab = schema.table(tokens[i].name) if r == Role.TABLE else None
        if tab is not None:
            group_tables.setdefault(group_of[i], []).append(tab.name)
            tables.append(tab.name)

    def scope_tables(i: int) -> list[str]:
        out, g = [], group_of[i]
        while g != -1:
            out += group_tables.get(g, [])
            g = parent[g]
        return out + tables

    used: dict[str, set[str]] = {t.lower(): set() for t in tables}
    everything: set[str] = set()
    for k, i in enumerate(sig):
        t = tokens[i]
        prev = tokens[sig[k - 1]] if k > 0 else None
        qual = tokens[sig[k - 2]] if k > 1 and prev is not None and prev.text == "." else None
        qtable = refs.alias_tables.get(qual.name.lower(), qual.name) if qual is not None else None
        if t.kind == Kind.OP and t.text == "*":
            if qtable is not None:
                everything.add(qtable.lower())
            elif prev is not None and prev.upper in ("SELECT", "DISTINCT", ","):
                everything.update(x.lower() for x in group_tables.get(group_of[i], tables))
            continue
        if refs.roles.get(i) != Role.COLUMN:
            continue
        if qtable is not None and schema.column(qtable, t.name) is not None:
            owner = schema.table(qtable).name
        else:
            owners = [x for x in scope_tables(i) if schema.column(x, t.name) is not None]
            owners += [x.name for x in schema.tables_with_column(t.name)]
            if not owners:
                continue
            owner = owners[0]
        used.setdefault(owner.lower(), set()).add(t.name.lower())
    result: dict[str, list[str]] = {}
    for tab in schema.tables:
        low = tab.name.lower()
        if low not in used and low not in everything:
            continue
        result[tab.name] = [
            c.name for c in tab.columns if low in everything or c.name.lower() in used[low]
        ]
    return result


def gold_schema_links(
    question: str,
    sql: str,
    schema: Schema,
    items: dict[str, list[str]] | None = None,
) -> dict[str, str]:
    """Question term (as written) -> "table" or "table.column", for the items the gold SQL uses.

    Terms are found by name, name with `_` as spaces and simple plural/singular forms, whole
    words only, longest first, never overlapping each other or the question's values.
    """
    items = items if items is not None else gold_schema_items(sql, schema)
    taken: list[tuple[int, int]] = []
    for entry in gold_values(question, sql, schema):
        m = _find(question, entry["surface"])
        if m:
            taken.append(m.span())
    candidates: list[tuple[str, str]] = []
    for table, columns in items.items():
        candidates += [(v, table) for v in name_variants(table)]
        for col in columns:
            candidates += [(v, f"{table}.{col}") for v in name_variants(col)]
    candidates.sort(key=lambda p: -len(p[0]))
    links: dict[str, tuple[int, str]] = {}
    for term, item in candidates:
        pattern = re.compile(r"(?<!\w)" + re.escape(term) + r"(?!\w)", re.IGNORECASE)
        for m in pattern.finditer(question):
            a, b = m.span()
            if any(a < y and x < b for x, y in taken):
                continue
            taken.append((a, b))
            links.setdefault(m.group(0), (a, item))
    return {term: item for term, (_, item) in sorted(links.items(), key=lambda p: p[1][0])}


def gold_symbolic_sql(sql: str, schema: Schema, symbols: SymbolTable) -> str:
    """The gold SQL written with the row's symbols, as a perfect model would answer.

    Literals that are not values in `symbols` stay as written (the model could not know a
    symbol for them); `symbols` is not changed.
    """
    copy = SymbolTable.from_dict(symbols.to_dict())
    return mask_sql(sql, schema, copy, new_values=False)
