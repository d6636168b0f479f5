"""Command line: ``python main.py --data DIR`` runs a pipeline; subcommands inspect and compare."""

from __future__ import annotations

import contextlib
import difflib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from masksql_pipe.cli.console import err, fail, out, program
from masksql_pipe.cli.options import (
    BatchOpt,
    BudgetOpt,
    ConcurrencyOpt,
    ConfigOpt,
    DataOpt,
    ForceOpt,
    InputOpt,
    LimitOpt,
    MaxErrorsOpt,
    ModelsOpt,
    NoCacheOpt,
    OverridesArg,
    PipelineOpt,
    ProgressOpt,
    RetryErrorsOpt,
    StartOpt,
    WorkersOpt,
)
from masksql_pipe.engine.files import BOOKKEEPING_DIR, numbered_files, parse_stage_file, read_rows
from masksql_pipe.engine.row_diff import row_diff
from masksql_pipe.errors import ConfigError, InputError, PipeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run language-model experiments over a dataset as numbered JSON file stages.",
    pretty_exceptions_enable=False,
)


@app.command(
    "run",
    epilog="Options not listed here are pipeline settings: --schema full means schema=full.",
)
def run_command(
    data: DataOpt,
    overrides: OverridesArg = None,
    pipeline: PipelineOpt = None,
    config: ConfigOpt = None,
    models: ModelsOpt = None,
    from_number: Annotated[
        int | None, typer.Option("--from", help="Rerun every stage after file number N.")
    ] = None,
    input_name: InputOpt = None,
    force: ForceOpt = False,
    retry_errors: RetryErrorsOpt = False,
    concurrency: ConcurrencyOpt = 16,
    workers: WorkersOpt = None,
    start: StartOpt = 0,
    limit: LimitOpt = None,
    max_errors: MaxErrorsOpt = 0,
    no_cache: NoCacheOpt = False,
    progress: ProgressOpt = None,
    batch: BatchOpt = False,
    budget: BudgetOpt = None,
) -> None:
    """Run a pipeline over DIR/1_input.json, reusing every stage that is up to date.

    A folder without 1_input.json resumes from its lowest-numbered file (or --input names one).
    """
    from masksql_pipe.cli.run import run_pipeline
    from masksql_pipe.engine.stage import RunOptions, default_workers
    from masksql_pipe.lm.pricing import Budget

    options = RunOptions(
        concurrency=concurrency,
        workers=workers or default_workers(),
        force=force,
        from_number=from_number,
        retry_errors=retry_errors,
        no_cache=no_cache,
        progress=progress,
        start=start,
        limit=limit,
        batch=batch,
        budget=Budget(budget) if budget is not None else None,
    )
    pipeline = pipeline or _default_pipeline()
    run_pipeline(
        data, pipeline, overrides, config, models, options, max_errors, sys.argv[1:], input_name
    )


