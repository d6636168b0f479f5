"""masksql-pipe: language-model experiments as numbered JSON file stages.

The names below are imported on first use (PEP 562), so `python main.py --help` and the
inspection commands do not pay for the engine, templates and model layer they never touch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

if TYPE_CHECKING:
    from .common import CopyTransformer, DeleteProp, FilterList, LimitJson
    from .dag import build_stages, order_nodes
    from .dotted import delete_path, get_path, set_path
    from .errors import ConfigError, ExceptionContext, InputError, ModelError, PipeError, SpecError
    from .experiment.pipeline import ExperimentPipeline
    from .files import read_rows
    from .lm.pricing import Budget, BudgetExceeded, Price
    from .pipeline import Pipeline, StageInterrupted
    from .prompt import PromptProcessor, ReplyCutOff
    from .prompt_log import find_prompt_log, latest_by_row, prompt_log_path, read_prompt_log
    from .transformer import ERROR_KEY, JsonListTransformer, RunOptions, StageRun, current_row_index

_EXPORTS = {
    "Budget": ".lm.pricing",
    "BudgetExceeded": ".lm.pricing",
    "ConfigError": ".errors",
    "CopyTransformer": ".common",
    "DeleteProp": ".common",
    "ExceptionContext": ".errors",
    "ExperimentPipeline": ".experiment.pipeline",
    "ERROR_KEY": ".transformer",
    "FilterList": ".common",
    "InputError": ".errors",
    "JsonListTransformer": ".transformer",
    "LimitJson": ".common",
    "ModelError": ".errors",
    "PipeError": ".errors",
    "Pipeline": ".pipeline",
    "Price": ".lm.pricing",
    "PromptProcessor": ".prompt",
    "ReplyCutOff": ".prompt",
    "RunOptions": ".transformer",
    "SpecError": ".errors",
    "StageInterrupted": ".pipeline",
    "StageRun": ".transformer",
    "build_stages": ".dag",
    "current_row_index": ".transformer",
    "delete_path": ".dotted",
    "find_prompt_log": ".prompt_log",
    "get_path": ".dotted",
    "latest_by_row": ".prompt_log",
    "order_nodes": ".dag",
    "prompt_log_path": ".prompt_log",
    "read_prompt_log": ".prompt_log",
    "read_rows": ".files",
    "set_path": ".dotted",
}
"""Public name -> the module (relative to this package) that defines it."""

__all__ = [
    "ERROR_KEY",
    "Budget",
    "BudgetExceeded",
    "ConfigError",
    "CopyTransformer",
    "DeleteProp",
    "ExceptionContext",
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
