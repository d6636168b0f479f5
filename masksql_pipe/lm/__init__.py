"""Language-model layer: models behind one small interface, cache, limits, registry."""

from masksql_pipe.lm.base import Completion, Model, estimate_tokens
from masksql_pipe.lm.cache import ResponseCache, cache_key
from masksql_pipe.lm.limits import CallLimits
from masksql_pipe.lm.offline import EchoModel, FlakeyModel, OracleModel
from masksql_pipe.lm.openai_model import ModelRejected, OpenAIModel
from masksql_pipe.lm.registry import ModelRegistry

__all__ = [
    "CallLimits",
    "Completion",
    "EchoModel",
    "FlakeyModel",
    "Model",
    "ModelRegistry",
    "ModelRejected",
    "OpenAIModel",
    "OracleModel",
    "ResponseCache",
    "cache_key",
    "estimate_tokens",
]
