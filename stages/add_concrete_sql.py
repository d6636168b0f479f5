"""AddConcreteSql: the symbolic SQL mapped back to real names and values, on the local side."""

from __future__ import annotations

from typing import Any

from stages.base import LocalStage
from stages.dataset import require
from stages.sql.masking import unmask_sql


class AddConcreteSql(LocalStage):
    """Adds `pred_sql`: `symbolic_sql` with T#/C#/V# replaced by quoted names and literals."""

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        symbolic = require(row, "symbolic_sql", "GenerateSymbolicSql")
        row["pred_sql"] = unmask_sql(symbolic, self.symbols(row))
        return row