@app.command("status")
def status_command(
    data: DataOpt,
    overrides: OverridesArg = None,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline", "-p", help="Pipeline name or module path (default: the last run's)."
        ),
    ] = None,
    config: ConfigOpt = None,
    models: ModelsOpt = None,
    start: Annotated[int | None, typer.Option(help="First row kept by LimitJson.", min=0)] = None,
    limit: LimitOpt = None,
    input_name: InputOpt = None,
) -> None:
    """One line per stage file: rows, errors, up to date or stale (and why), usage.

    With no settings given, stages are judged against the last run's pipeline, configuration
    and --start/--limit (they are part of the fingerprints); give settings to judge others.
    """
    from masksql_pipe.cli.run import (
        FIRST_INPUT,
        build_run,
        check_data_folder,
        find_input_file,
        resuming,
    )
    from masksql_pipe.engine.stage import RunOptions

    check_data_folder(data)
    with _last_run_settings(data, pipeline, overrides, config, start, limit) as settings:
        pipeline, config, start, limit, recorded_models, recorded_input = settings
        input_name = input_name or recorded_input
        options = RunOptions(start=start or 0, limit=limit)
        experiment, engine = build_run(
            data,
            pipeline,
            overrides,
            config,
            models or recorded_models,
            options,
            inspect=True,
            prepare=False,
        )
    input_file = data / FIRST_INPUT
    resumed = resuming(data, input_name)
    source = None if resumed or input_file.is_file() else experiment.input_source()
    if source is None:
        input_file = find_input_file(data, engine, input_name)
    first_number = parse_stage_file(input_file).number
    table = Table(title=f"{pipeline} on {data}", title_justify="left")
    for column in ("file", "rows", "errors", "state", "tokens", "latency s", "model calls"):
        # file names stay whole; a long reason wraps inside its own column
        table.add_column(column, no_wrap=column != "state", overflow="fold")
    input_rows = len(read_rows(source or input_file))
    where = f"not made yet: the first run copies {source.name}" if source else "input"
    if resumed:
        where = f"input: the run resumes from this file (stages up to {first_number} skipped)"
    table.add_row(input_file.name, str(input_rows), "", where, "", "", "")
    planned = set()
    costs: list[float] = []
    for state in engine.states(input_file, recorded_endpoints=True):
        planned.add(state.output_path.name)
        record = state.record or {}
        cost = (record.get("stats") or {}).get("cost")
        if isinstance(cost, int | float):
            costs.append(cost)
        known = state.status in ("up to date", "edited by hand", "stale", "will rerun")
        rows = str(record.get("rows", "")) if known and record else ""
        errors = str(record.get("errors") or "") if known else ""
        label = state.status + (f": {state.reason}" if state.reason else "")
        toks = record.get("total_toks")
        latency = record.get("total_latency")
        table.add_row(
            state.output_path.name,
            rows,
            errors,
            label,
            "" if toks is None else str(toks),
            "" if latency is None else f"{latency:.2f}",
            _model_stats(record.get("stats") or {}),
        )
    for _, path in numbered_files(data):
        if path.name not in planned and path != input_file:
            label = "not written by this pipeline"
            if resumed and parse_stage_file(path).number < first_number:
                label = f"before {input_file.name}: not read by this run"
            table.add_row(path.name, "", "", f"[yellow]{label}[/yellow]", "", "", "")
    out.print(table)
    if source is not None:
        out.print(
            f"nothing has run yet in {data}: `run` will make {input_file.name} from "
            f"{source.name} ({input_rows} rows), then the {len(planned)} stage files above",
            highlight=False,
        )
    if costs:
        out.print(
            f"model calls cost ${sum(costs):.4f} over {len(costs)} priced stages "
            "(each when it last ran; answers from the cache cost nothing)",
            highlight=False,
        )


def _default_pipeline() -> str:
    from masksql_pipe.experiment.pipeline import default_pipeline

    return default_pipeline()


@contextlib.contextmanager
def _last_run_settings(
    data: Path,
    pipeline: str | None,
    overrides: list[str] | None,
    config: Path | None,
    start: int | None,
    limit: int | None,
) -> Iterator[tuple[str, Path | None, int | None, int | None, Path | None, str | None]]:
    """(pipeline, config file, start, limit, models file, --input) to judge stages by.

    The given ones, or, when none is given, those of the last recorded run (its configuration
    replayed from a temporary file, as `rerun` does).
    """
    from masksql_pipe.engine.lock import folder_in_use
    from masksql_pipe.experiment.runlog import list_runs, recorded_option, run_in_progress

    runs = list_runs(data)
    running = run_in_progress(data)
    if running is not None and (not runs or running["created"] > runs[-1]["created"]):
        runs.append(running)  # the run in progress has no log yet: judge by its settings
    given = overrides or config or start is not None or limit is not None
    last = runs[-1] if runs else None
    if given or last is None or (pipeline is not None and pipeline != last.get("pipeline")):
        yield pipeline or _default_pipeline(), config, start, limit, None, None
        return
    argv = [str(arg) for arg in last.get("argv") or []]
    which = "run"
    if last.get("in_progress"):  # noted when it started; a killed run never cleared the note
        which = "the run in progress" if folder_in_use(data) else "the interrupted run"
    err.print(f"judged against the settings of {which} {last['id']}", highlight=False)
    with tempfile.TemporaryDirectory(prefix="masksql_pipe_status_") as folder:
        replay = Path(folder) / "config.json"
        replay.write_bytes(orjson.dumps(last.get("config") or {}))
        yield (
            str(last.get("pipeline")),
            replay,
            recorded_option(argv, "--start", int),
            recorded_option(argv, "--limit", int),
            recorded_option(argv, "--models", Path),
            recorded_option(argv, "--input", str),
        )


def _model_stats(stats: dict[str, Any]) -> str:
    if not stats.get("calls") and not stats.get("cache_hits"):
        return ""
    parts = [f"{stats.get('calls', 0)} calls"]
    if stats.get("cache_hits"):
        parts.append(f"{stats['cache_hits']} cached")
    if "prompt_tokens" in stats:
        parts.append(f"{stats['prompt_tokens']}+{stats.get('completion_tokens', 0)} toks")
    if stats.get("latency_p50") is not None:
        parts.append(f"p50 {stats['latency_p50']:.2f}s p95 {stats.get('latency_p95', 0):.2f}s")
    if stats.get("retries"):
        parts.append(f"{stats['retries']} retries")
    if isinstance(stats.get("cost"), int | float):
        parts.append(f"${stats['cost']:.4f}")
    for batch in stats.get("batches") or []:
        parts.append(f"batch {batch.get('id')} {batch.get('status')}")
    return ", ".join(parts)


