"""ExecuteConcreteSql: run the predicted SQL read-only, with a time limit and a row cap."""

from __future__ import annotations

import asyncio
from typing import Any

from stages.base import LocalStage
from stages.dataset import require
from stages.execution import ExecResult, run_sql


def result_summary(result: ExecResult, keep_rows: int) -> dict[str, Any]:
    """A result as row data: ok/error, columns, the first `keep_rows` rows and the row count."""
    data = result.to_dict()
    return {
        "ok": result.ok,
        "error": result.error,
        "columns": data["columns"],
        "rows": data["rows"][:keep_rows],
        "row_count": len(data["rows"]),
        "truncated": result.truncated,
    }


class ExecuteConcreteSql(LocalStage):
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
        self.timeout = timeout
        self.max_rows = max_rows
        self.keep_rows = keep_rows

    async def execute(self, row: dict[str, Any], sql: str) -> dict[str, Any]:
        """Run `sql` on the row's database in a worker thread; the summary of the result."""
        path = self.database(row)
        result = await asyncio.to_thread(
            run_sql, path, sql, timeout=self.timeout, max_rows=self.max_rows
        )
        return result_summary(result, self.keep_rows)

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        sql = require(row, "pred_sql", "AddConcreteSql")
        row["execution"] = await self.execute(row, sql)
        return row
