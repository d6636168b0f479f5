"""AddSymbolicSchema: the kept schema written with symbols only, for the remote model."""

from __future__ import annotations

from typing import Any

from stages.base import LocalStage
from stages.sql.masking import symbolic_schema


class AddSymbolicSchema(LocalStage):
    """Adds `symbolic_schema`: `T1(C1 number primary key, ...)`, foreign keys and value notes.

    With `masked=False` (the unmasked baseline) it is the kept schema with its real names.
    """

    def __init__(
        self, tables: str = "tables.json", databases: str = "databases", masked: bool = True
    ) -> None:
        super().__init__(tables, databases)
        self.masked = masked

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        kept = self.kept_schema(row)
        if self.masked:
            full = self.full_schema(row)  # a declared type naming any of it is not shown
            row["symbolic_schema"] = symbolic_schema(kept, self.symbols(row), names=full)
        else:
            row["symbolic_schema"] = kept.to_text(types=True)
        return row
