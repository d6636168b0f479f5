"""Results: the last file of a MaskSQL run; rows pass through and the pipeline's report()
computes the summary (accuracy, tokens, latency, privacy) from them. The research figures go
to the stage's stats as `charts` sections, so the run log and its HTML report carry them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from masksql_pipe.engine.stage import JsonListTransformer, RowCounter
from stages.metrics.breakdowns import figure_sections, research_figures
from stages.privacy.audit import summarize_leaks


class Results(JsonListTransformer):
    """Pass-through stage that names the final file (`N_Results.json`)."""

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return row

    async def process_rows(
        self,
        rows: list[dict[str, Any]],
        indices: Iterable[int],
        on_done: Callable[[int, dict[str, Any]], None],
        counter: RowCounter,
        concurrency: int,
    ) -> None:
        """Pass the rows through, then chart the run's figures over all of them."""
        await super().process_rows(rows, indices, on_done, counter, concurrency)
        self.stats["charts"] = figure_sections(research_figures(rows), summarize_leaks(rows))
