"""A one-model-stage pipeline for CLI tests of cost, budget and batch mode (importable)."""

from __future__ import annotations

from typing import Any

from masksql_pipe.engine.basic_stages import LimitJson
from masksql_pipe.experiment import Pipeline as Experiment
from masksql_pipe.prompt.processor import PromptProcessor


class AskQuestion(PromptProcessor):
    """Sends `Q: <question>`; stores the reply."""

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return f"Q: {row['question']}"


class AskPipeline(Experiment):
    """LimitJson, then one model stage whose model is `model.name`."""

    _name = "ask"
    _description = "Asks a model each row's question."

    def __init__(self, registry, replacement_config=None, flat_config_patch=None):
        self._registry = registry
        super().__init__({"model": {"name": "echo"}}, replacement_config, flat_config_patch)

    def stages(self) -> dict[str, Any]:
        options = self.options
        return {
            "LimitJson": LimitJson(options.start, options.limit),
            "AskQuestion": AskQuestion("answer", self.config()["model"]["name"]),
        }

    def case_passed(self, row: dict[str, Any]) -> bool:
        return row.get("answer") == f"Q: {row['question']}"
