"""The ETA of the plain progress lines comes from the observed time per worked row."""

from __future__ import annotations

import asyncio
import io
import re

from masksql_pipe.engine.progress import show_progress
from masksql_pipe.engine.stage import RowCounter


async def test_eta_times_worked_rows_not_rows_passed_through() -> None:
    stream = io.StringIO()  # not a TTY: plain lines
    counter = RowCounter(total=40)
    per_row = 0.05
    async with show_progress("4_Ask", counter, None, stream, plain_interval=0.06):
        counter.done = counter.passed = 30  # failed in an earlier stage: passed through at once
        for _ in range(10):
            await asyncio.sleep(per_row)
            counter.done += 1
    seen = []
    for line in stream.getvalue().splitlines():
        match = re.search(r": (\d+)/40 rows, .* ETA ([\d.]+)s,", line)
        if match and int(match.group(1)) < 40:
            seen.append((int(match.group(1)), float(match.group(2))))
    assert len(seen) >= 3
    for done, eta in seen:
        left = 40 - done
        # each row left takes about per_row; a rate over all rows done would say ~0s
        assert left * per_row * 0.5 <= eta <= left * per_row * 4 + 0.1, (done, eta)
