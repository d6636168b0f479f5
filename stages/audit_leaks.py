"""AuditLeaks: the deterministic leak audit of every row, from the llm-role prompt logs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from masksql_pipe.engine.stage import ERROR_KEY, StageRun, WholeListTransformer
from masksql_pipe.prompt.log import find_prompt_log, latest_by_row, read_prompt_log, sent_text
from stages.base import LocalStage
from stages.privacy.audit import AuditRules, audit_text, mark_allowed, summarize_leaks
from stages.privacy.stage import INDEX_FOLDER, KEPT_VALUES_KEY
from stages.privacy.value_index import ValueIndex

_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def template_words(paths: Iterable[str | Path]) -> list[str]:
    """The words of prompt templates outside their jinja tags: public text, never a leak."""
    words: set[str] = set()
    for path in paths:
        text = _TEMPLATE_TAG.sub(" ", Path(path).read_text(encoding="utf-8"))
        words.update(w.lower() for w in re.findall(r"\w+", text))
    return sorted(words)


class AuditLeaks(LocalStage, WholeListTransformer):
    """Adds `leaks` ([{kind, text, stage}]) and `leak_audit` ({prompts}) to every row.

    For each stage in `llm_stages`, the row's latest logged call (as actually sent) is scanned
    by `stages.privacy.audit.audit_text` for the database's names and values, the question's
    numbers and the gold SQL's literals. Rows that failed are audited too: a row can fail
    after its prompt went out. `ignore_words` are the llm templates' own words.
    """

    def __init__(
        self,
        tables: str = "tables.json",
        databases: str = "databases",
        llm_stages: list[str] | None = None,
        ignore_words: list[str] | None = None,
    ) -> None:
        super().__init__(tables, databases)
        self.llm_stages = list(llm_stages or [])
        self.ignore_words = sorted({str(w).lower() for w in ignore_words or []})
        self._logs: dict[str, dict[int, dict[str, Any]]] = {}
        self._index_dir: Path | None = None

    async def setup(self, run: StageRun) -> None:
        """Read the llm stages' prompt logs (the latest call per row)."""
        await super().setup(run)
        self._index_dir = Path(run.book_dir) / INDEX_FOLDER
        own = re.match(r"(\d+)_", run.stage_key)
        before = int(own.group(1)) if own else None
        self._logs = {}
        for name in self.llm_stages:
            path = find_prompt_log(run.book_dir, name, before)
            self._logs[name] = latest_by_row(read_prompt_log(path)) if path else {}

    def audit(self, row: dict[str, Any], index: int) -> dict[str, Any]:
        """Set `leaks` and `leak_audit` on `row` from the prompts sent for row `index`."""
        schema = self.full_schema(row)
        values = None
        if self._index_dir is not None:
            values = ValueIndex.for_database(self.database(row), self._index_dir)
        rules = AuditRules(ignore_words=frozenset(self.ignore_words))
        leaks: list[dict[str, Any]] = []
        prompts = 0
        for stage, entries in self._logs.items():
            entry = entries.get(index)
            if entry is None:
                continue
            prompts += 1
            text = sent_text(entry)
            for leak in audit_text(
                text, schema, values, str(row.get("question", "")), str(row.get("query", "")), rules
            ):
                leaks.append({**leak, "stage": stage})
        row["leaks"] = mark_allowed(leaks, row.get(KEPT_VALUES_KEY) or ())
        row["leak_audit"] = {"prompts": prompts}
        return row

    async def process_list(
        self, rows: list[dict[str, Any]], indices: list[int]
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Audit every row, failed ones included (their prompts may have gone out); the run's
        audit figures go to the stage's stats, for summaries and reports."""
        audited: list[dict[str, Any]] = []
        for index in indices:
            row = rows[index]
            try:
                row = self.audit(row, index)
            except Exception as exc:  # a missing database: the row says so
                if ERROR_KEY not in row:  # a failed row keeps the error it already has
                    row = self.failed_row(row, exc)
            audited.append(row)
            yield index, row
        figures = summarize_leaks(audited)
        self.stats["leak_audit"] = figures
        kinds = ", ".join(f"{k} {v}" for k, v in figures["by_kind"].items())
        share = figures["leak_rate"]
        self.stats["figures"] = {
            "rows with a leak in an llm prompt (audit)": (
                f"{figures['rows_with_leaks']}/{figures['audited_rows']}"
                + (f" ({100 * share:.2f}%)" if share is not None else "")
                + f"; {kinds}"
            )
        }
