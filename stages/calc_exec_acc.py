"""CalcExecAcc: Spider test-suite execution match of the predicted SQL against the gold SQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from stages.base import ExecutionLimits, LocalStage, SqlExecution
from stages.dataset.spider import require
from stages.metrics.original import original_exec_match
from stages.sql.exec_match import compare_results, has_top_level_order_by

if TYPE_CHECKING:
    from stages.sql.execution import ExecResult


class CalcExecAcc(SqlExecution, LocalStage):
    """Adds `exec_acc` (1 or 0), `gold_result`/`pred_result` (first rows) and their errors,
    and beside it the original MaskSQL's list-equality EA (`exec_acc_original`) and both EAs
    of the SQL before RepairSql changed it (`*_before_repair`)."""

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

    def _score(
        self, row: dict[str, Any], gold: ExecResult, pred: ExecResult, before: ExecResult
    ) -> dict[str, Any]:
        order_matters = has_top_level_order_by(row["query"])
        match = compare_results(gold, pred, order_matters=order_matters)
        return {
            "exec_acc": match.score,
            "exec_acc_original": original_exec_match(gold, pred),
            "exec_acc_before_repair": compare_results(
                gold, before, order_matters=order_matters
            ).score,
            "exec_acc_original_before_repair": original_exec_match(gold, before),
            "gold_result": gold.summary(self.limits.keep_rows),
            "pred_result": pred.summary(self.limits.keep_rows),
            "gold_error": match.gold_error,
            "pred_error": match.pred_error,
        }

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        path = self.database(row)
        gold_sql = require(row, "query", "the input")
        pred_sql = require(row, "pred_sql", "AddConcreteSql")
        before_sql = row.get("pred_sql_before_repair")
        queries = [gold_sql, pred_sql] + ([before_sql] if isinstance(before_sql, str) else [])
        # the queries of a row run side by side: SQLite releases the interpreter lock, so one
        # slow join is not paid for two or three times over on the row's critical path
        results = await asyncio.gather(*(asyncio.to_thread(self.run, path, q) for q in queries))
        gold, pred, before = results[0], results[1], results[-1]
        row.update(await asyncio.to_thread(self._score, row, gold, pred, before))
        return row
