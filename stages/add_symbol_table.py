"""AddSymbolTable: every kept table gets a symbol T1, T2 ... and every column name C1, C2 ..."""

from __future__ import annotations

from typing import Any

from stages.base import LocalStage
from stages.sql.symbols import SymbolTable


class AddSymbolTable(LocalStage):
    """Adds `symbols` (tables, columns, and later values) built from the filtered schema."""

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        row["symbols"] = SymbolTable.from_schema(self.kept_schema(row)).to_dict()
        return row
