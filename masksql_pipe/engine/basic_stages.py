"""General-purpose stages from the MaskSQL framework: limit, filter, copy and delete fields."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from masksql_pipe.engine.dotted import delete_path, get_path, has_path, set_path
from masksql_pipe.engine.stage import JsonListTransformer, RowCounter


class LimitJson(JsonListTransformer):
    """Keep rows ``start`` .. ``start + limit`` (all rows by default), so a run can be sampled."""

    def __init__(self, start: int = 0, limit: int | None = None) -> None:
        if start < 0 or (limit is not None and limit < 0):
            raise ValueError("LimitJson: start and limit must be >= 0")
        self.start = start
        self.limit = limit

    def select(self, count: int) -> range:
        """Indices of the rows kept out of ``count`` rows."""
        stop = count if self.limit is None else min(count, self.start + self.limit)
        return range(min(self.start, count), stop)

    async def process_rows(self, rows, indices, on_done, counter: RowCounter, concurrency):  # type: ignore[override]
        # rows outside the window are dropped, so this stage renumbers nothing but the list
        kept = self.select(len(rows))
        for index in indices:
            if index in kept:
                on_done(index, rows[index])
            counter.done += 1

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return row


class FilterList(JsonListTransformer):
    """Keep only the rows for which ``predicate(row)`` is true."""

    def __init__(self, predicate: Callable[[dict[str, Any]], bool]) -> None:
        self.predicate = predicate

    async def process_rows(self, rows, indices, on_done, counter: RowCounter, concurrency):  # type: ignore[override]
        for index in indices:
            if self.predicate(rows[index]):
                on_done(index, rows[index])
            counter.done += 1

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return row


class CopyTransformer(JsonListTransformer):
    """Copy the value at dotted path ``src`` to dotted path ``dst`` (a deep copy)."""

    def __init__(self, src: str, dst: str) -> None:
        self.src = src
        self.dst = dst

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        if not has_path(row, self.src):
            raise KeyError(f"row has no field {self.src!r} to copy")
        set_path(row, self.dst, copy.deepcopy(get_path(row, self.src)))
        return row


class DeleteProp(JsonListTransformer):
    """Remove the fields at the given dotted paths (missing ones are ignored)."""

    def __init__(self, *paths: str) -> None:
        self.paths = paths

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        for path in self.paths:
            top, _, rest = path.partition(".")
            if rest and top in row:
                row[top] = copy.deepcopy(row[top])  # never edit the input row's nested values
            delete_path(row, path)
        return row
