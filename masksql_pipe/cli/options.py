"""Typer option declarations shared by the run-like commands (run, status, rerun ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataOpt = Annotated[Path, typer.Option("--data", "-d", help="Dataset folder holding 1_input.json.")]
InputOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        help="Numbered file of DIR to start from (e.g. 8_LinkSchema.json): only the stages "
        "after the one that writes it run. Default: 1_input.json, or when the folder has none "
        "its lowest-numbered file.",
    ),
]
PipelineOpt = Annotated[
    str | None,
    typer.Option(
        "--pipeline",
        "-p",
        help="Pipeline name or module path (see `pipelines`; default: the installed default).",
    ),
]
OverridesArg = Annotated[
    list[str] | None,
    typer.Argument(help="Config overrides as dotted.key=value (value parsed as JSON if it can)."),
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML or JSON file replacing the default config.")
]
ModelsOpt = Annotated[
    Path | None,
    typer.Option(
        "--models", help="Model settings file (YAML/JSON); default models.yaml if present."
    ),
]
RunArg = Annotated[str, typer.Argument(help="Run id, unique id prefix, or 'latest'.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Rerun every stage.")]
RetryErrorsOpt = Annotated[bool, typer.Option("--retry-errors", help="Rerun only the failed rows.")]
ConcurrencyOpt = Annotated[int, typer.Option(help="Rows in flight per stage.", min=1)]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Processes computing the rows of stages that call no model and declare "
        "`processes = True` (SQL execution, scoring); 1 runs them in-process. "
        "Default: the number of cores.",
        min=1,
    ),
]
MaxErrorsOpt = Annotated[
    int, typer.Option("--max-errors", help="Failed rows tolerated before exit code 1.")
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Send every prompt, ignoring cached answers.")
]
ProgressOpt = Annotated[
    bool | None, typer.Option("--progress/--no-progress", help="Show progress.")
]
StartOpt = Annotated[int, typer.Option(help="First row kept by LimitJson.", min=0)]
LimitOpt = Annotated[int | None, typer.Option(help="Rows kept by LimitJson (default: all).", min=0)]
BatchOpt = Annotated[
    bool,
    typer.Option(
        "--batch",
        help="Send model stages' prompts through the provider's batch API (cheaper, slower).",
    ),
]
BudgetOpt = Annotated[
    float | None,
    typer.Option(
        "--budget",
        help="Stop before sending prompts whose estimated cost would pass DOLLARS in this run.",
        min=0,
        metavar="DOLLARS",
    ),
]
