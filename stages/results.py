"""Results: the last file of a MaskSQL run; rows pass through and the pipeline's report()
computes the summary (accuracy, tokens, latency, privacy) from them. The research figures go
to the stage's stats as `charts` sections, so the run log and its HTML report carry them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from masksql_pipe.engine.stage import WholeListTransformer
from stages.metrics.breakdowns import figure_sections, research_figures
from stages.privacy.audit import summarize_leaks


class Results(WholeListTransformer):
    """Pass-through stage that names the final file (`N_Results.json`)."""

    async def process_list(
        self, rows: list[dict[str, Any]], indices: list[int]
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Pass the rows through, then chart the run's figures over all of them."""
        for index in indices:
            yield index, rows[index]
        self.stats["charts"] = figure_sections(research_figures(rows), summarize_leaks(rows))
