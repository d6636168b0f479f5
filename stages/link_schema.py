"""LinkSchema: the small local model links question terms to the tables and columns they name."""

from __future__ import annotations

from typing import Any

from stages.answers.oracle import gold_schema_links
from stages.answers.replies import parse_object_reply, render_schema_links_reply
from stages.base import ModelStage


class LinkSchema(ModelStage):
    """Adds `schema_links`: question term (as written) -> "table" or "table.column".

    The oracle links every term that names a kept item (not only those the gold query uses).
    """

    template_name = "link_schema"
    prop = "schema_links"
    answer_schema = {"type": "object", "additionalProperties": {"type": "string"}}

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return self.render(
            question=row["question"],
            values=list(row.get("values") or []),
            schema=self.kept_schema(row).to_text(types=True),
        )

    def _oracle(self, row: dict[str, Any]) -> str:
        kept = self.kept_schema(row)
        items = {t.name: [c.name for c in t.columns] for t in kept.tables}
        links = gold_schema_links(row["question"], row["query"], self.full_schema(row), items)
        return render_schema_links_reply(links)

    def _process_output(self, row: dict[str, Any], output: str) -> dict[str, str]:
        reply = parse_object_reply(output)
        symbols = self.symbols(row)
        links: dict[str, str] = {}
        for term, item in reply.items():
            if isinstance(item, list):
                item = item[0] if item else None
            if isinstance(item, str) and str(term).strip() and symbols.item_symbol(item):
                links[str(term)] = item
        return links
