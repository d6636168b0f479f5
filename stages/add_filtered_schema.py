"""AddFilteredSchema: the schema cut down to the ranked items, keys kept so joins still work."""

from __future__ import annotations

from typing import Any

from stages.base import LocalStage
from stages.dataset import require


class AddFilteredSchema(LocalStage):
    """Adds `filtered_schema` ({table: [columns]}, keys included) and its prompt text."""

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        items = require(row, "schema_items", "RankSchemaItems")
        kept = self.full_schema(row).filter(items)
        if not kept.tables:
            raise ValueError(f"no table of db_id {row['db_id']!r} left after ranking: {items}")
        row["filtered_schema"] = {t.name: [c.name for c in t.columns] for t in kept.tables}
        row["filtered_schema_text"] = kept.to_text(types=True)
        return row
