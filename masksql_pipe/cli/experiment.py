"""Experiment subcommands: list pipelines and models, browse, summarize, compare and rerun runs.

``register(app)`` adds them to the CLI's typer app. Wherever a run id is taken, ``latest`` and
any unique prefix of an id work too (see ``runlog.load_run``).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from masksql_pipe.cli.console import out
from masksql_pipe.cli.options import (
    BatchOpt,
    BudgetOpt,
    ConcurrencyOpt,
    DataOpt,
    ForceOpt,
    MaxErrorsOpt,
    ModelsOpt,
    NoCacheOpt,
    OverridesArg,
    ProgressOpt,
    RetryErrorsOpt,
    RunArg,
    WorkersOpt,
)
from masksql_pipe.engine.environment import models_file
from masksql_pipe.engine.files import write_atomic
from masksql_pipe.errors import ConfigError, InputError


def _out() -> Console:
    """The stdout console every command prints through."""
    return out


# ---------------------------------------------------------------------------------------------
# Pipelines and models


def pipelines_command(
    extra: Annotated[
        list[str] | None,
        typer.Argument(help="Your own pipelines to list too, as module paths (pkg.mod:Class)."),
    ] = None,
) -> None:
    """List the built-in pipelines (and any given by module path) with their required settings."""
    from masksql_pipe.experiment.pipeline import builtin_pipelines, load_pipeline

    table = Table(title="Pipelines", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("description")
    table.add_column("you must set")
    targets = {**builtin_pipelines(), **{path: path for path in extra or []}}
    for name, target in targets.items():
        try:
            cls = load_pipeline(name)
        except Exception as exc:  # a broken pipeline is listed, not fatal
            table.add_row(name, Text(f"cannot load {target}: {_one_line(exc)}", style="red"), "")
            continue
        table.add_row(name, Text(cls._description or cls.__doc__ or ""), _required(cls))
    _out().print(table)


def _required(cls: type) -> str:
    """The Prompt settings a pipeline needs from the user, found by configuring it bare."""
    from masksql_pipe.experiment.config import MissingSettingsError

    try:
        cls(None, None, {})
    except MissingSettingsError as exc:
        return ", ".join(key for key, _ in exc.missing)
    except Exception:
        return "?"
    return ""


def models_command(models: ModelsOpt = None) -> None:
    """List the model names: offline ones (no key needed) and those of the model config file."""
    from masksql_pipe.lm.offline import offline_models
    from masksql_pipe.lm.registry import ModelRegistry

    registry = ModelRegistry.from_environment(config_file=models_file(models))
    offline = set(offline_models())
    table = Table(title="Models", title_justify="left")
    for column in ("name", "kind", "model", "status"):
        table.add_column(column, no_wrap=column == "name")
    try:
        for name in registry.names():
            settings = registry.describe(name)
            kind = "offline" if name in offline else f"configured ({registry.config_file})"
            try:
                registry.get(name)
                status = Text("ready", style="green")
            except ConfigError as exc:
                status = Text(_missing_key_hint(str(exc)), style="yellow")
            table.add_row(name, kind, Text(str(settings.get("model", name))), status)
    finally:
        asyncio.run(registry.aclose())
    _out().print(table)
    _out().print(
        "Any OpenAI model id also works when $OPENAI_API_KEY is set; other endpoints go in a "
        "model config file (--models, models.yaml or $MASKSQL_PIPE_MODELS).",
        highlight=False,
    )


def _missing_key_hint(message: str) -> str:
    """The short reason a configured model cannot run: the key variable it needs, if that."""
    needed = re.search(r"\$([A-Za-z_][A-Za-z0-9_]*)", message)
    if ("no API key" in message or "is not set" in message) and needed:
        return f"no key: set ${needed.group(1)}"
    return _one_line(message)


# ---------------------------------------------------------------------------------------------
# Run logs


def history_command(
    data: DataOpt,
    limit: Annotated[int, typer.Option(help="Show at most this many runs.", min=1)] = 20,
) -> None:
    """Recent runs of a dataset, newest first: id, time, pipeline, cases, passed, errors, tokens."""
    from masksql_pipe.experiment.runlog import list_runs, runs_dir

    runs = list_runs(data)
    if not runs:
        raise InputError(f"{runs_dir(data)}: no runs recorded yet")
    table = Table(title=f"Runs in {data}", title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("time", no_wrap=True)
    table.add_column("pipeline")
    for column in ("cases", "passed", "errors", "tokens"):
        table.add_column(column, justify="right")
    table.add_column("note")
    for run in reversed(runs[-limit:]):
        totals = run.get("totals") if isinstance(run.get("totals"), dict) else {}
        table.add_row(
            str(run["id"]),
            _when(run.get("created")),
            Text(str(run.get("pipeline", "?"))),
            _count(totals.get("cases")),
            _count(totals.get("passed")),
            _count(totals.get("error")),
            _count(totals.get("total_toks")),
            Text("interrupted", style="yellow") if run.get("interrupted") else "",
        )
    _out().print(table)
    if len(runs) > limit:
        _out().print(f"({len(runs) - limit} older runs not shown; --limit N shows more)")


def _when(stamp: Any) -> str:
    """A run's ISO time as 'YYYY-MM-DD HH:MM:SSZ' (UTC, to the second)."""
    text = str(stamp or "")
    return text[:19].replace("T", " ") + ("Z" if text.endswith("+00:00") else "")


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else ""


def summarize_command(run: RunArg, data: DataOpt) -> None:
    """Stage table, case table and totals of one run."""
    from masksql_pipe.experiment.report import render_summary
    from masksql_pipe.experiment.runlog import load_run

    render_summary(load_run(data, run), _out())


