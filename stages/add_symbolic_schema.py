"""AddSymbolicSchema: the kept schema written with symbols only, for the remote model."""

from __future__ import annotations

from typing import Any

from stages.base import LocalStage
from stages.sql.masking import symbolic_schema


class AddSymbolicSchema(LocalStage):
    """Adds `symbolic_schema`: `T1(C1 number primary key, ...)`, foreign keys and value notes."""

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        row["symbolic_schema"] = symbolic_schema(self.kept_schema(row), self.symbols(row))
        return row
