"""RankSchemaFromFile: the ranked schema read from a RESDSQL output file (no model call).

The file is a JSON list of entries `{"idx" or "question_id": ..., "tc_original": ["table.column",
...]}` (best first), as RESDSQL's schema-item classifier writes it for MaskSQL; rows are matched
by their `question_id` (or `idx`), or by position when the entries carry neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from masksql_pipe.engine.stage import StageRun, current_row_index
from masksql_pipe.errors import InputError
from stages.base import LocalStage
from stages.dataset.ranking import RankingFileError, resdsql_items


class RankSchemaFromFile(LocalStage):
    """Adds `schema_items` from the ranking file (relative to the data folder)."""

    def __init__(
        self, file: str, tables: str = "tables.json", databases: str = "databases"
    ) -> None:
        super().__init__(tables, databases)
        self.file = str(file)
        self._by_id: dict[str, list[Any]] = {}
        self._by_position: list[list[Any]] = []
        self._path: Path | None = None

    async def setup(self, run: StageRun) -> None:
        """Read the ranking file once."""
        await super().setup(run)
        path = Path(self.file)
        self._path = path if path.is_absolute() else Path(run.data_dir) / path
        if not self._path.is_file():
            raise InputError(f"{self._path}: ranking file not found (setting 'ranking.file')")
        try:
            entries = orjson.loads(self._path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{self._path}: not valid JSON ({exc})") from None
        if not isinstance(entries, list):
            raise InputError(f"{self._path}: expected a JSON list of ranking entries")
        self._by_id, self._by_position = {}, []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("tc_original"), list):
                raise InputError(f"{self._path}: entry {i} has no 'tc_original' list")
            key = entry.get("question_id", entry.get("idx"))
            if key is not None:
                self._by_id[str(key)] = entry["tc_original"]
            self._by_position.append(entry["tc_original"])

    def external_files(self, rows: list[dict[str, Any]]) -> list[Path]:
        """The ranking file: editing it reruns the ranking."""
        return [self._path] if self._path is not None else []

    def _ranked(self, row: dict[str, Any]) -> list[Any]:
        key = row.get("question_id", row.get("idx"))
        if self._by_id:
            if key is None or str(key) not in self._by_id:
                raise InputError(f"{self._path}: no ranking entry for question_id {key!r}")
            return self._by_id[str(key)]
        index = current_row_index()
        if index is None or index >= len(self._by_position):
            raise InputError(f"{self._path}: no ranking entry at position {index}")
        return self._by_position[index]

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        try:
            row["schema_items"] = resdsql_items(self._ranked(row), self.full_schema(row))
        except RankingFileError as exc:
            raise InputError(f"{self._path}: {exc}") from None
        return row
