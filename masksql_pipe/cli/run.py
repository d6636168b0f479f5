"""Configure an experiment pipeline and run it over a dataset folder: what `run` and `rerun` do.

Below the CLI (which only parses options) and the experiment commands, so neither imports
the other.
"""

from __future__ import annotations

import asyncio
import functools
import traceback
from pathlib import Path
from typing import Any

from rich.table import Table

from masksql_pipe.cli.console import err, fail, out, program
from masksql_pipe.engine.environment import models_file
from masksql_pipe.engine.files import numbered_files, parse_stage_file, read_rows
from masksql_pipe.engine.pipeline import Pipeline, StageInterrupted
from masksql_pipe.engine.stage import INCOMPLETE_STAT, RunOptions
from masksql_pipe.errors import ConfigError, InputError


def check_data_folder(data: Path) -> None:
    """InputError unless ``data`` is an existing folder."""
    if not data.exists():
        raise InputError(f"{data}: data folder not found")
    if not data.is_dir():
        raise InputError(f"{data}: not a folder; --data takes the dataset folder")


FIRST_INPUT = "1_input.json"
"""The file a run starts from unless the folder (or --input) names a later numbered file."""


def resuming(data: Path, input_name: str | None = None) -> bool:
    """Whether a run on ``data`` starts after stage 1: ``--input`` names another file, or the
    folder has numbered files but no 1_input.json (its lowest-numbered file is the start)."""
    if input_name:
        return Path(input_name).name != FIRST_INPUT
    if not data.is_dir() or (data / FIRST_INPUT).is_file():
        return False
    return bool(numbered_files(data))


def find_input_file(data: Path, engine: Pipeline, input_name: str | None = None) -> Path:
    """The file the run starts from: ``DATA/1_input.json``, or when resuming (see `resuming`)
    the ``--input`` file or the folder's lowest-numbered file; then ``engine`` keeps only the
    stages after the one that writes it (an InputError naming the choices when none does)."""
    check_data_folder(data)
    first = data / FIRST_INPUT
    if not resuming(data, input_name):
        if not first.is_file():
            raise InputError(
                f"{first}: file not found (every dataset folder starts with {FIRST_INPUT})"
            )
        return first
    start = _named_input(data, input_name) if input_name else _lowest_file(data)
    engine.start_after(first, start)
    return start


