"""masksql-pipe: language-model experiments as numbered JSON file stages.

The names below are imported on first use (PEP 562), so `python main.py --help` and the
inspection commands do not pay for the engine, templates and model layer they never touch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from masksql_pipe.lazy import lazy_exports

if TYPE_CHECKING:
    from masksql_pipe.engine.basic_stages import CopyTransformer, DeleteProp, FilterList, LimitJson
    from masksql_pipe.engine.dag import build_stages, order_nodes
    from masksql_pipe.engine.dotted import delete_path, get_path, set_path
    from masksql_pipe.engine.files import read_rows
    from masksql_pipe.engine.pipeline import Pipeline, StageInterrupted
    from masksql_pipe.engine.stage import (
        ERROR_KEY,
        JsonListTransformer,
        RunOptions,
        StageRun,
        current_row_index,
    )
    from masksql_pipe.errors import ConfigError, InputError, ModelError, PipeError, SpecError
    from masksql_pipe.experiment.pipeline import ExperimentPipeline
    from masksql_pipe.lm.pricing import Budget, BudgetExceeded, Price
    from masksql_pipe.prompt.log import (
        find_prompt_log,
        latest_by_row,
        prompt_log_path,
        read_prompt_log,
    )
    from masksql_pipe.prompt.processor import PromptProcessor, ReplyCutOff

_EXPORTS = {
    "Budget": "masksql_pipe.lm.pricing",
    "BudgetExceeded": "masksql_pipe.lm.pricing",
    "ConfigError": "masksql_pipe.errors",
    "CopyTransformer": "masksql_pipe.engine.basic_stages",
    "DeleteProp": "masksql_pipe.engine.basic_stages",
    "ExperimentPipeline": "masksql_pipe.experiment.pipeline",
    "ERROR_KEY": "masksql_pipe.engine.stage",
    "FilterList": "masksql_pipe.engine.basic_stages",
    "InputError": "masksql_pipe.errors",
    "JsonListTransformer": "masksql_pipe.engine.stage",
    "LimitJson": "masksql_pipe.engine.basic_stages",
    "ModelError": "masksql_pipe.errors",
    "PipeError": "masksql_pipe.errors",
    "Pipeline": "masksql_pipe.engine.pipeline",
    "Price": "masksql_pipe.lm.pricing",
    "PromptProcessor": "masksql_pipe.prompt.processor",
    "ReplyCutOff": "masksql_pipe.prompt.processor",
    "RunOptions": "masksql_pipe.engine.stage",
    "SpecError": "masksql_pipe.errors",
    "StageInterrupted": "masksql_pipe.engine.pipeline",
    "StageRun": "masksql_pipe.engine.stage",
    "build_stages": "masksql_pipe.engine.dag",
    "current_row_index": "masksql_pipe.engine.stage",
    "delete_path": "masksql_pipe.engine.dotted",
    "find_prompt_log": "masksql_pipe.prompt.log",
    "get_path": "masksql_pipe.engine.dotted",
    "latest_by_row": "masksql_pipe.prompt.log",
    "order_nodes": "masksql_pipe.engine.dag",
    "prompt_log_path": "masksql_pipe.prompt.log",
    "read_prompt_log": "masksql_pipe.prompt.log",
    "read_rows": "masksql_pipe.engine.files",
    "set_path": "masksql_pipe.engine.dotted",
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
