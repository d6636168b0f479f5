"""ExecuteConcreteSql: run the predicted SQL read-only, with a time limit and a row cap."""

from __future__ import annotations

from typing import Any

from stages.base import LocalStage, SqlExecution
from stages.dataset import require


class ExecuteConcreteSql(SqlExecution, LocalStage):
    """Adds `execution` for `pred_sql`: never writes, never hangs; errors stay on the row.

    A missing database is the row's error (it names the file).
    """

    def __init__(
        self,
        tables: str = "tables.json",
        databases: str = "databases",
        timeout: float = 5.0,
        max_rows: int = 10000,
        keep_rows: int = 5,
    ) -> None:
        super().__init__(tables, databases)
        self._init_execution(timeout, max_rows, keep_rows)

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        sql = require(row, "pred_sql", "AddConcreteSql")
        row["execution"] = await self.execute(row, sql)
        return row
