"""RepairSql: when the concrete SQL fails to run, the small local model fixes it; rerun it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from masksql_pipe.lm.base import Model
from stages.answers.replies import parse_sql_reply, render_sql_reply
from stages.base import ExecutionLimits, ModelStage, SqlExecution
from stages.dataset.spider import require


class RepairSql(SqlExecution, ModelStage):
    """Only for rows whose `execution` failed: asks for a fixed `pred_sql` (real names are fine
    here, the model is local), keeps the old one in `pred_sql_before_repair` and the old result
    in `execution_before_repair`, and executes the new one. Other rows: no model call.
    """

    template_name = "repair_sql"
    prop = "pred_sql"

    def __init__(
        self,
        model: str | Model = "oracle",
        template: str | Path | None = None,
        tables: str = "tables.json",
        databases: str = "databases",
        limits: ExecutionLimits | None = None,
    ) -> None:
        super().__init__(model, template, tables, databases)
        self._init_execution(limits)

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return self.render(
            question=row["question"],
            schema=self.kept_schema(row).to_text(types=True),
            sql=row["pred_sql"],
            error=row["execution"]["error"],
        )

    def _oracle(self, row: dict[str, Any]) -> str:
        return render_sql_reply(row["query"])

    def _process_output(self, row: dict[str, Any], output: str) -> str:
        return parse_sql_reply(output)

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        execution = require(row, "execution", "ExecuteConcreteSql")
        if execution.get("ok"):
            return row
        row["pred_sql_before_repair"] = row["pred_sql"]
        row["execution_before_repair"] = execution
        await super()._process_row(row)
        row["execution"] = await self.execute(row, row["pred_sql"])
        return row
