"""masksql-pipe: language-model experiments as numbered JSON file stages.

The public names, from the one table below, are imported on first use (PEP 562), so
`python main.py --help` and the inspection commands do not pay for the engine, templates and
model layer they never touch.
"""

from masksql_pipe.lazy import lazy_exports

_EXPORTS = {
    "masksql_pipe.engine.basic_stages": (
        "CopyTransformer",
        "DeleteProp",
        "FilterList",
        "LimitJson",
    ),
    "masksql_pipe.engine.dag": ("build_stages", "order_nodes"),
    "masksql_pipe.engine.dotted": ("delete_path", "get_path", "set_path"),
    "masksql_pipe.engine.files": ("read_rows",),
    "masksql_pipe.engine.pipeline": ("Pipeline", "StageInterrupted"),
    "masksql_pipe.engine.stage": (
        "ERROR_KEY",
        "JsonListTransformer",
        "RunOptions",
        "StageRun",
        "WholeListTransformer",
        "current_row_index",
    ),
    "masksql_pipe.errors": (
        "ConfigError",
        "ExceptionContext",
        "InputError",
        "ModelError",
        "PipeError",
        "SpecError",
    ),
    "masksql_pipe.experiment.pipeline": ("ExperimentPipeline",),
    "masksql_pipe.lm.model_entries": ("Price",),
    "masksql_pipe.lm.pricing": ("Budget", "BudgetExceeded"),
    "masksql_pipe.prompt.log": (
        "find_prompt_log",
        "latest_by_row",
        "prompt_log_path",
        "read_prompt_log",
    ),
    "masksql_pipe.prompt.processor": ("PromptProcessor", "ReplyCutOff"),
}
"""Module -> the public names it defines: the package's one export list."""

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
