"""AddConcreteSql: the symbolic SQL mapped back to real names and values, on the local side."""

from __future__ import annotations

from typing import Any

from stages.base import LocalStage
from stages.dataset.spider import require
from stages.sql.masking import unmask_sql


class AddConcreteSql(LocalStage):
    """Adds `pred_sql`: `symbolic_sql` with T#/C#/V# replaced by quoted names and literals
    (with `masked=False`, the unmasked baseline, the remote model wrote real SQL: kept as is)."""

    def __init__(
        self, tables: str = "tables.json", databases: str = "databases", masked: bool = True
    ) -> None:
        super().__init__(tables, databases)
        self.masked = masked

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        symbolic = require(row, "symbolic_sql", "GenerateSymbolicSql")
        row["pred_sql"] = unmask_sql(symbolic, self.symbols(row)) if self.masked else symbolic
        return row
