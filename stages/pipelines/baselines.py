"""Baselines and ablations of MaskSQL as pipelines (listed by `python main.py pipelines`).

- `slm-only`: the small local model writes the SQL from the real schema and question; no
  prompt leaves the machine, so there is nothing to attack or audit.
- `gold-links`: the linking stages (ranking, value detection and linking, schema linking) are
  answered by the oracle from the gold SQL, the SQL by the configured models: the EA gap to a
  `masksql` run with the same models is what linking errors cost.
"""

from __future__ import annotations

from masksql_pipe.engine.stage import JsonListTransformer
from masksql_pipe.lm.base import Model
from stages.pipelines.masksql import MaskSqlPipeline

REMOTE_ONLY_STAGES = ("AddInferenceAttack", "AddQuestionAttack", "AuditLeaks")
"""Stages that judge what a remote model saw: meaningless when nothing is sent."""

LINKING_TEMPLATES = ("rank_schema_items", "detect_values", "link_values", "link_schema")


class SlmOnlyPipeline(MaskSqlPipeline):
    """Every stage on the small local model, unmasked: the all-local baseline."""

    _name = "slm-only"
    _description = (
        "Baseline: the small local model (models.slm) writes the SQL from the real schema; "
        "nothing leaves the machine, so no attack or leak audit runs."
    )
    _masked = False

    def _role(self, template: str) -> str:
        return "slm"

    def describe(self) -> str:
        """Say that one local model does everything."""
        return f"models: slm={self.config()['models']['slm']} for every stage; nothing is sent"

    def stages(self) -> dict[str, JsonListTransformer]:
        """The MaskSQL stages on the slm, without the attackers and the leak audit."""
        stages = super().stages()
        for name in REMOTE_ONLY_STAGES:
            stages.pop(name, None)
        return stages


class GoldLinksPipeline(MaskSqlPipeline):
    """MaskSQL with the linking stages answered by the oracle (gold links)."""

    _name = "gold-links"
    _description = (
        "Ablation: ranking, value and schema linking answered by the oracle from the gold SQL; "
        "SQL written by models.llm as in masksql, to separate linking errors from SQL errors."
    )

    def _role(self, template: str) -> str:
        return "gold" if template in LINKING_TEMPLATES else super()._role(template)

    def _models(self) -> dict[str, Model]:
        models = super()._models()
        models["gold"] = self._registry.get("oracle")
        return models

    def describe(self) -> str:
        """Name the gold linking beside the models."""
        return super().describe() + "; linking: oracle (gold links)"