def _named_input(data: Path, name: str) -> Path:
    """``--input``: a numbered file of the data folder, by file name or path."""
    path = Path(name)
    if len(path.parts) == 1:
        path = data / path
    if path.resolve().parent != data.resolve():
        raise InputError(f"--input {name}: not a file of the data folder {data}")
    parse_stage_file(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found (--input names a numbered file in {data})")
    return path


def _lowest_file(data: Path) -> Path:
    """The one numbered file with the lowest number (several: say which to name)."""
    files = numbered_files(data)
    lowest = [path for numbered, path in files if numbered.number == files[0][0].number]
    if len(lowest) > 1:
        names = ", ".join(path.name for path in lowest)
        raise InputError(
            f"{data}: no {FIRST_INPUT} and several files to start from ({names}); "
            "name one with --input"
        )
    return lowest[0]


def build_run(
    data: Path,
    pipeline: str,
    overrides: list[str] | None,
    config: Path | None,
    models: Path | None,
    options: RunOptions,
    inspect: bool = False,
    prepare: bool = True,
    input_name: str | None = None,
) -> tuple[Any, Pipeline]:
    """Configure the named experiment pipeline and turn it into an engine Pipeline.

    ``inspect`` (status) builds models without their keys: fingerprints need their
    settings only, and a researcher may look at a run from a shell without the key.
    ``prepare=False`` (status) leaves the folder as it is: no 1_input.json is written; nor is
    it when the run resumes from a later file (``input_name``, see `resuming`).
    """
    from masksql_pipe.experiment.config import load_config_file, loggable, parse_overrides
    from masksql_pipe.experiment.functions import function_stage
    from masksql_pipe.experiment.pipeline import load_pipeline
    from masksql_pipe.lm.registry import ModelRegistry

    cls = load_pipeline(pipeline)
    replacement = load_config_file(config) if config else None
    patch = parse_overrides(list(overrides or []))
    registry = ModelRegistry.from_environment(
        config_file=models_file(models), require_keys=not inspect
    )
    options.registry = registry
    experiment = cls(registry, replacement, patch)
    experiment.data_dir = data
    experiment.options = options
    if prepare and data.is_dir() and not resuming(data, input_name):
        experiment.prepare_input()
    spec = setup_stages(experiment, pipeline)
    settings = {"config": loggable(experiment.config())}
    adapt = functools.partial(function_stage, metadata=settings)
    return experiment, Pipeline(spec, options, adapt=adapt)


def setup_stages(experiment: Any, pipeline: str) -> Any:
    """``experiment.stages()``, its set-up errors (a missing file, a bad setting, a bug in the
    set-up code) as one line naming the pipeline and where it failed (exit 2)."""
    from masksql_pipe.errors import PipeError

    try:
        return experiment.stages()
    except PipeError as exc:
        exc.args = (f"pipeline {pipeline!r}: {exc}",)  # same error, its exit status kept
        raise
    except Exception as exc:
        where = ""
        if exc.__traceback__ is not None:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            where = f" ({last.filename}, line {last.lineno})"
        raise ConfigError(
            f"pipeline {pipeline!r}: setting up its stages failed{where}: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def warn_if_empty(input_file: Path) -> None:
    """A warning when the run starts from a file with no rows (``[]``): every stage would
    write an empty file and the report would count nothing, which reads like success."""
    if input_file.stat().st_size > 64:  # a list holding a row is longer: no need to parse
        return
    try:
        empty = read_rows(input_file) == []
    except InputError:
        return  # the engine names what is wrong with it
    if empty:
        err.print(
            f"[yellow]warning:[/yellow] {input_file}: input is empty (no rows); "
            "every stage will write an empty file",
            highlight=False,
        )


def run_pipeline(
    data: Path,
    pipeline: str,
    overrides: list[str] | None,
    config: Path | None,
    models: Path | None,
    options: RunOptions,
    max_errors: int,
    argv: list[str],
    input_name: str | None = None,
) -> None:
    """Run, write the run log, print the stage table and the pipeline's report.

    Raises typer.Exit: 130 when interrupted, 1 when more than ``max_errors`` rows failed.
    """
    from masksql_pipe.experiment.runlog import RunLogger

    experiment, engine = build_run(
        data, pipeline, overrides, config, models, options, input_name=input_name
    )
    input_file = find_input_file(data, engine, input_name)  # after build_run: it may prepare it
    logger = RunLogger(data, pipeline, experiment, argv)
    engine.options.run_id = logger.id
    logger.start()
    try:
        _run_logged(experiment, engine, logger, input_file, data, pipeline, max_errors)
    finally:
        logger.finish()


def _run_logged(
    experiment: Any,
    engine: Pipeline,
    logger: Any,
    input_file: Path,
    data: Path,
    pipeline: str,
    max_errors: int,
) -> None:
    """The run itself, once it is noted as in progress: the engine, the log, the report."""
    options = engine.options
    err.print(f"pipeline [bold]{pipeline}[/bold] on {input_file}", highlight=False)
    warn_if_empty(input_file)
    describe = getattr(experiment, "describe", None)
    if callable(describe):
        err.print(describe(), highlight=False)

    async def go() -> Path:
        try:
            return await engine.run(input_file)
        finally:
            close = getattr(options.registry, "aclose", None)
            if close is not None:
                await close()

    try:
        last = asyncio.run(go())
    except StageInterrupted as exc:
        logger.write(engine, None, interrupted=str(exc))
        raise fail(str(exc), 130) from None
    except KeyboardInterrupt:
        raise fail("interrupted; run the same command again to resume", 130) from None
    record = logger.write(engine, last)
    print_stage_table(engine)
    experiment.report(last, out)
    errors = engine.total_errors
    err.print(f"run log {record['id']} written; `{program()} summarize latest --data {data}`")
    incomplete = [
        f"{r.file}: {r.stats[INCOMPLETE_STAT]}"
        for r in engine.reports
        if r.stats.get(INCOMPLETE_STAT)
    ]
    if incomplete:
        raise fail("; ".join(incomplete), 1)
    if errors > max_errors:
        raise fail(
            f"{errors} rows failed (see `{program()} status --data {data}`; "
            "rerun with --retry-errors to try them again)",
            1,
        )


def print_stage_table(engine: Pipeline) -> None:
    """One line per stage of the finished run: file, status, rows, errors, seconds."""
    table = Table(title="Stages", title_justify="left")
    for column in ("file", "status", "rows", "errors", "seconds"):
        table.add_column(
            column, justify="right" if column in ("rows", "errors", "seconds") else "left"
        )
    for report in engine.reports:
        table.add_row(
            report.file,
            report.status,
            str(report.rows),
            str(report.errors) if report.errors else "",
            f"{report.duration:.2f}" if report.duration else "",
        )
    err.print(table)
