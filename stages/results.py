"""Results: the last file of a MaskSQL run; rows pass through and the pipeline's report()
computes the summary (accuracy, tokens, latency, privacy) from them."""

from __future__ import annotations

from typing import Any

from masksql_pipe.transformer import JsonListTransformer


class Results(JsonListTransformer):
    """Pass-through stage that names the final file (`N_Results.json`)."""

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return row
