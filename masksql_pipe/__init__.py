"""masksql-pipe: language-model experiments as numbered JSON file stages."""

from .common import CopyTransformer, DeleteProp, FilterList, LimitJson
from .dag import build_stages, order_nodes
from .dotted import delete_path, get_path, set_path
from .errors import ConfigError, InputError, ModelError, PipeError, SpecError
from .files import read_rows
from .lm.pricing import Budget, BudgetExceeded, Price
from .pipeline import Pipeline, StageInterrupted
from .prompt import PromptProcessor, ReplyCutOff
from .prompt_log import find_prompt_log, latest_by_row, prompt_log_path, read_prompt_log
from .transformer import ERROR_KEY, JsonListTransformer, RunOptions, StageRun, current_row_index

__all__ = [
    "ERROR_KEY",
    "Budget",
    "BudgetExceeded",
    "ConfigError",
    "CopyTransformer",
    "DeleteProp",
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
