"""GoTaglio-style experiment layer: configurable pipelines, run logs, reports.

Names are imported on first use (PEP 562): the CLI's commands live in this package and must
not load configuration, pydantic and the model layer just to print `--help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from ..errors import ExceptionContext
    from ..lm.base import InferModel
    from .config import Internal, Prompt, build_template
    from .functions import FunctionStage
    from .pipeline import ExperimentPipeline, Pipeline, load_pipeline

_EXPORTS = {
    "ExceptionContext": "..errors",
    "ExperimentPipeline": ".pipeline",
    "FunctionStage": ".functions",
    "InferModel": "..lm.base",
    "Internal": ".config",
    "Pipeline": ".pipeline",
    "Prompt": ".config",
    "build_template": ".config",
    "load_pipeline": ".pipeline",
}
"""Public name -> the module (relative to this package) that defines it."""

__all__ = [
    "ExceptionContext",
    "ExperimentPipeline",
    "FunctionStage",
    "InferModel",
    "Internal",
    "Pipeline",
    "Prompt",
    "build_template",
    "load_pipeline",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
