"""Base classes of the MaskSQL stages: local stages and model stages over a Spider dataset."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from masksql_pipe.engine.stage import JsonListTransformer, StageRun
from masksql_pipe.lm.base import Model
from masksql_pipe.prompt.processor import PromptProcessor
from stages.dataset.spider import DatasetMixin, default_template
from stages.privacy.stage import GuardedStage
from stages.sql.execution import ExecResult, run_sql, shared_budget


class ExecutionLimits(BaseModel):
    """How model-written SQL may run: seconds, rows fetched, rows kept on the row (validated:
    the `execution` settings of the MaskSQL pipeline are read into this one object)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: float = Field(5.0, gt=0, description="seconds before a query is interrupted")
    max_rows: int = Field(10000, ge=1, description="rows fetched at most")
    keep_rows: int = Field(5, ge=0, description="first rows kept in the row's summary")
    max_result_mb: int = Field(
        64, ge=1, description="MB one query's result may hold while fetched (else an error)"
    )
    max_total_mb: int = Field(
        256, ge=1, description="MB the queries running at once may hold together"
    )


class SqlExecution(DatasetMixin):
    """Running SQL read-only on a row's database within one `ExecutionLimits`, shared by the
    stages that execute SQL (they take ``limits`` as a constructor parameter, so the limits
    are part of their fingerprint)."""

    reads_databases: ClassVar[bool] = True
    limits: ExecutionLimits

    def _init_execution(self, limits: ExecutionLimits | None) -> None:
        self.limits = limits if limits is not None else ExecutionLimits()

    def run(self, path: Path, sql: str) -> ExecResult:
        """Run `sql` read-only within the limits (blocking: call from a worker thread)."""
        limits = self.limits
        return run_sql(
            path,
            sql,
            timeout=limits.timeout,
            max_rows=limits.max_rows,
            max_bytes=limits.max_result_mb * 1_000_000,
            budget=shared_budget(max(limits.max_total_mb, limits.max_result_mb) * 1_000_000),
        )

    async def execute(self, row: dict[str, Any], sql: str) -> dict[str, Any]:
        """Run `sql` on the row's database in a worker thread; the summary the row keeps."""
        result = await asyncio.to_thread(self.run, self.database(row), sql)
        return result.summary(self.limits.keep_rows)


class LocalStage(DatasetMixin, JsonListTransformer):
    """A stage that needs no model: it reads the dataset's schema or databases."""

    def __init__(self, tables: str = "tables.json", databases: str = "databases") -> None:
        self._init_dataset(tables, databases)

    async def setup(self, run: StageRun) -> None:
        """Resolve the dataset paths against the run's data folder."""
        self._setup_dataset(run)

    def fingerprint_extra(self) -> dict[str, Any]:
        """The tables.json digest, when the pipeline gave one."""
        return self._dataset_fingerprint()


class ModelStage(DatasetMixin, PromptProcessor):
    """A PromptProcessor over a Spider dataset, with a shipped template `prompts/<name>.j2`."""

    template_name: ClassVar[str]
    prop: ClassVar[str]

    def __init__(
        self,
        model: str | Model = "oracle",
        template: str | Path | None = None,
        tables: str = "tables.json",
        databases: str = "databases",
    ) -> None:
        chosen = template if template else default_template(self.template_name)
        PromptProcessor.__init__(self, self.prop, model, chosen)
        self._init_dataset(tables, databases)

    async def setup(self, run: StageRun) -> None:
        """Resolve dataset paths first (the first prompt is rendered during setup)."""
        self._setup_dataset(run)
        await PromptProcessor.setup(self, run)

    def fingerprint_extra(self) -> dict[str, Any]:
        """Model settings, template text and the tables.json digest."""
        return {**PromptProcessor.fingerprint_extra(self), **self._dataset_fingerprint()}


class LlmStage(GuardedStage, ModelStage):
    """A model stage of the remote (llm) role: every prompt part passes the privacy guard.

    `privacy` holds the `privacy` settings (guard mode, number policy); with `masked=False`
    (the unmasked baseline) the remote model sees the real question and schema.
    """

    def __init__(
        self,
        model: str | Model = "oracle",
        template: str | Path | None = None,
        tables: str = "tables.json",
        databases: str = "databases",
        privacy: dict[str, Any] | None = None,
        masked: bool = True,
    ) -> None:
        super().__init__(model, template, tables, databases)
        self._init_privacy(privacy, masked)

    sql_parts: ClassVar[tuple[str, ...]] = ()
    """Prompt parts that are SQL text (keywords and function names there are not names)."""

    PART_FIELDS: ClassVar[dict[str, str]] = {
        "question": "symbolic_question",
        "evidence": "symbolic_evidence",
        "schema": "symbolic_schema",
        "sql": "symbolic_sql",
        "problems": "symbolic_sql_problems",
    }
    """Row field each guarded prompt part is written back to."""

    async def setup(self, run: StageRun) -> None:
        """Find the value-index folder, then the model stage's own set-up."""
        self._setup_privacy(run)
        await super().setup(run)

    def _prompt_parts(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row texts the prompt is built from, by template variable name."""
        raise NotImplementedError

    def _get_prompt(self, row: dict[str, Any]) -> str:
        """Render the template from the parts, after the guard's last check of every part."""
        parts = self._prompt_parts(row)
        self.verify_parts(row, parts, self.sql_parts)
        return self.render(**parts, masked=self.masked)

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """Guard the prompt parts (mask what slipped through, or block), then ask the model."""
        if self.masked:
            guarded = await self.guard_parts(row, self._prompt_parts(row), self.sql_parts)
            for name, value in guarded.items():
                if name in self.PART_FIELDS:
                    row[self.PART_FIELDS[name]] = value
        return await super()._process_row(row)
