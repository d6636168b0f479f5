"""ExecuteConcreteSql: run the predicted SQL read-only, with a time limit and a row cap."""

from __future__ import annotations

from typing import Any, ClassVar

from stages.base import ExecutionLimits, LocalStage, SqlExecution
from stages.dataset.spider import require


class ExecuteConcreteSql(SqlExecution, LocalStage):
    """Adds `execution` for `pred_sql`: never writes, never hangs; errors stay on the row.

    A missing database is the row's error (it names the file).
    """

    processes: ClassVar[bool] = True
    """SQL runs and comparisons are CPU work with no model: rows go to worker processes
    (each opens its own connections, one per query; nothing is kept across rows)."""

    def __init__(
        self,
        tables: str = "tables.json",
        databases: str = "databases",
        limits: ExecutionLimits | None = None,
    ) -> None:
        super().__init__(tables, databases)
        self._init_execution(limits)

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        sql = require(row, "pred_sql", "AddConcreteSql")
        row["execution"] = await self.execute(row, sql)
        return row
