"""GoTaglio-style experiment layer: configurable pipelines, run logs, reports."""

from .config import Internal, Prompt
from .functions import FunctionStage
from .pipeline import ExperimentPipeline, Pipeline, load_pipeline

__all__ = [
    "ExperimentPipeline",
    "FunctionStage",
    "Internal",
    "Pipeline",
    "Prompt",
    "load_pipeline",
]
