"""GoTaglio-style experiment layer: configurable pipelines, run logs, reports.

Names are imported on first use (PEP 562): the CLI's commands live in this package and must
not load configuration, pydantic and the model layer just to print `--help`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Internal, Prompt
    from .functions import FunctionStage
    from .pipeline import ExperimentPipeline, Pipeline, load_pipeline

_EXPORTS = {
    "ExperimentPipeline": ".pipeline",
    "FunctionStage": ".functions",
    "Internal": ".config",
    "Pipeline": ".pipeline",
    "Prompt": ".config",
    "load_pipeline": ".pipeline",
}
"""Public name -> the module (relative to this package) that defines it."""

__all__ = [
    "ExperimentPipeline",
    "FunctionStage",
    "Internal",
    "Pipeline",
    "Prompt",
    "load_pipeline",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