def format_command(run: RunArg, data: DataOpt) -> None:
    """Every case of one run: outcome, error (stage and message) and result."""
    from masksql_pipe.experiment.report import format_run
    from masksql_pipe.experiment.runlog import load_run

    format_run(load_run(data, run), _out())


def compare_command(
    run_a: Annotated[str, typer.Argument(help="First run (A): id, prefix or 'latest'.")],
    run_b: Annotated[str, typer.Argument(help="Second run (B): id, prefix or 'latest'.")],
    data: DataOpt,
) -> None:
    """Two runs side by side: figures, cases whose outcome changed, settings that differ."""
    from masksql_pipe.experiment.config_diff import config_differences
    from masksql_pipe.experiment.report import compare, render_comparison
    from masksql_pipe.experiment.runlog import load_run

    record_a, record_b = load_run(data, run_a), load_run(data, run_b)
    render_comparison(compare(record_a, record_b), _out())
    differences = config_differences(record_a.get("config", {}), record_b.get("config", {}))
    if not differences:
        _out().print("The configurations are the same.")
        return
    table = Table(title=f"Settings that differ ({len(differences)})", title_justify="left")
    for column in ("setting", "A", "B"):
        table.add_column(column)
    for key, a, b in differences:
        table.add_row(Text(key), Text(a), Text(b))
    _out().print(table)


def report_command(
    run: RunArg,
    data: DataOpt,
    compare_with: Annotated[
        str | None, typer.Option("--compare", help="Compare with this run (B) instead.")
    ] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the page here instead of beside the log.")
    ] = None,
) -> None:
    """Write a self-contained HTML report of a run (or a comparison) and print its path."""
    from masksql_pipe.experiment.html import comparison_html, run_html
    from masksql_pipe.experiment.runlog import load_run, runs_dir

    record = load_run(data, run)
    if compare_with is None:
        page = run_html(record)
        name = f"{record['id']}.html"
    else:
        other = load_run(data, compare_with)
        page = comparison_html(record, other)
        name = f"{record['id']}_vs_{other['id']}.html"
    path = out_file if out_file is not None else runs_dir(data) / name
    if path.is_dir():
        raise InputError(f"{path}: is a folder; --out takes a file name")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: folder not found for --out")
    write_atomic(path, page.encode("utf-8"))
    typer.echo(str(path))


# ---------------------------------------------------------------------------------------------
# Rerun


def rerun_command(
    run: RunArg,
    data: DataOpt,
    overrides: OverridesArg = None,
    models: ModelsOpt = None,
    force: ForceOpt = False,
    retry_errors: RetryErrorsOpt = False,
    concurrency: ConcurrencyOpt = 16,
    workers: WorkersOpt = None,
    max_errors: MaxErrorsOpt = 0,
    no_cache: NoCacheOpt = False,
    progress: ProgressOpt = None,
    batch: BatchOpt = False,
    budget: BudgetOpt = None,
) -> None:
    """Run again with a recorded run's pipeline and configuration, plus new KEY=VALUE overrides.

    The recorded ``--start``/``--limit``/``--models`` are reused unless given anew; settings
    the log holds redacted (secrets) must be supplied again as overrides.
    """
    from masksql_pipe.cli.run import run_pipeline
    from masksql_pipe.engine.stage import RunOptions, default_workers
    from masksql_pipe.experiment.config import REDACTED, iter_dotted, parse_overrides
    from masksql_pipe.experiment.runlog import load_run, recorded_option
    from masksql_pipe.lm.pricing import Budget

    record = load_run(data, run)
    pipeline = record.get("pipeline")
    config = record.get("config")
    if not isinstance(pipeline, str) or not pipeline:
        raise InputError(f"run log {record['id']}: no pipeline name recorded")
    if not isinstance(config, dict):
        raise InputError(f"run log {record['id']}: no configuration recorded")
    patch = parse_overrides(list(overrides or []))
    hidden = [
        key
        for key, value in iter_dotted(config)
        if value == REDACTED and not any(key == p or key.startswith(p + ".") for p in patch)
    ]
    if hidden:
        raise ConfigError(
            f"run log {record['id']} holds {', '.join(hidden)} redacted; "
            "supply each again as KEY=VALUE"
        )
    argv = [str(arg) for arg in record.get("argv") or []]
    start = recorded_option(argv, "--start", int)
    limit = recorded_option(argv, "--limit", int)
    if models is None:
        models = recorded_option(argv, "--models", Path)
    input_name = recorded_option(argv, "--input", str)
    options = RunOptions(
        concurrency=concurrency,
        workers=workers or default_workers(),
        force=force,
        retry_errors=retry_errors,
        no_cache=no_cache,
        progress=progress,
        start=start or 0,
        limit=limit,
        batch=batch,
        budget=Budget(budget) if budget is not None else None,
    )
    with tempfile.TemporaryDirectory(prefix="masksql_pipe_rerun_") as folder:
        config_file = Path(folder) / f"{record['id']}.json"
        config_file.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
        run_pipeline(
            data,
            pipeline,
            overrides,
            config_file,
            models,
            options,
            max_errors,
            sys.argv[1:],
            input_name,
        )


# ---------------------------------------------------------------------------------------------
# Registration


COMMANDS: dict[str, Callable[..., None]] = {
    "pipelines": pipelines_command,
    "models": models_command,
    "history": history_command,
    "summarize": summarize_command,
    "format": format_command,
    "compare": compare_command,
    "rerun": rerun_command,
    "report": report_command,
}


def register(app: typer.Typer) -> None:
    """Add the experiment subcommands to ``app`` (a name already registered is left alone)."""
    existing = {info.name for info in app.registered_commands}
    for name, function in COMMANDS.items():
        if name not in existing:
            app.command(name)(function)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
