"""LinkValues: the small local model says which column each detected value belongs to."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from masksql_pipe.engine.stage import StageRun
from masksql_pipe.errors import InputError
from stages.answers.oracle import gold_values
from stages.answers.replies import parse_object_reply, render_link_values_reply
from stages.base import ModelStage
from stages.dataset.spider import require
from stages.privacy.stage import INDEX_FOLDER
from stages.privacy.text import normalize
from stages.privacy.value_index import ValueIndex
from stages.sql.masking import coerce_value
from stages.sql.schema import Schema
from stages.sql.symbols import SymbolTable


def resolve_column(item: Any, schema: Schema) -> tuple[str, str] | None:
    """("table.column", type) for a model's "table.column" or bare "column" answer, or None."""
    if not isinstance(item, str) or not item.strip():
        return None
    table_name, _, col_name = item.strip().rpartition(".")
    if table_name:
        column = schema.column(table_name, col_name)
        tables = [schema.table(table_name)] if column is not None else []
    else:
        tables = schema.tables_with_column(col_name)
        column = tables[0].column(col_name) if tables else None
    if column is None or not tables or tables[0] is None:
        return None
    return f"{tables[0].name}.{column.name}", column.type


def _numeric(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return None


class LinkValues(ModelStage):
    """Adds `value_links` (value words -> "table.column") and the values' V# symbols to `symbols`,
    each with every kept column the database holds it in (`V1: a value of T1.C3 or T2.C5`).

    A question with no values calls no model.
    """

    template_name = "link_values"
    prop = "value_links"
    _index_dir: Path | None = None
    answer_schema = {"type": "object", "additionalProperties": {"type": ["string", "null"]}}

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return self.render(
            question=row["question"],
            values=list(row["values"]),
            schema=self.kept_schema(row).to_text(types=True),
        )

    def _oracle(self, row: dict[str, Any]) -> str:
        gold = gold_values(row["question"], row["query"], self.full_schema(row))
        by_surface = {str(v["surface"]).lower(): v for v in gold}
        wanted = [
            {"surface": s, "column": by_surface.get(s.lower(), {}).get("column")}
            for s in row["values"]
        ]
        return render_link_values_reply(wanted)

    def _process_output(self, row: dict[str, Any], output: str) -> dict[str, str | None]:
        reply = parse_object_reply(output)
        kept = self.kept_schema(row)
        full = self.full_schema(row)
        lowered = {str(k).strip().lower(): v for k, v in reply.items()}
        links: dict[str, str | None] = {}
        for surface in row["values"]:
            item = lowered.get(surface.lower())
            found = resolve_column(item, kept) or resolve_column(item, full)
            links[surface] = found[0] if found else None
        return links

    async def setup(self, run: StageRun) -> None:
        """The model stage's set-up, and where the value indexes live."""
        self._index_dir = Path(run.book_dir) / INDEX_FOLDER
        await super().setup(run)

    def _link_to_cells(self, row: dict[str, Any]) -> dict[str, list[str]]:
        """A value the database holds as a cell is linked to a column that has it: when the
        small model named a column without that cell ("Glasgow": stadium.name, while Glasgow is
        a stadium.location), the cell's column (a kept one first) replaces it. Returns, per
        value, every `table.column` the value index finds it in."""
        if self._index_dir is None:
            return {}
        try:
            database = self.database(row)
        except InputError:
            return {}  # no database: nothing to check against (the guard fails the row later)
        index = ValueIndex.for_database(database, self._index_dir)
        links = row[self.prop_name]
        cells = index.lookup(normalize(str(s)) for s in links)
        kept = {t.lower(): {c.lower() for c in cols} for t, cols in row["filtered_schema"].items()}
        holders: dict[str, list[str]] = {}
        for surface, column in list(links.items()):
            found = cells.get(normalize(str(surface)))
            holders[surface] = [c.item for c in found or []]
            if not found or (column and any(c.item.lower() == str(column).lower() for c in found)):
                continue
            in_kept = [c for c in found if c.column.lower() in kept.get(c.table.lower(), set())]
            links[surface] = (in_kept or found)[0].item
        return holders

    def _keep_linked_columns(self, row: dict[str, Any]) -> None:
        """A link to a column the ranking dropped is kept: the filtered schema grows by it (and
        its table, with its keys), and the new items get symbols."""
        full = self.full_schema(row)
        kept = {t: list(c) for t, c in require(row, "filtered_schema", "AddFilteredSchema").items()}
        grown = False
        for column in row[self.prop_name].values():
            found = resolve_column(column, self.full_schema(row).filter(kept))
            if found is not None or not column:
                continue
            found = resolve_column(column, full)
            if found is None:
                continue
            table_name, _, col_name = found[0].rpartition(".")
            table = full.table(table_name)
            if table is None:
                continue
            cols = kept.setdefault(table.name, list(table.primary_keys))
            if col_name.lower() not in (c.lower() for c in cols):
                cols.append(col_name)
            grown = True
        if not grown:
            return
        schema = full.filter(kept)
        row["filtered_schema"] = {t.name: [c.name for c in t.columns] for t in schema.tables}
        row["filtered_schema_text"] = schema.to_text(types=True)
        symbols = self.symbols(row)
        for tab in schema.tables:
            symbols.add_table(tab.name)
        for tab in schema.tables:
            for col in tab.columns:
                symbols.add_column(col.name)
        row["symbols"] = symbols.to_dict()

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        values = require(row, "values", "DetectValues")
        holders: dict[str, list[str]] = {}
        if values:
            await super()._process_row(row)
            holders = await asyncio.to_thread(self._link_to_cells, row)
        else:
            row[self.prop_name] = {}
        self._keep_linked_columns(row)
        kept = self.kept_schema(row)
        symbols = SymbolTable.from_dict(row["symbols"])
        for surface, column in row[self.prop_name].items():
            found = resolve_column(column, kept)
            if found is not None:
                value = coerce_value(surface, found[1])
            else:
                number = _numeric(surface)
                value = surface if number is None else number
            also = [h[0] for h in (resolve_column(c, kept) for c in holders.get(surface, [])) if h]
            symbols.add_value(value, found[0] if found else None, surface, also)
        row["symbols"] = symbols.to_dict()
        return row
