"""BIRD-style evidence masked like the question: the same symbols for the same names and values.

Evidence ("pay in euro refers to Currency = 'EUR'") names columns and values the question
does not. After the question's own masking (its values and linked terms, through
`mask_question`), every remaining mention of a kept table or column becomes its symbol and
every quoted string and number a value symbol (new ones get fresh V#, so unmasking the SQL
restores them). Names the ranking dropped are left to the privacy guard, which adds them back
to the kept schema with fresh symbols.

Evidence that says what a value means (`'X' represents for 'Y'`, `'X' means Y`, `'Y' refers to
'X'`, `'Y' refers to col = 'X'`) ties the meaning to the value: `register_meanings` makes the
meaning a surface form of the value's symbol, so the question's and the evidence's mentions of
it are masked as the value (the meaning would otherwise give the value away).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from stages.privacy.text import normalize
from stages.sql.masking import mask_question
from stages.sql.names import name_variants
from stages.sql.schema import Schema
from stages.sql.symbols import SymbolTable

_QUOTED = re.compile(r"'((?:[^'\n]|'')*)'|\"([^\"\n]*)\"")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_QUOTED_SYMBOL = re.compile(r"'(V[1-9]\d*)'")
_SYMBOL = re.compile(r"(?<!\w)[TCV][1-9]\d*(?!\w)")
_Q = r"(?:'((?:[^'\n]|'')+)'|\"([^\"\n]+)\")"
_VALUE_FIRST = re.compile(
    _Q + r"\s+(?:represents(?:\s+for)?|means|stands\s+for|is\s+short\s+for|denotes)\s+"
    r"(?:" + _Q + r"|([^;,.:()'\"\n=<>]+))",
    re.IGNORECASE,
)
"""`'X' represents for 'Y'`, `'X' means Y`: value first, then its meaning (quoted or not)."""
_MEANING_FIRST = re.compile(
    _Q + r"\s+refers\s+to\s+(?:[\w.`\"\[\]]+(?:\s+[\w`\]]+)*\s*=\s*)?" + _Q, re.IGNORECASE
)
"""`'Y' refers to 'X'`, `'Y' refers to col = 'X'`: the meaning first, then the value."""
_MAX_MEANING_WORDS = 8


def _quoted(single: str | None, double: str | None) -> str | None:
    if single is not None:
        return single.replace("''", "'")
    return double


def value_meanings(evidence: str) -> list[tuple[str, str]]:
    """(value, meaning) pairs the evidence states, in order (general phrasings only)."""
    pairs: list[tuple[str, str]] = []
    for m in _VALUE_FIRST.finditer(evidence):
        value = _quoted(m.group(1), m.group(2))
        meaning = _quoted(m.group(3), m.group(4)) or m.group(5)
        pairs.append((value or "", meaning or ""))
    for m in _MEANING_FIRST.finditer(evidence):
        meaning, value = _quoted(m.group(1), m.group(2)), _quoted(m.group(3), m.group(4))
        pairs.append((value or "", meaning or ""))
    return [
        (v, m.strip())
        for v, m in pairs
        if v.strip() and len(m.strip()) > 1 and len(m.split()) <= _MAX_MEANING_WORDS
    ]


def register_meanings(
    evidence: str, schema: Schema, symbols: SymbolTable, kept_values: Collection[str] = ()
) -> list[str]:
    """Give each meaning the evidence ties to a value that value's symbol (as a surface form
    the question and evidence are masked by); the symbols given. A side that names a table or
    column, and a value the privacy policy keeps, are left alone."""
    kept = {normalize(v) for v in kept_values}
    given: list[str] = []
    for value, meaning in value_meanings(evidence):
        if normalize(value) in kept or normalize(meaning) in kept:
            continue
        if _name_symbol(value, schema, symbols)[0] or _name_symbol(meaning, schema, symbols)[0]:
            continue
        symbols.add_value(value, None, value)
        given.append(symbols.add_value(value, None, meaning))
    return given


def _name_terms(schema: Schema) -> list[tuple[str, str, str]]:
    """(form, kind, real name) for every table and column name form, longest first."""
    terms: list[tuple[str, str, str]] = []
    for table in schema.tables:
        terms += [(v, "table", table.name) for v in name_variants(table.name)]
        for column in table.columns:
            terms += [(v, "column", column.name) for v in name_variants(column.name)]
    return sorted({t for t in terms if t[0].strip()}, key=lambda t: (-len(t[0]), t[0]))


def _taken(spans: list[tuple[int, int]], a: int, b: int) -> bool:
    return any(a < y and x < b for x, y in spans)


def mask_evidence(
    evidence: str,
    schema_links: Any,
    schema: Schema,
    symbols: SymbolTable,
    kept_values: Collection[str] = (),
) -> str:
    """The evidence with kept names and every literal replaced by symbols (`symbols` grows
    by the new values); names ranking dropped stay for the guard. Literals in `kept_values`
    (the `category` privacy policy's non-sensitive values) stay as written."""
    kept = {normalize(v) for v in kept_values}
    text = _QUOTED_SYMBOL.sub(r"\1", mask_question(evidence, None, schema_links, symbols))
    spans: list[tuple[int, int]] = [m.span() for m in _SYMBOL.finditer(text)]
    replacements: list[tuple[int, int, str]] = []

    def claim(a: int, b: int, symbol: str) -> None:
        spans.append((a, b))
        replacements.append((a, b, symbol))

    for m in _QUOTED.finditer(text):
        if _taken(spans, *m.span()):
            continue
        if m.group(1) is not None:
            value = m.group(1).replace("''", "'")
            if value.strip() and normalize(value) not in kept:
                claim(m.start(), m.end(), symbols.add_value(value, None, value))
        elif m.group(2) is not None and m.group(2).strip():
            # "..." in evidence may be a name or a value: a name when the schema has it
            inner = m.group(2)
            is_name, sym = _name_symbol(inner, schema, symbols)
            if not is_name and normalize(inner) in kept:
                continue
            if not is_name:
                claim(m.start(), m.end(), symbols.add_value(inner, None, inner))
            elif sym is not None:
                claim(m.start(), m.end(), sym)
    for form, kind, name in _name_terms(schema):
        known = symbols.table_symbol(name) if kind == "table" else symbols.column_symbol(name)
        if known is None:
            continue  # not kept by ranking: the guard's to mask
        pattern = re.compile(r"(?<!\w)" + re.escape(form) + r"(?!\w)", re.IGNORECASE)
        for m in pattern.finditer(text):
            if not _taken(spans, *m.span()):
                claim(m.start(), m.end(), known)
    for m in _NUMBER.finditer(text):
        if _taken(spans, *m.span()):
            continue
        raw = m.group(0)
        if normalize(raw) in kept:
            continue
        value: int | float = float(raw) if "." in raw else int(raw)
        claim(m.start(), m.end(), symbols.add_value(value, None, raw))
    for a, b, symbol in sorted(replacements, reverse=True):
        text = text[:a] + symbol + text[b:]
    return text


def _name_symbol(text: str, schema: Schema, symbols: SymbolTable) -> tuple[bool, str | None]:
    """Whether `text` is a table or column name of the database, and its symbol if kept."""
    table = schema.table(text)
    if table is not None:
        return True, symbols.table_symbol(table.name)
    for table in schema.tables:
        column = table.column(text)
        if column is not None:
            return True, symbols.column_symbol(column.name)
    return False, None
