"""RepairSymbolicSql: asks the remote model for a fix only when a local check finds a problem."""

from __future__ import annotations

from typing import Any

from masksql_pipe.errors import InputError
from stages.answers.oracle import gold_symbolic_sql
from stages.answers.replies import parse_sql_reply, render_sql_reply
from stages.base import LlmStage
from stages.dataset.spider import require
from stages.sql.symbolic_check import symbolic_problems
from stages.sql.value_columns import align_value_columns, database_holds


class RepairSymbolicSql(LlmStage):
    """Checks `symbolic_sql` locally (`symbolic_sql_problems`); when it fails, replaces it with
    the model's repair (the draft is kept in `symbolic_sql_draft`). No problem: no model call.
    The prompt holds only symbols: the symbolic question, schema, SQL and SQLite's messages.

    First, a value symbol compared with a column that holds it in no row is moved to the one
    column of the query's tables that does, when there is exactly one (stages.sql.value_columns,
    checked on the local database); `value_columns_aligned` lists what moved and
    `symbolic_sql_unaligned` keeps the model's query.
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
        return self._aligned(row, parse_sql_reply(output))

    def _aligned(self, row: dict[str, Any], sql: str) -> str:
        """`sql` with value symbols on their own columns (masked runs); changes on the row."""
        if not self.masked:
            return sql
        try:
            holds = database_holds(self.database(row))
        except InputError:
            return sql  # no database to check against: the query stays as written
        aligned, changes = align_value_columns(sql, self.symbols(row), self.kept_schema(row), holds)
        if changes:
            row["value_columns_aligned"] = [*row.get("value_columns_aligned", []), *changes]
        return aligned

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        for key in ("value_columns_aligned", "symbolic_sql_unaligned"):
            row.pop(key, None)  # a rerun records afresh
        written = require(row, "symbolic_sql", "GenerateSymbolicSql")
        sql = self._aligned(row, written)
        if sql != written:
            row["symbolic_sql_unaligned"] = written
            row["symbolic_sql"] = sql
        problems = symbolic_problems(
            sql, self.kept_schema(row), self.symbols(row), masked=self.masked
        )
        row["symbolic_sql_problems"] = problems
        if not problems:
            return row
        row["symbolic_sql_draft"] = sql
        return await super()._process_row(row)
