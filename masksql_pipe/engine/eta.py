"""Time left in a stage, from the observed time per row over the last minute.

Rows passed through untouched (failed in an earlier stage) and a burst of fast rows at the start
(cache hits) would make a whole-stage rate promise seconds for a stage that takes minutes: only
rows that were worked on are timed, recent ones only, and every row left counts as work.
"""

from __future__ import annotations

from collections import deque

from masksql_pipe.engine.stage import RowCounter

ETA_WINDOW = 60.0
"""Seconds of recent progress the estimate is based on."""


class Eta:
    """Estimates the seconds left each time it is asked, from (time, rows worked) samples."""

    def __init__(self, started: float, window: float = ETA_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque([(started, 0)])

    def seconds(self, now: float, counter: RowCounter) -> float | None:
        """Estimated seconds left (None until a worked row has been timed)."""
        worked = counter.done - counter.passed
        samples = self._samples
        samples.append((now, worked))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        then, worked_then = samples[0]
        if worked <= worked_then or now <= then:
            return None
        per_row = (now - then) / (worked - worked_then)
        return max(0, counter.total - counter.done) * per_row


def format_eta(seconds: float | None) -> str:
    """`-` when unknown, tenths of a second below ten seconds, whole seconds above."""
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
