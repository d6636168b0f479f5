"""RepairSymbolicSql: asks the remote model for a fix only when a local check finds a problem."""

from __future__ import annotations

from typing import Any

from stages.base import LlmStage
from stages.dataset import require
from stages.oracle import gold_symbolic_sql
from stages.replies import parse_sql_reply, render_sql_reply
from stages.sql.symbolic_check import symbolic_problems


class RepairSymbolicSql(LlmStage):
    """Checks `symbolic_sql` locally (`symbolic_sql_problems`); when it fails, replaces it with
    the model's repair (the draft is kept in `symbolic_sql_draft`). No problem: no model call.
    The prompt holds only symbols: the symbolic question, schema, SQL and SQLite's messages.
    """

    template_name = "repair_symbolic_sql"
    prop = "symbolic_sql"

    sql_parts = ("sql", "problems")

    def _prompt_parts(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "question": row["symbolic_question"],
            "evidence": row.get("symbolic_evidence") or "",
            "schema": row["symbolic_schema"],
            "sql": row["symbolic_sql"],
            "problems": list(row.get("symbolic_sql_problems") or []),
        }

    def _oracle(self, row: dict[str, Any]) -> str:
        if not self.masked:
            return render_sql_reply(row["query"])
        sql = gold_symbolic_sql(row["query"], self.kept_schema(row), self.symbols(row))
        return render_sql_reply(sql)

    def _process_output(self, row: dict[str, Any], output: str) -> str:
        return parse_sql_reply(output)

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        sql = require(row, "symbolic_sql", "GenerateSymbolicSql")
        problems = symbolic_problems(
            sql, self.kept_schema(row), self.symbols(row), masked=self.masked
        )
        row["symbolic_sql_problems"] = problems
        if not problems:
            return row
        row["symbolic_sql_draft"] = sql
        return await super()._process_row(row)
