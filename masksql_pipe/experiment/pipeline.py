"""Experiment pipelines (GoTaglio style): a named, configurable recipe that yields stages.

Two ways in: subclass ``ExperimentPipeline`` and build the default configuration in
``__init__`` (the seed's form), or subclass ``ConfiguredPipeline`` and return it from
``defaults()`` (no ``__init__`` to write). Either way ``stages()`` returns the stages; expensive
set-up (models, templates) belongs at its start so a typo is reported before any row runs. Not
to be confused with the engine's ``masksql_pipe.Pipeline``, which runs the stages an experiment
pipeline yields over files (``Pipeline`` here is an alias kept for existing code).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from masksql_pipe.engine.stage import RunOptions
from masksql_pipe.errors import ConfigError
from masksql_pipe.experiment.config import resolve_config
from masksql_pipe.experiment.reads import recording


class ExperimentPipeline(ABC):
    """Base class of experiment pipelines: configuration plus a ``stages()`` recipe."""

    _name: ClassVar[str] = ""
    _description: ClassVar[str] = ""

    _registry: Any = None
    data_dir: Path | None = None
    """Set by the runtime before ``stages()``: the dataset folder of this run."""
    options: RunOptions | None = None
    """Set by the runtime before ``stages()``: the run's options (start, limit ...)."""

    def __init__(
        self,
        default_config: dict[str, Any],
        replacement_config: dict[str, Any] | None = None,
        flat_config_patch: Mapping[str, Any] | None = None,
    ) -> None:
        self._config = resolve_config(
            default_config, replacement_config, dict(flat_config_patch or {})
        )

    def config(self) -> dict[str, Any]:
        """The configuration after replacement and dotted overrides (while a stage function
        runs, a view that notes the keys it reads: see `masksql_pipe.experiment.reads`)."""
        return recording(self._config)

    def prepare_input(self) -> None:  # noqa: B027 - optional hook
        """Before ``stages()``: write ``data_dir/1_input.json`` from a dataset's own files when
        the folder comes in another layout (the engine always starts from that file)."""

    def input_source(self) -> Path | None:
        """The dataset file ``prepare_input`` makes ``1_input.json`` from (None: the folder
        must bring 1_input.json itself); status names it before anything has run."""
        return None

    @abstractmethod
    def stages(self) -> Sequence[Any] | Mapping[str, Any]:
        """Stages as a list, a dict ``{name: stage}`` (linear) or a list of DAG nodes."""

    def case_id(self, row: dict[str, Any], index: int) -> str:
        """Identifier of a case in run logs and comparisons."""
        for key in ("id", "case_id", "question_id"):
            if key in row:
                return str(row[key])
        return str(index)

    def case_passed(self, row: dict[str, Any]) -> bool | None:
        """Whether a complete case passed; None when this pipeline cannot judge it."""
        return None

    def case_result(self, row: dict[str, Any]) -> Any:
        """The part of a finished row worth showing in reports."""
        return None

    def report(self, last_file: Path, console: Any) -> None:  # noqa: B027 - optional hook
        """Print pipeline-specific results after a run (e.g. an accuracy table)."""


class ConfiguredPipeline(ExperimentPipeline):
    """An experiment pipeline whose default configuration comes from ``defaults()``: the
    constructor the runtime calls, ``(registry, replacement_config, flat_config_patch)``, is
    written once here instead of in every pipeline."""

    def __init__(
        self,
        registry: Any = None,
        replacement_config: dict[str, Any] | None = None,
        flat_config_patch: Mapping[str, Any] | None = None,
    ) -> None:
        self._registry = registry
        super().__init__(self.defaults(), replacement_config, flat_config_patch)

    @abstractmethod
    def defaults(self) -> dict[str, Any]:
        """The default configuration, before replacement and dotted overrides."""


Pipeline = ExperimentPipeline
"""The former name, kept so existing pipelines keep importing."""


PIPELINE_GROUP = "masksql_pipe.pipelines"
"""Entry-point group through which installed packages offer pipelines (name -> module:Class)."""

DEFAULT_GROUP = "masksql_pipe.default_pipeline"
"""Entry-point group whose one entry names the pipeline run when none is given."""


def builtin_pipelines() -> dict[str, str]:
    """Installed pipelines, name -> import path, from the `masksql_pipe.pipelines` entry points.

    The engine names no application: MaskSQL's pipelines arrive this way like anyone else's.
    """
    found = importlib.metadata.entry_points(group=PIPELINE_GROUP)
    return {ep.name: ep.value for ep in sorted(found, key=lambda ep: ep.name)}


def default_pipeline() -> str:
    """The name of the pipeline to run when `--pipeline` is not given (an installed package
    declares it in the `masksql_pipe.default_pipeline` entry-point group)."""
    found = list(importlib.metadata.entry_points(group=DEFAULT_GROUP))
    if not found:
        raise ConfigError("no default pipeline is installed: name one with --pipeline")
    return found[0].name


def _importable_from_working_folder() -> None:
    """Let ``--pipeline mylen:LenPipeline`` find ``./mylen.py``, as ``python -m`` would."""
    folder = str(Path.cwd())
    if folder not in sys.path and "" not in sys.path:
        sys.path.append(folder)


def load_pipeline(name: str) -> type[ExperimentPipeline]:
    """A pipeline class by built-in name or import path (``package.module:Class`` or module)."""
    target = builtin_pipelines().get(name, name)
    module_name, _, attr = target.partition(":")
    _importable_from_working_folder()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name + ".").startswith(exc.name + "."):
            known = ", ".join(builtin_pipelines())
            raise ConfigError(
                f"unknown pipeline {name!r}: no module {exc.name!r} in the working folder "
                f"({Path.cwd()}) or on the import path; use one of {known} or a module path "
                "such as mypkg.mypipeline:MyPipeline"
            ) from None
        raise ConfigError(f"pipeline {name!r}: importing {module_name} failed: {exc}") from None
    except Exception as exc:  # the user's module itself is broken: show why, in one line
        where = ""
        if exc.__traceback__ is not None:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            where = f" ({last.filename}, line {last.lineno})"
        raise ConfigError(
            f"pipeline {name!r}: importing {module_name} failed{where}: {type(exc).__name__}: {exc}"
        ) from None
    if attr:
        found = getattr(module, attr, None)
        if found is None:
            raise ConfigError(f"pipeline {name!r}: module {module_name} has no {attr!r}")
        candidates = [found]
    else:
        candidates = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, ExperimentPipeline)
            and value is not ExperimentPipeline
            and value.__module__ == module.__name__
        ]
    if len(candidates) != 1 or not (
        isinstance(candidates[0], type) and issubclass(candidates[0], ExperimentPipeline)
    ):
        raise ConfigError(
            f"pipeline {name!r}: expected exactly one Pipeline subclass in {module_name}; "
            "name it as module:Class"
        )
    return candidates[0]
