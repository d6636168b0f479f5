"""AddSymbolicQuestion: the question with its values and linked terms replaced by symbols."""

from __future__ import annotations

from typing import Any

from stages.base import LocalStage
from stages.oracle import gold_schema_links
from stages.sql.masking import mask_question


def schema_word_links(question: str, row: dict[str, Any], kept: Any) -> dict[str, str]:
    """Terms of the question that spell a kept table/column name, not inside a value's words."""
    items = {t.name: [c.name for c in t.columns] for t in kept.tables}
    surfaces = [str(s).lower() for s in row.get("values") or []]
    links = gold_schema_links(question, "", kept, items)
    return {
        term: item
        for term, item in links.items()
        if not any(term.lower() in s or s in term.lower() for s in surfaces)
    }


class AddSymbolicQuestion(LocalStage):
    """Adds `symbolic_question` from `values` (via `symbols`) and `schema_links`.

    With `mask_schema_words` (default), any other whole word that spells a kept table or
    column name is masked too, so a link the model missed does not leak the name.
    """

    def __init__(
        self,
        tables: str = "tables.json",
        databases: str = "databases",
        mask_schema_words: bool = True,
    ) -> None:
        super().__init__(tables, databases)
        self.mask_schema_words = mask_schema_words

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        links = dict(row.get("schema_links") or {})
        if self.mask_schema_words:
            extra = schema_word_links(row["question"], row, self.kept_schema(row))
            lowered = {str(t).lower() for t in links}
            links.update({t: i for t, i in extra.items() if t.lower() not in lowered})
        row["symbolic_question"] = mask_question(row["question"], None, links, self.symbols(row))
        return row
