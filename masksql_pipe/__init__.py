"""masksql-pipe: language-model experiments as numbered JSON file stages.

The names below are imported on first use (PEP 562), so `python main.py --help` and the
inspection commands do not pay for the engine, templates and model layer they never touch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from masksql_pipe.lazy import lazy_exports

if TYPE_CHECKING:
    from masksql_pipe.common import CopyTransformer, DeleteProp, FilterList, LimitJson
    from masksql_pipe.dag import build_stages, order_nodes
    from masksql_pipe.dotted import delete_path, get_path, set_path
    from masksql_pipe.errors import ConfigError, InputError, ModelError, PipeError, SpecError
    from masksql_pipe.experiment.pipeline import ExperimentPipeline
    from masksql_pipe.files import read_rows
    from masksql_pipe.lm.pricing import Budget, BudgetExceeded, Price
    from masksql_pipe.pipeline import Pipeline, StageInterrupted
    from masksql_pipe.prompt import PromptProcessor, ReplyCutOff
    from masksql_pipe.prompt_log import (
        find_prompt_log,
        latest_by_row,
        prompt_log_path,
        read_prompt_log,
    )
    from masksql_pipe.transformer import (
        ERROR_KEY,
        JsonListTransformer,
        RunOptions,
        StageRun,
        current_row_index,
    )

_EXPORTS = {
    "Budget": "masksql_pipe.lm.pricing",
    "BudgetExceeded": "masksql_pipe.lm.pricing",
    "ConfigError": "masksql_pipe.errors",
    "CopyTransformer": "masksql_pipe.common",
    "DeleteProp": "masksql_pipe.common",
    "ExperimentPipeline": "masksql_pipe.experiment.pipeline",
    "ERROR_KEY": "masksql_pipe.transformer",
    "FilterList": "masksql_pipe.common",
    "InputError": "masksql_pipe.errors",
    "JsonListTransformer": "masksql_pipe.transformer",
    "LimitJson": "masksql_pipe.common",
    "ModelError": "masksql_pipe.errors",
    "PipeError": "masksql_pipe.errors",
    "Pipeline": "masksql_pipe.pipeline",
    "Price": "masksql_pipe.lm.pricing",
    "PromptProcessor": "masksql_pipe.prompt",
    "ReplyCutOff": "masksql_pipe.prompt",
    "RunOptions": "masksql_pipe.transformer",
    "SpecError": "masksql_pipe.errors",
    "StageInterrupted": "masksql_pipe.pipeline",
    "StageRun": "masksql_pipe.transformer",
    "build_stages": "masksql_pipe.dag",
    "current_row_index": "masksql_pipe.transformer",
    "delete_path": "masksql_pipe.dotted",
    "find_prompt_log": "masksql_pipe.prompt_log",
    "get_path": "masksql_pipe.dotted",
    "latest_by_row": "masksql_pipe.prompt_log",
    "order_nodes": "masksql_pipe.dag",
    "prompt_log_path": "masksql_pipe.prompt_log",
    "read_prompt_log": "masksql_pipe.prompt_log",
    "read_rows": "masksql_pipe.files",
    "set_path": "masksql_pipe.dotted",
}
"""Public name -> the module (relative to this package) that defines it."""

__all__ = [
    "ERROR_KEY",
    "Budget",
    "BudgetExceeded",
    "ConfigError",
    "CopyTransformer",
    "DeleteProp",
    "ExperimentPipeline",
    "FilterList",
    "InputError",
    "JsonListTransformer",
    "LimitJson",
    "ModelError",
    "PipeError",
    "Pipeline",
    "Price",
    "PromptProcessor",
    "ReplyCutOff",
    "RunOptions",
    "SpecError",
    "StageInterrupted",
    "StageRun",
    "build_stages",
    "current_row_index",
    "delete_path",
    "find_prompt_log",
    "get_path",
    "latest_by_row",
    "order_nodes",
    "prompt_log_path",
    "read_prompt_log",
    "read_rows",
    "set_path",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
