"""AddFilteredSchema: the schema cut down to the ranked items, keys kept so joins still work."""

from __future__ import annotations

from typing import Any

from stages.base import LocalStage
from stages.dataset import require
from stages.ranking import cap_items


class AddFilteredSchema(LocalStage):
    """Adds `filtered_schema` ({table: [columns]}, keys included) and its prompt text.

    `max_tables` / `max_columns` (0: no cap) keep only the best-ranked tables and, of each,
    the best-ranked columns, as the original MaskSQL's ranking caps do (keys still kept).
    """

    def __init__(
        self,
        tables: str = "tables.json",
        databases: str = "databases",
        max_tables: int = 0,
        max_columns: int = 0,
    ) -> None:
        super().__init__(tables, databases)
        self.max_tables = max_tables
        self.max_columns = max_columns

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        items = require(row, "schema_items", "RankSchemaItems")
        if self.max_tables or self.max_columns:
            items = cap_items(items, self.full_schema(row), self.max_tables, self.max_columns)
        kept = self.full_schema(row).filter(items)
        if not kept.tables:
            raise ValueError(f"no table of db_id {row['db_id']!r} left after ranking: {items}")
        row["filtered_schema"] = {t.name: [c.name for c in t.columns] for t in kept.tables}
        row["filtered_schema_text"] = kept.to_text(types=True)
        return row
