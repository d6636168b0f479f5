"""AddSymbolicQuestion: the question with its values and linked terms replaced by symbols."""

from __future__ import annotations

import re
from typing import Any

from masksql_pipe.engine.stage import StageRun
from stages.answers.oracle import gold_schema_links
from stages.base import LocalStage
from stages.dataset.evidence import mask_evidence, register_meanings
from stages.privacy.guard import RowGuard, name_forms
from stages.privacy.stage import KEPT_VALUES_KEY, GuardedStage
from stages.privacy.text import STOP_WORDS, find_whole, normalize, phrases, visible
from stages.sql.masking import mask_question
from stages.sql.names import name_variants


def schema_word_links(question: str, row: dict[str, Any], kept: Any) -> dict[str, str]:
    """Terms of the question that spell a kept table/column name, not inside a value's words.

    Only values that occur in the question count: a bogus detected value ("singer.name")
    must not shield a real term from masking.
    """
    items = {t.name: [c.name for c in t.columns] for t in kept.tables}
    surfaces = [str(s).lower() for s in row.get("values") or [] if find_whole(question, str(s))]
    links = gold_schema_links(question, "", kept, items)
    return {
        term: item
        for term, item in links.items()
        if not any(term.lower() in s or s in term.lower() for s in surfaces)
    }


def drop_partial_links(
    question: str, links: dict[str, Any], name_spans: list[tuple[int, int]]
) -> dict[str, Any]:
    """Links without those whose term only covers part of a longer schema name of the
    question: a small model's `"home": "singer"` must not split "home town" (a column)."""
    kept = {}
    for term, item in links.items():
        spans = find_whole(question, str(term))
        inside = spans and all(
            any(a <= x and y <= b and (b - a) > (y - x) for a, b in name_spans) for x, y in spans
        )
        if not inside:
            kept[term] = item
    return kept


MAX_LINK_WORDS = 4
"""A small model's link term longer than this is not a schema term (it is dropped)."""


def holds_value(term: str, guard: RowGuard, forms: dict[str, Any]) -> bool:
    """Whether some run of the term's words is a database value (and not a schema name): a
    link for "History department" would hide the value History inside a table symbol."""
    if guard.index is None:
        return False
    runs = {
        norm
        for _, _, norm in phrases(term)
        if len(norm) >= guard.policy.min_value_length
        and norm not in forms
        and norm not in STOP_WORDS
    }
    return bool(guard.index.lookup(runs))


def names_its_table(term: str, item: Any, guard: RowGuard) -> bool:
    """A link to a whole table must share a word stem with the table's name ("singers" ->
    singer); a small model's `"total credits": "student"` would mask a column as a table.
    Links to columns may be synonyms ("older" -> age) and are not checked."""
    if not isinstance(item, str) or "." in item:
        return True
    table = next((t for t in guard.schema.tables if t.name.lower() == item.lower()), None)
    if table is None:
        return True
    stems = {w[:4] for w in re.findall(r"[a-z0-9]+", " ".join(name_variants(table.name)).lower())}
    words = re.findall(r"[a-z0-9]+", term.lower())
    return any(w[:4] in stems for w in words if len(w) >= 3)


def checked_links(question: str, links: dict[str, Any], guard: RowGuard) -> dict[str, Any]:
    """The small model's links, made safe to mask with: a term that spells a schema name links
    to that name; a term that is a database value, longer than MAX_LINK_WORDS words or only
    part of a longer schema name is dropped (the guard then masks what it holds). A linked
    item the ranking dropped is kept again (the guard's kept schema grows by it)."""
    forms = name_forms(guard.schema).items
    partial_free = drop_partial_links(question, links, guard.name_spans(question))
    out: dict[str, Any] = {}
    for term, item in partial_free.items():
        low = normalize(str(term))
        if low in forms:
            table, column = forms[low]
            if column is not None:
                table = f"{guard.keep_column(table, column)}.{column}"
            out[term] = table
        elif (
            len(str(term).split()) <= MAX_LINK_WORDS
            and not holds_value(str(term), guard, forms)
            and names_its_table(str(term), item, guard)
        ):
            out[term] = item
    for item in out.values():
        if isinstance(item, str):
            guard.keep_item(item)
    return out


class AddSymbolicQuestion(GuardedStage, LocalStage):
    """Adds `symbolic_question` from `values` (via `symbols`) and `schema_links`.

    With `mask_schema_words` (default), any other whole word that spells a kept table or
    column name is masked too. Then the privacy guard masks (or, in block mode, refuses) what
    is still there: names of any table or column of the database, database values, numbers
    and quoted strings (see stages.privacy.guard); when it had to add schema items or values,
    `symbols`, `filtered_schema` and `symbolic_schema` are rewritten to match. With
    `masked=False` (the unmasked baseline) the question is kept as written. A row's BIRD
    `evidence` becomes `symbolic_evidence` the same way (stages.dataset.evidence, then the guard).
    """

    def __init__(
        self,
        tables: str = "tables.json",
        databases: str = "databases",
        mask_schema_words: bool = True,
        privacy: dict[str, Any] | None = None,
        masked: bool = True,
    ) -> None:
        super().__init__(tables, databases)
        self.mask_schema_words = mask_schema_words
        self._init_privacy(privacy, masked)

    async def setup(self, run: StageRun) -> None:
        """Dataset paths and the value-index folder."""
        await super().setup(run)
        self._setup_privacy(run)

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        evidence = row.get("evidence")
        has_evidence = isinstance(evidence, str) and bool(evidence.strip())
        if not self.masked:
            row["symbolic_question"] = row["question"]
            if has_evidence:
                row["symbolic_evidence"] = evidence
            return row
        asked = visible(row["question"])  # the form the guard scans and the llm receives
        links = dict(row.get("schema_links") or {})
        if self.mask_schema_words:
            extra = schema_word_links(asked, row, self.kept_schema(row))
            lowered = {str(t).lower() for t in links}
            links.update({t: i for t, i in extra.items() if t.lower() not in lowered})
        symbols = self.symbols(row)
        if has_evidence:  # a meaning the evidence gives a value is masked as that value
            kept = row.get(KEPT_VALUES_KEY) or ()
            register_meanings(visible(str(evidence)), self.full_schema(row), symbols, kept)
        guard = await self.row_guard(row, symbols)
        links = checked_links(asked, links, guard)
        question = mask_question(asked, None, links, symbols)
        row["symbolic_question"] = guard.enforce(question, "question")
        row.pop("privacy_guard", None)  # a rerun records afresh
        self.store_guard(row, guard, "question")
        if has_evidence:  # BIRD evidence: the question's symbols and links, then the guard
            text = mask_evidence(
                visible(str(evidence)),
                links,
                self.full_schema(row),
                guard.symbols,
                kept_values=row.get(KEPT_VALUES_KEY) or (),
            )
            row["symbolic_evidence"] = guard.enforce(text, "evidence")
            self.store_guard(row, guard, "evidence")
        return row
