"""GoTaglio-style experiment layer: configurable pipelines, run logs, reports.

Names are imported on first use (PEP 562): the CLI's commands use this package and must not
load configuration, pydantic and the model layer just to print `--help`.
"""

from masksql_pipe.lazy import lazy_exports

_EXPORTS = {
    "masksql_pipe.errors": ("ExceptionContext",),
    "masksql_pipe.experiment.config": ("Internal", "Prompt", "build_template"),
    "masksql_pipe.experiment.functions": ("FunctionStage",),
    "masksql_pipe.experiment.pipeline": (
        "ConfiguredPipeline",
        "ExperimentPipeline",
        "Pipeline",
        "load_pipeline",
    ),
    "masksql_pipe.lm.base": ("InferModel",),
}
"""Module -> the public names it defines: the package's one export list."""

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
