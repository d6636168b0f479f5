"""Stage progress: a rich progress bar on a terminal, plain periodic lines elsewhere.

Rows only bump counters; a timer task renders them, so progress costs nothing per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import TextIO

from masksql_pipe.engine.eta import Eta, format_eta
from masksql_pipe.engine.stage import RowCounter

PLAIN_INTERVAL = 10.0
"""Seconds between plain progress lines when not on a terminal."""


def _rate(done: int, elapsed: float) -> str:
    return f"{done / elapsed:.1f} rows/s" if elapsed > 0 else "-"


@contextlib.asynccontextmanager
async def show_progress(
    label: str,
    counter: RowCounter,
    enabled: bool | None,
    stream: TextIO | None = None,
    plain_interval: float = PLAIN_INTERVAL,
) -> AsyncIterator[None]:
    """Display ``counter`` while the body runs: a bar on a TTY, lines otherwise, or nothing."""
    stream = stream or sys.stderr
    if enabled is False or counter.total == 0:
        yield
        return
    tty = stream.isatty() if enabled is None else enabled and stream.isatty()
    started = time.monotonic()
    eta = Eta(started)
    if tty:
        # rich loads only for a bar on a terminal: a plain or silent run never pays its import
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("[red]{task.fields[errors]}"),
            TextColumn("{task.fields[note]}"),
            console=Console(file=stream),
            auto_refresh=False,
            transient=True,
        )
        task = progress.add_task(label, total=counter.total, rate="", eta="-", errors="", note="")

        def render() -> None:
            now = time.monotonic()
            errors = f"{counter.errors} errors" if counter.errors else ""
            rate = _rate(counter.done, now - started)
            left = format_eta(eta.seconds(now, counter))
            progress.update(
                task, completed=counter.done, rate=rate, eta=left, errors=errors, note=counter.note
            )
            progress.refresh()

        interval = 0.1
        progress.start()
    else:
        progress = None

        def render() -> None:
            now = time.monotonic()
            elapsed = now - started
            left = format_eta(eta.seconds(now, counter))
            print(
                f"  {label}: {counter.done}/{counter.total} rows, {_rate(counter.done, elapsed)},"
                f" ETA {left}, {counter.errors} errors"
                + (f", {counter.note}" if counter.note else ""),
                file=stream,
                flush=True,
            )

        interval = plain_interval

    async def tick() -> None:
        while True:
            await asyncio.sleep(interval)
            render()

    ticker = asyncio.create_task(tick())
    try:
        yield
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        if progress is not None:
            progress.stop()
