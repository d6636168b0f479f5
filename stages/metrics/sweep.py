"""Sweep: run several configurations over one dataset folder and print the privacy-utility
table (EA and leak rate per configuration, with 95% intervals).

    python main.py sweep --data data masksql unmasked "masksql schema=full" slm-only

Each argument is one configuration: a pipeline name, then settings as `run` takes them.
The runs go one after another through the real CLI in the same folder (the response cache
serves what an earlier configuration already asked); after each, its `results.json` is kept
as `DIR/.masksql_pipe/sweep/<n>.json` and the table is written to `DIR/.masksql_pipe/sweep.json`.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from masksql_pipe.cli.options import DataOpt
from masksql_pipe.errors import InputError
from masksql_pipe.experiment.stats import pct

CLI = ("-c", "from masksql_pipe.cli.app import main; main()")
"""How a configuration runs: the one CLI, in a new interpreter (each run starts clean)."""


def _interval(figure: dict[str, Any] | None) -> str:
    if not figure or not figure.get("rows"):
        return "n/a"
    low, high = figure.get("ci95") or (None, None)
    rate, low, high = (pct(x, fraction=True) for x in (figure["rate"], low, high))
    return f"{rate} [{low}, {high}] ({figure['count']}/{figure['rows']})"


def table_row(label: str, results: dict[str, Any]) -> dict[str, Any]:
    """The sweep's figures of one configuration, from its results.json."""
    research = results.get("research") or {}
    ea = research.get("ea") or {}
    return {
        "configuration": label,
        "rows": results.get("rows"),
        "ea": ea.get("test_suite"),
        "ea_original": ea.get("original"),
        "leak": research.get("leak"),
        "ris": (research.get("ris") or {}).get("mean"),
        "reidentification": (research.get("reidentification") or {}).get("rate"),
        "errors": (results.get("errors") or {}).get("rows"),
    }


def render(rows: list[dict[str, Any]]) -> Table:
    """The privacy-utility table."""
    table = Table(title="Privacy-utility sweep", title_justify="left")
    for column in (
        "configuration",
        "EA (test-suite) 95% CI",
        "EA (MaskSQL)",
        "leak rate 95% CI",
        "RIS",
        "re-id",
        "errors",
    ):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for row in rows:
        table.add_row(
            row["configuration"],
            _interval(row["ea"]),
            pct((row["ea_original"] or {}).get("rate"), fraction=True),
            _interval(row["leak"]) if row["leak"] else "not audited",
            "n/a" if row["ris"] is None else f"{row['ris']:.3f}",
            pct(row["reidentification"], fraction=True),
            str(row["errors"]),
        )
    return table


def run_sweep(data: Path, configurations: list[str], console: Console) -> int:
    """Run each configuration, print the table; the exit code of the first run that could not
    start (bad setting: 2), else 0."""
    rows: list[dict[str, Any]] = []
    keep = data / ".masksql_pipe" / "sweep"
    for n, label in enumerate(configurations, start=1):
        words = shlex.split(label)
        if not words:
            console.print("[red]error:[/red] empty configuration")
            return 2
        args = [sys.executable, *CLI, "run", "--data", str(data), "--pipeline", *words]
        console.print(f"[bold]{n}/{len(configurations)}[/bold] {label}", highlight=False)
        proc = subprocess.run(args, capture_output=True, text=True)
        results_file = data / "results.json"
        if proc.returncode not in (0, 1) or not results_file.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            console.print(f"[red]error:[/red] configuration {label!r}: {last}", highlight=False)
            return proc.returncode or 2
        results = json.loads(results_file.read_text(encoding="utf-8"))
        keep.mkdir(parents=True, exist_ok=True)
        (keep / f"{n}.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        rows.append(table_row(label, results))
    (data / ".masksql_pipe" / "sweep.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    console.print(render(rows))
    return 0


def sweep_command(
    data: DataOpt,
    configurations: Annotated[
        list[str], typer.Argument(help='Each a pipeline and its settings: "masksql schema=full".')
    ],
) -> None:
    """Run several configurations over DIR one after another; print the privacy-utility table.

    Kept: each run's results as DIR/.masksql_pipe/sweep/<n>.json, the table as sweep.json.
    """
    if not data.is_dir():
        raise InputError(f"{data}: data folder not found")
    code = run_sweep(data, configurations, Console())
    if code:
        raise typer.Exit(code)
