"""Progress display when the output is not a terminal: plain periodic lines."""

from __future__ import annotations

import asyncio
import io

from masksql_pipe.engine.progress import show_progress
from masksql_pipe.engine.stage import RowCounter


async def test_plain_lines_report_rows_rate_eta_and_errors() -> None:
    stream = io.StringIO()  # not a TTY
    counter = RowCounter(total=10)
    async with show_progress("3_Slow", counter, None, stream, plain_interval=0.02):
        for done in range(1, 11):
            await asyncio.sleep(0.01)
            counter.done = done
            counter.errors = done // 5
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2
    assert all(line.startswith("  3_Slow: ") for line in lines)
    last = lines[-1]
    assert "/10 rows" in last and "rows/s" in last and "ETA" in last
    assert any(" 1 errors" in line or " 2 errors" in line for line in lines)


async def test_disabled_progress_prints_nothing() -> None:
    stream = io.StringIO()
    counter = RowCounter(total=5)
    async with show_progress("x", counter, False, stream, plain_interval=0.01):
        await asyncio.sleep(0.05)
    assert stream.getvalue() == ""
