"""The terminal consoles every command prints through, and the one-line error exit."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

# piped output keeps one line per table row (rich would wrap at 80 columns)
out = Console(width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 240)


def program() -> str:
    """The command as the user typed it, for hints: ``masksql-pipe`` through the installed
    console script, else ``python main.py``."""
    from pathlib import Path

    return "masksql-pipe" if Path(sys.argv[0]).name.startswith("masksql-pipe") else "python main.py"


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)
