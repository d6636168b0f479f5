"""GenerateSymbolicSql: the large remote model writes SQL seeing only symbols.

Its prompt is built from `symbolic_question` and `symbolic_schema` alone, and every part passes
the privacy guard first (LlmStage): no real table, column or value reaches the remote side.
"""

from __future__ import annotations

from typing import Any

from stages.answers.oracle import gold_symbolic_sql
from stages.answers.replies import parse_sql_reply, render_sql_reply
from stages.base import LlmStage
from stages.sql.masking import question_symbol_notes


class GenerateSymbolicSql(LlmStage):
    """Adds `symbolic_sql`: SQLite over T#/C#/V# symbols."""

    template_name = "generate_symbolic_sql"
    prop = "symbolic_sql"

    def _prompt_parts(self, row: dict[str, Any]) -> dict[str, Any]:
        question, schema = row["symbolic_question"], row["symbolic_schema"]
        return {
            "question": question,
            "evidence": row.get("symbolic_evidence") or "",
            "schema": schema,
            "notes": "; ".join(question_symbol_notes(question, schema)) if self.masked else "",
        }

    def _oracle(self, row: dict[str, Any]) -> str:
        if not self.masked:
            return render_sql_reply(row["query"])
        sql = gold_symbolic_sql(row["query"], self.kept_schema(row), self.symbols(row))
        return render_sql_reply(sql)

    def _process_output(self, row: dict[str, Any], output: str) -> str:
        return parse_sql_reply(output)
