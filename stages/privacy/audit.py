"""The leak audit: what of a row's database and gold query reached the remote model's prompts.

It needs no attacker model: each llm-role prompt, as the prompt log recorded it, is scanned
for four kinds of leak, with the same text rules as the guard (stages.privacy.text):

- name: a table or column name of the database, as written, with `_` as spaces, or a simple
  plural/singular form; whole words, case-insensitive.

Every text is compared in one normal form (stages.privacy.text.normalize: NFKC, case-folded,
invisible characters removed, whitespace collapsed), so a name or value written with combining
accents, full-width letters or a zero-width space is still found.
- value: a text cell of the database of at least `min_value_length` (3) characters that is not
  a function word; whole words, case-insensitive, quotes and whitespace normalised.
- number: a number of the question or of the gold SQL (LIMIT counts aside) with at least
  `number_digits` (2) digits, written as a number of its own (not part of a symbol like C12).
- literal: a string literal of the gold SQL (LIKE wildcards stripped, at least 2 characters)
  not already counted as a value.

Never counted: symbols (T1, C2, V3, A1), SQL keywords and function names, and the words of the
prompt templates themselves (`ignore_words`), which are public text, not data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stages.privacy.guard import SCHEMA_WORDS, SQL_FUNCTIONS, name_forms, name_matches
from stages.privacy.text import (
    NUMBER,
    STOP_WORDS,
    digit_count,
    find_whole,
    normalize,
    number_value,
    phrases,
    symbol_spans,
    visible,
)
from stages.privacy.value_index import ValueIndex
from stages.sql.masking import in_limit, literal_value
from stages.sql.schema import Schema
from stages.sql.tokens import KEYWORDS, Kind, tokenize

KINDS = ("name", "value", "number", "literal")

ALLOWED_KIND = "value_allowed"
"""A value, number or literal the `category` privacy policy chose to send unmasked (not a
person, location or occupation): still listed, but not counted as a leak in the leak rate."""


def mark_allowed(leaks: list[dict[str, Any]], kept_values: Iterable[str]) -> list[dict[str, Any]]:
    """`leaks` with every non-name leak of a policy-kept value re-labelled ALLOWED_KIND."""
    kept = {normalize(v) for v in kept_values}
    return [
        {**leak, "kind": ALLOWED_KIND}
        if leak.get("kind") != "name" and normalize(str(leak.get("text", ""))) in kept
        else leak
        for leak in leaks
    ]


@dataclass
class AuditRules:
    """The thresholds of the audit (documented in the module docstring)."""

    min_value_length: int = 3
    number_digits: int = 2
    min_literal_length: int = 2
    ignore_words: frozenset[str] = field(default_factory=frozenset)


def gold_literals(sql: str) -> tuple[list[str], list[int | float]]:
    """String literals (wildcards stripped) and numbers of a gold query, LIMIT counts aside."""
    tokens = tokenize(sql)
    sig = [t for t in tokens if t.kind not in (Kind.WS, Kind.COMMENT)]
    strings: list[str] = []
    numbers: list[int | float] = []
    for k, token in enumerate(sig):
        value = literal_value(token)
        if value is None or in_limit(sig, k):
            continue
        if isinstance(value, str):
            value = value.strip("%_ ")
            if value and value not in strings:
                strings.append(value)
        elif value not in numbers:
            numbers.append(value)
    return strings, numbers


def _outside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return not any(start < b and a < end for a, b in spans)


def audit_text(
    text: str,
    schema: Schema,
    index: ValueIndex | None,
    question: str,
    gold_sql: str,
    rules: AuditRules | None = None,
) -> list[dict[str, str]]:
    """The leaks in one prompt text: [{"kind", "text"}], each distinct text once. The text is
    read `visible` (NFKC, no invisible characters), as the guard reads it."""
    rules = rules or AuditRules()
    text, question = visible(text), visible(question)
    symbols = symbol_spans(text)
    found: dict[str, dict[str, str]] = {}

    def add(kind: str, leaked: str) -> None:
        key = leaked.strip().lower()
        if key and key not in found:
            found[key] = {"kind": kind, "text": leaked.strip()}

    types = {c.type.lower() for t in schema.tables for c in t.columns}

    def counted(word: str) -> bool:
        low = word.lower()
        return not (
            low in rules.ignore_words
            or low in types
            or low in SCHEMA_WORDS
            or word.upper() in KEYWORDS
            or word.upper() in SQL_FUNCTIONS
            or low in STOP_WORDS
        )

    if index is not None:
        wanted: dict[str, list[tuple[int, int]]] = {}
        for start, end, norm in phrases(text):
            if len(norm) >= rules.min_value_length and counted(norm):
                wanted.setdefault(norm, []).append((start, end))
        for norm in sorted(index.lookup(wanted), key=len, reverse=True):
            for start, end in wanted[norm]:
                if _outside(symbols, start, end):
                    add("value", text[start:end])
                    break
    for start, end, _ in name_matches(name_forms(schema), text):
        if counted(text[start:end]) and _outside(symbols, start, end):
            add("name", text[start:end])
    strings, numbers = gold_literals(gold_sql)
    for m in NUMBER.finditer(question):
        if digit_count(m.group(0)) >= rules.number_digits:
            numbers.append(number_value(m.group(0)))
    wanted_numbers = {
        float(n)
        for n in numbers
        if digit_count(str(int(n)) if float(n).is_integer() else str(n)) >= rules.number_digits
    }
    for m in NUMBER.finditer(text):
        if float(number_value(m.group(0))) in wanted_numbers and _outside(symbols, *m.span()):
            add("number", m.group(0))
    for literal in strings:
        if len(literal) < rules.min_literal_length or not counted(literal):
            continue
        if any(_outside(symbols, a, b) for a, b in find_whole(text, literal)):
            add("literal", literal)
    return list(found.values())


def _allowed(leak: Any) -> bool:
    return isinstance(leak, dict) and leak.get("kind") == ALLOWED_KIND


def summarize_leaks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The audit's run figures: rows audited, rows with any leak (values the category policy
    kept count under ALLOWED_KIND, not as a leak), their share, counts by kind."""
    audited = [r for r in rows if isinstance(r.get("leaks"), list)]
    leaking = [r for r in audited if any(not _allowed(leak) for leak in r["leaks"])]
    by_kind = dict.fromkeys(KINDS, 0)
    if any("kept_values" in r for r in audited):  # the category policy ran: its kept values
        by_kind[ALLOWED_KIND] = 0
    for row in audited:
        for leak in row["leaks"]:
            kind = leak.get("kind") if isinstance(leak, dict) else None
            by_kind[kind if kind in by_kind else "literal"] += 1
    prompts = sum(_audit_count(r, "prompts") for r in audited)
    missing = sum(_audit_count(r, "missing") for r in audited)
    unverified = sum(bool((r.get("leak_audit") or {}).get("unverified")) for r in audited)
    figures = {
        "audited_rows": len(audited),
        "rows_with_leaks": len(leaking),
        "leak_rate": round(len(leaking) / len(audited), 6) if audited else None,
        "by_kind": by_kind,
        "prompts": prompts,
    }
    if missing or unverified:  # the audit did not see every call: no leak figure at all
        figures["leak_rate"] = None
        figures["missing_prompts"] = missing
        figures["incomplete"] = (
            f"audit incomplete: {missing} of {prompts + missing} prompts missing"
        )
        if unverified:
            figures["incomplete"] += (
                f"; {unverified} rows' latest prompt may be missing (log entries gone)"
            )
    return figures


def _audit_count(row: dict[str, Any], key: str) -> int:
    value = (row.get("leak_audit") or {}).get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
