"""Base classes of the MaskSQL stages: local stages and model stages over a Spider dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from masksql_pipe.lm.base import Model
from masksql_pipe.prompt import PromptProcessor
from masksql_pipe.transformer import JsonListTransformer, StageRun
from stages.dataset import DatasetMixin, default_template


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
