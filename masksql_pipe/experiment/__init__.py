"""GoTaglio-style experiment layer: configurable pipelines, run logs, reports."""

from .config import Internal, Prompt
from .functions import FunctionStage
from .pipeline import Pipeline, load_pipeline

__all__ = ["FunctionStage", "Internal", "Pipeline", "Prompt", "load_pipeline"]
