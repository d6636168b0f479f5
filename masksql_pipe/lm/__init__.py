"""Language-model layer: models behind one small interface, cache, limits, registry.

Names are imported on first use (PEP 562): the OpenAI-compatible model (and with it the
`openai` package, ~1 s to import) loads only when asked for, so commands that never call a
remote model start fast.
"""

from masksql_pipe.lazy import lazy_exports

_EXPORTS = {
    "masksql_pipe.lm.base": ("Completion", "InferModel", "Model", "estimate_tokens"),
    "masksql_pipe.lm.batch": ("BatchRunner",),
    "masksql_pipe.lm.cache": ("ResponseCache", "cache_key"),
    "masksql_pipe.lm.endpoints": ("ReplicaModel",),
    "masksql_pipe.lm.limits": ("CallLimits",),
    "masksql_pipe.lm.model_entries": ("BatchSettings", "ModelEntry", "Price"),
    "masksql_pipe.lm.offline": ("EchoModel", "FlakeyModel", "OracleModel"),
    "masksql_pipe.lm.openai_model": ("ModelRejected", "OpenAIModel"),
    "masksql_pipe.lm.pricing": ("Budget", "BudgetExceeded"),
    "masksql_pipe.lm.registry": ("ModelRegistry",),
}
"""Module -> the public names it defines: the package's one export list."""

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
