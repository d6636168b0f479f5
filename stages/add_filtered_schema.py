"""AddFilteredSchema: the schema cut down to the ranked items, keys kept so joins still work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from masksql_pipe.errors import ConfigError, InputError
from stages.base import LocalStage
from stages.dataset.ranking import cap_items
from stages.dataset.spider import (
    SCHEMA_CHECKS,
    SCHEMA_PROBLEM_KEY,
    input_db_ids,
    require,
    schema_problems,
)
from stages.sql.schema import Schema


def with_text_columns(items: dict[str, Any], schema: Schema) -> dict[str, list[str]]:
    """`items` ({table: [columns]}) where each table without a text column among its items
    gets the table's first text column (none: unchanged)."""
    out = {str(t): list(c or []) for t, c in items.items()}
    for table in schema.tables:
        key = next((t for t in out if t.lower() == table.name.lower()), None)
        if key is None:
            continue
        texts = [c.name for c in table.columns if c.type == "text"]
        chosen = {c.lower() for c in out[key]}
        if texts and not any(t.lower() in chosen for t in texts):
            out[key].append(texts[0])
    return out


class AddFilteredSchema(LocalStage):
    """Adds `filtered_schema` ({table: [columns]}, keys included) and its prompt text.

    `max_tables` / `max_columns` (0: no cap) keep only the best-ranked tables and, of each,
    the best-ranked columns, as the original MaskSQL's ranking caps do (keys still kept).
    With `keep_text_column`, a kept table with no text column left gets its first one back:
    a question about "which stadium" is answered with a name the ranking may have dropped.

    Before the first stage of a run (`preflight`), the databases of the rows the run uses are
    checked against tables.json (stages.dataset.schema_problems): with `schema_check: stop`
    the run stops with one line naming the file; with `warn` each affected row records the
    disagreement under SCHEMA_PROBLEM_KEY.
    """

    window: tuple[int, int | None] = (0, None)
    """Rows of 1_input.json the run uses (start, limit): set by the pipeline from its options."""

    def __init__(
        self,
        tables: str = "tables.json",
        databases: str = "databases",
        max_tables: int = 0,
        max_columns: int = 0,
        keep_text_column: bool = True,
        schema_check: str = "stop",
    ) -> None:
        super().__init__(tables, databases)
        if schema_check not in SCHEMA_CHECKS:
            raise ConfigError(
                f"setting 'data.schema_check' must be 'stop' or 'warn', got {schema_check!r}"
            )
        self.max_tables = max_tables
        self.max_columns = max_columns
        self.keep_text_column = keep_text_column
        self.schema_check = schema_check
        self.reads_databases = schema_check == "warn"  # rows then record what the files hold
        self._problems: dict[str, str] = {}

    def preflight(self, data_dir: Path) -> None:
        """The dataset files exist, and tables.json agrees with every database the run uses."""
        super().preflight(data_dir)
        problems = schema_problems(
            Path(data_dir) / self.tables,
            Path(data_dir) / self.databases,
            input_db_ids(data_dir, *self.window),
        )
        if problems and self.schema_check == "stop":
            first = problems[min(problems)]
            more = f" (and {len(problems) - 1} more databases)" if len(problems) > 1 else ""
            raise InputError(
                f"{first}{more}; fix tables.json or the database, or set "
                "data.schema_check=warn to run anyway"
            )
        self._problems = problems

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        row.pop(SCHEMA_PROBLEM_KEY, None)
        if str(row.get("db_id")) in self._problems:
            row[SCHEMA_PROBLEM_KEY] = self._problems[str(row["db_id"])]
        items = require(row, "schema_items", "RankSchemaItems")
        if self.max_tables or self.max_columns:
            items = cap_items(items, self.full_schema(row), self.max_tables, self.max_columns)
        if self.keep_text_column:
            items = with_text_columns(items, self.full_schema(row))
        kept = self.full_schema(row).filter(items)
        if not kept.tables:
            raise ValueError(f"no table of db_id {row['db_id']!r} left after ranking: {items}")
        row["filtered_schema"] = {t.name: [c.name for c in t.columns] for t in kept.tables}
        row["filtered_schema_text"] = kept.to_text(types=True)
        return row