def find_stage_file(data: Path, stage: str) -> Path:
    """A numbered file by number (``5``), stage name (``LinkSchema``, any case) or file name
    (``5_LinkSchema.json``)."""
    files = numbered_files(data)
    by_name = [path for _, path in files if path.name == stage]
    if by_name:
        return by_name[0]
    if stage.isdigit():
        matches = [path for numbered, path in files if numbered.number == int(stage)]
    else:
        matches = [path for numbered, path in files if numbered.name.casefold() == stage.casefold()]
    if not matches:
        names = ", ".join(path.name for _, path in files) or "none"
        raise InputError(f"{data}: no stage file {stage!r} (files: {names})")
    if len(matches) > 1:
        raise InputError(
            f"{data}: {stage!r} matches {', '.join(p.name for p in matches)}; give the name"
        )
    return matches[0]


@app.command("show")
def show_command(
    data: DataOpt,
    stage: Annotated[str, typer.Argument(help="Stage file number, stage name or file name.")],
    row: Annotated[int, typer.Argument(help="Row index in that file, counting from 0.")] = 0,
    diff: Annotated[
        bool, typer.Option("--diff", help="Only what this stage added or changed in the row.")
    ] = False,
) -> None:
    """Print one row of a stage file, or with --diff what that stage changed in it."""
    from masksql_pipe.engine.stage import ERROR_KEY

    path = find_stage_file(data, stage)
    rows = read_rows(path)
    if not 0 <= row < len(rows):
        raise InputError(f"{path}: no row {row} (the file has {len(rows)} rows)")
    value: Any = rows[row]
    if diff:
        number = parse_stage_file(path).number
        before_files = [p for n, p in numbered_files(data) if n.number == number - 1]
        if not before_files:
            raise InputError(f"{path}: no file numbered {number - 1} to compare with")
        before_rows = read_rows(before_files[0])
        before = before_rows[row] if row < len(before_rows) else {}
        value = row_diff(before, rows[row])
    out.print_json(orjson.dumps(value).decode(), ensure_ascii=False)
    if ERROR_KEY in rows[row]:
        failure = rows[row][ERROR_KEY]
        err.print(
            f"[red]row {row} failed in stage {failure.get('stage')}:[/red] "
            f"{failure.get('type')}: {failure.get('message')}",
            highlight=False,
        )


@app.command("view")
def view_command(
    data: DataOpt,
    port: Annotated[
        int, typer.Option(help="Port on 127.0.0.1 (0: any free one).", min=0, max=65535)
    ] = 8765,
) -> None:
    """Inspect a run by hand in a local web page (read-only, 127.0.0.1 only).

    Each row through every stage as diffs, its model calls and errors; filters for failed
    rows, rows whose outcome changed between two runs, and text. Ctrl-C stops it.
    """
    import asyncio

    from masksql_pipe.viewer.server import serve

    if not data.is_dir():
        raise InputError(f"{data}: data folder not found")

    def ready(url: str) -> None:
        out.print(f"viewer on {url} (Ctrl-C stops it)", highlight=False)

    try:
        asyncio.run(serve(data, port, ready))
    except OSError as exc:
        raise fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass


def _bookkeeping_note() -> str:
    return f"bookkeeping lives in DIR/{BOOKKEEPING_DIR}"


COMMAND_GROUP = "masksql_pipe.commands"
"""Entry-point group of an installed application's own subcommands (name -> function)."""


def _register_commands() -> None:
    from masksql_pipe.cli.experiment import register

    register(app)


def installed_commands() -> dict[str, Any]:
    """The `masksql_pipe.commands` entry points by name, not loaded: loading one imports its
    application, which only that command (never `--help`) should pay for."""
    import importlib.metadata

    found = importlib.metadata.entry_points(group=COMMAND_GROUP)
    return {entry.name: entry for entry in sorted(found, key=lambda entry: entry.name)}


def _load_command(name: str) -> None:
    """Register the installed command ``name`` on first use, as pipelines arrive: the engine
    names no application. One that cannot load says so on one line (exit 2)."""
    if name in {info.name for info in app.registered_commands}:
        return
    entry = installed_commands()[name]
    try:
        function = entry.load()
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"command {name!r} ({entry.value}) cannot load: {exc}") from None
    app.command(name)(function)


