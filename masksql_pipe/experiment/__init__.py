"""GoTaglio-style experiment layer: configurable pipelines, run logs, reports.

Names are imported on first use (PEP 562): the CLI's commands live in this package and must
not load configuration, pydantic and the model layer just to print `--help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from masksql_pipe.lazy import lazy_exports

if TYPE_CHECKING:
    from masksql_pipe.experiment.config import Internal, Prompt
    from masksql_pipe.experiment.functions import FunctionStage
    from masksql_pipe.experiment.pipeline import ExperimentPipeline, Pipeline, load_pipeline

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
