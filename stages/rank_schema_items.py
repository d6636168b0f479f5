"""RankSchemaItems: the small local model keeps the tables and columns a question needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from masksql_pipe.lm.base import Model
from stages.answers.oracle import gold_schema_items
from stages.answers.replies import parse_json_reply, render_schema_items_reply
from stages.base import ModelStage
from stages.sql.names import name_variants
from stages.sql.schema import Schema


def _said(question: str, name: str) -> bool:
    return any(
        re.search(r"(?<!\w)" + re.escape(v) + r"(?!\w)", question, re.IGNORECASE)
        for v in name_variants(name)
    )


def oracle_items(question: str, sql: str, schema: Schema) -> dict[str, list[str]]:
    """What a perfect ranker keeps: the gold query's items, plus each table the question names
    and each column name it writes that no kept column already spells, so every schema word of
    the question gets a symbol and can be masked."""
    items = {t: list(c) for t, c in gold_schema_items(sql, schema).items()}
    for table in schema.tables:
        if table.name not in items and _said(question, table.name):
            items[table.name] = list(table.primary_keys)

    def covered(name: str) -> bool:
        for tname, cols in items.items():
            table = schema.table(tname)
            kept = cols or ([c.name for c in table.columns] if table else [])
            if name.lower() in (c.lower() for c in kept):
                return True
        return False

    for table in schema.tables:
        for column in table.columns:
            if covered(column.name) or not _said(question, column.name):
                continue
            if table.name in items and not items[table.name]:
                continue  # an empty list (count(*)) already keeps every column
            items.setdefault(table.name, []).append(column.name)
    return items


def normalize_items(reply: Any, schema: Schema) -> dict[str, list[str]]:
    """A model's ranking as {table: [columns]} with real spellings; unknown names dropped.

    Accepts {table: [columns]}, a list of "table.column"/"table" strings, or {table: "col"}.
    """
    pairs: list[tuple[str, str | None]] = []
    if isinstance(reply, dict):
        for table, cols in reply.items():
            cols = [cols] if isinstance(cols, str) else cols
            pairs.append((str(table), None))
            pairs += [(str(table), str(c)) for c in cols or [] if isinstance(c, str)]
    elif isinstance(reply, list):
        for item in reply:
            if isinstance(item, str):
                table, _, col = item.partition(".")
                pairs.append((table.strip(), col.strip() or None))
    items: dict[str, list[str]] = {}
    for table_name, col_name in pairs:
        table = schema.table(table_name)
        if table is None:
            continue
        cols = items.setdefault(table.name, [])
        column = table.column(col_name) if col_name else None
        if column is not None and column.name not in cols:
            cols.append(column.name)
    return items


def all_items(schema: Schema) -> dict[str, list[str]]:
    """Every table with every column: the `schema: full` choice."""
    return {t.name: [c.name for c in t.columns] for t in schema.tables}


class RankSchemaItems(ModelStage):
    """Asks the small model which tables/columns the question needs (`schema_items`).

    The oracle keeps the gold query's items plus those the question names (`oracle_items`).

    With `full=True` it keeps the whole schema and calls no model. A reply naming no known
    table also falls back to the whole schema (`schema_items_fallback` says so).
    """

    template_name = "rank_schema_items"
    prop = "schema_items"
    answer_schema = {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    }

    def __init__(
        self,
        model: str | Model = "oracle",
        template: str | Path | None = None,
        tables: str = "tables.json",
        databases: str = "databases",
        full: bool = False,
    ) -> None:
        super().__init__(model, template, tables, databases)
        self.full = full

    def _get_prompt(self, row: dict[str, Any]) -> str:
        schema = self.full_schema(row)
        return self.render(question=row["question"], schema=schema.to_text(types=True))

    def _oracle(self, row: dict[str, Any]) -> str:
        items = oracle_items(row["question"], row["query"], self.full_schema(row))
        return render_schema_items_reply(items)

    def _process_output(self, row: dict[str, Any], output: str) -> dict[str, list[str]]:
        return normalize_items(parse_json_reply(output), self.full_schema(row))

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        schema = self.full_schema(row)
        if self.full:
            row[self.prop_name] = all_items(schema)
            return row
        await super()._process_row(row)
        if not row[self.prop_name]:
            row[self.prop_name] = all_items(schema)
            row["schema_items_fallback"] = True
        return row