_register_commands()


PIPELINE_COMMANDS = ("run", "status", "rerun")
"""Commands whose unknown ``--name value`` options are pipeline settings (``name=value``)."""


def command_names() -> list[str]:
    """Every subcommand, as registered on the app or installed: the one list of commands."""
    names = [info.name for info in app.registered_commands if info.name]
    return names + [name for name in installed_commands() if name not in names]


def _command_options(name: str) -> tuple[set[str], set[str]]:
    """(every option name, the options taking a value) of one subcommand."""
    command = getattr(typer.main.get_command(app), "commands", {}).get(name)
    takes_value: set[str] = set()
    known: set[str] = {"--help"}
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "option":
            names = [*param.opts, *param.secondary_opts]
            known.update(names)
            if not param.is_flag:
                takes_value.update(names)
    return known, takes_value


_converted_options: dict[str, str] = {}
"""Setting key -> the unknown option it came from (``limt`` -> ``--limt``), for suggestions."""


def options_as_overrides(args: list[str]) -> list[str]:
    """Turn options a command does not know into dotted overrides: ``--schema full``.

    So a pipeline's top-level settings read like switches without the CLI knowing them;
    a setting the pipeline does not have is still reported with the closest known key
    (or, when the option is close to one the command has, with that option).
    """
    if not args or args[0] not in PIPELINE_COMMANDS:
        return args
    known, takes_value = _command_options(args[0])
    if known == {"--help"}:
        return args
    result = [args[0]]
    index = 1
    while index < len(args):
        arg = args[index]
        name = arg.split("=", 1)[0]
        if arg == "--":
            result.extend(args[index:])
            break
        if arg in takes_value and index + 1 < len(args):
            result.extend(args[index : index + 2])
            index += 2
            continue
        if arg.startswith("--") and name not in known and len(name) > 2:
            key, has_value, value = arg[2:].partition("=")
            if not has_value and index + 1 < len(args) and not args[index + 1].startswith("-"):
                value, has_value = args[index + 1], "="
                index += 1
            if has_value:
                _converted_options[key.replace("-", "_")] = name
                result.append(f"{key.replace('-', '_')}={value}")
                index += 1
                continue
        result.append(arg)
        index += 1
    return result


def _unknown_command(word: str, commands: list[str]) -> int:
    """Report a first word that is neither a command, an option nor a setting; exit code 2."""
    close = difflib.get_close_matches(word, commands, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f" (commands: {', '.join(commands)})"
    err.print(f"[red]error:[/red] unknown command {word!r}{hint}", highlight=False)
    return 2


def _mistyped_option(command: str, message: str) -> str | None:
    """For an unknown setting that came from an option close to a real one: say so."""
    for key, option in _converted_options.items():
        if f"unknown setting '{key}'" not in message:
            continue
        known, _ = _command_options(command)
        close = difflib.get_close_matches(option, sorted(known), n=1, cutoff=0.7)
        if close:
            return (
                f"no such option: {option}; did you mean {close[0]}? "
                f"(read as the setting '{key}', which the pipeline does not have either)"
            )
    return None


def main(argv: list[str] | None = None) -> None:
    """Console entry point: a bare ``--data DIR`` means ``run --data DIR``."""
    args = list(sys.argv[1:] if argv is None else argv)
    _converted_options.clear()  # main() may run several times in one process (tests)
    commands = command_names()
    installed = list(installed_commands())
    if args and args[0] in installed:
        try:
            _load_command(args[0])
        except ConfigError as exc:
            raise SystemExit(fail(str(exc)).exit_code) from None
    elif installed:
        app.info.epilog = f"Installed commands (see COMMAND --help): {', '.join(installed)}."
    if args and args[0] not in commands and args[0] not in ("--help", "-h"):
        if not args[0].startswith("-") and "=" not in args[0]:
            raise SystemExit(_unknown_command(args[0], commands))
        args.insert(0, "run")
    args = options_as_overrides(args)
    try:
        code = app(args=args, prog_name=program(), standalone_mode=False)
    except PipeError as exc:
        message = _mistyped_option(args[0], str(exc)) if isinstance(exc, ConfigError) else None
        err.print(f"[red]error:[/red] {message or exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("[red]error:[/red] interrupted; run the same command again to resume")
        sys.exit(130)
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's usage errors
            exc.show()
            sys.exit(exc.exit_code)
        raise
    # without standalone mode click returns the code of a typer.Exit instead of exiting
    if isinstance(code, int) and code:
        sys.exit(code)
