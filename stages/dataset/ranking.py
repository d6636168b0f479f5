"""Schema ranking knobs of the original MaskSQL: caps on the ranked items and a ranking read
from a RESDSQL output file instead of asked of the small model.

A ranking is `{table: [columns]}` in rank order (best first); an empty column list means every
column of the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from stages.sql.schema import Schema


def cap_items(
    items: Mapping[str, Sequence[str]],
    schema: Schema,
    max_tables: int = 0,
    max_columns: int = 0,
) -> dict[str, list[str]]:
    """The first `max_tables` tables and, of each, the first `max_columns` columns (0: no cap).

    A table ranked with every column (an empty list) counts its columns in schema order.
    """
    out: dict[str, list[str]] = {}
    for table_name, columns in items.items():
        if max_tables and len(out) >= max_tables:
            break
        cols = list(columns)
        if max_columns:
            if not cols:
                table = schema.table(table_name)
                cols = [c.name for c in table.columns] if table is not None else []
            cols = cols[:max_columns]
        out[table_name] = cols
    return out


class RankingFileError(ValueError):
    """A RESDSQL ranking entry names a table or column the schema does not have."""


def resdsql_items(ranked: Sequence[Any], schema: Schema) -> dict[str, list[str]]:
    """`{table: [columns]}` from RESDSQL's `tc_original` list ("table.column", best first).

    `table.*` keeps the table with its primary keys only; an unknown name is an error naming it.
    """
    items: dict[str, list[str]] = {}
    for entry in ranked:
        table_name, _, column_name = str(entry).partition(".")
        table = schema.table(table_name.strip())
        if table is None:
            raise RankingFileError(f"unknown table {table_name!r} in {entry!r}")
        cols = items.setdefault(table.name, [])
        column_name = column_name.strip()
        if column_name in ("", "*"):
            for key in table.primary_keys:
                if key not in cols:
                    cols.append(key)
            continue
        column = table.column(column_name)
        if column is None:
            raise RankingFileError(f"unknown column {column_name!r} of {table.name!r} in {entry!r}")
        if column.name not in cols:
            cols.append(column.name)
    return items
