"""Language-model layer: models behind one small interface, cache, limits, registry.

The OpenAI-compatible model (and with it the `openai` package, ~1 s to import) is loaded on
first use only, so commands that never call a remote model start fast.
"""

from typing import TYPE_CHECKING, Any

from masksql_pipe.lm.base import Completion, Model, estimate_tokens
from masksql_pipe.lm.batch import BatchRunner, BatchSettings
from masksql_pipe.lm.cache import ResponseCache, cache_key
from masksql_pipe.lm.limits import CallLimits
from masksql_pipe.lm.offline import EchoModel, FlakeyModel, OracleModel
from masksql_pipe.lm.pricing import Budget, BudgetExceeded, Price
from masksql_pipe.lm.registry import ModelRegistry

if TYPE_CHECKING:
    from masksql_pipe.lm.endpoints import ReplicaModel
    from masksql_pipe.lm.openai_model import ModelRejected, OpenAIModel

_LAZY = {"ModelRejected", "OpenAIModel"}
_LAZY_REPLICAS = {"ReplicaModel"}

__all__ = [
    "BatchRunner",
    "BatchSettings",
    "Budget",
    "BudgetExceeded",
    "CallLimits",
    "Completion",
    "EchoModel",
    "FlakeyModel",
    "Model",
    "ModelRegistry",
    "ModelRejected",
    "OpenAIModel",
    "OracleModel",
    "Price",
    "ReplicaModel",
    "ResponseCache",
    "cache_key",
    "estimate_tokens",
]


def __getattr__(name: str) -> Any:
    """Import the OpenAI-compatible model only when it is asked for."""
    if name in _LAZY:
        from masksql_pipe.lm import openai_model

        return getattr(openai_model, name)
    if name in _LAZY_REPLICAS:
        from masksql_pipe.lm import endpoints

        return getattr(endpoints, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
