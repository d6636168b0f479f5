"""The symbol table that hides real names and values: tables T1.., columns C1.., values V1...

Column symbols are per *distinct column name* (case-insensitive), not per (table, column):
`singer.name` and `stadium.name` both become C2, so `T1.C2` unmasks to `singer.name` with no
context needed, the mapping is a bijection between symbols and names, and unmasking is exact
whatever table qualifier (or alias) the model writes. Numbering follows schema order, so the
same (filtered) schema always yields the same table. Values are numbered in the order they
are added and remember the columns that hold them (the linked one first) and the question words
that name them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stages.sql.schema import Schema

SYMBOL_RE = re.compile(r"([TCV])([1-9]\d*)")


@dataclass
class ValueEntry:
    """A masked literal: the SQL value, the `table.column` it was linked to, its question forms,
    and the other `table.column`s the database holds it in (`also`)."""

    value: str | int | float
    column: str | None = None
    surfaces: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """Every `table.column` known to hold the value, the linked one first."""
        return [self.column, *self.also] if self.column else list(self.also)

    def add_columns(self, columns: list[str]) -> None:
        """Record more columns holding the value (the first known becomes the linked one)."""
        for column in columns:
            if column.lower() in (c.lower() for c in self.columns):
                continue
            if self.column is None:
                self.column = column
            else:
                self.also.append(column)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; `columns` (all of them) only when there is more than one, so a
        row written before several columns were kept reads the same."""
        data = {"value": self.value, "column": self.column, "surfaces": list(self.surfaces)}
        if self.also:
            data["columns"] = self.columns
        return data

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ValueEntry:
        """Rebuild from `to_dict` output (old rows: one `column`, no `columns`)."""
        entry = cls(raw["value"], raw.get("column"), list(raw.get("surfaces") or []))
        entry.add_columns([str(c) for c in raw.get("columns") or []])
        return entry


def _value_key(value: object) -> tuple[str, object]:
    if isinstance(value, bool):
        return ("n", int(value))
    if isinstance(value, int | float):
        return ("n", float(value))
    return ("s", str(value))


class SymbolTable:
    """Bijective maps symbol <-> real name for tables and columns, and symbol -> value entry."""

    def __init__(self) -> None:
        self.tables: dict[str, str] = {}
        self.columns: dict[str, str] = {}
        self.values: dict[str, ValueEntry] = {}
        self._table_idx: dict[str, str] = {}
        self._column_idx: dict[str, str] = {}

    @classmethod
    def from_schema(cls, schema: Schema) -> SymbolTable:
        """Symbols for every table and distinct column name of `schema`, in schema order."""
        table = cls()
        for tab in schema.tables:
            table.add_table(tab.name)
        for tab in schema.tables:
            for col in tab.columns:
                table.add_column(col.name)
        return table

    def add_table(self, name: str) -> str:
        """The symbol of table `name`, creating T<n+1> if new."""
        sym = self._table_idx.get(name.lower())
        if sym is None:
            sym = f"T{len(self.tables) + 1}"
            self.tables[sym] = name
            self._table_idx[name.lower()] = sym
        return sym

    def add_column(self, name: str) -> str:
        """The symbol of column name `name`, creating C<n+1> if new."""
        sym = self._column_idx.get(name.lower())
        if sym is None:
            sym = f"C{len(self.columns) + 1}"
            self.columns[sym] = name
            self._column_idx[name.lower()] = sym
        return sym

    def add_value(
        self,
        value: str | int | float,
        column: str | None = None,
        surface: str | None = None,
        also: Iterable[str] = (),
    ) -> str:
        """The symbol of `value` (strings exact, numbers by numeric value), adding V<n+1> if new.

        `column` ("table.column") becomes the linked column the first time one is known, and
        it and `also` (other columns holding the value) join the entry's columns; `surface`
        (how the question writes the value) is added to the entry's surface forms.
        """
        sym = self.value_symbol(value)
        if sym is None:
            sym = f"V{len(self.values) + 1}"
            self.values[sym] = ValueEntry(value)
        entry = self.values[sym]
        entry.add_columns([c for c in (column, *also) if c])
        if surface and surface.lower() not in {s.lower() for s in entry.surfaces}:
            entry.surfaces.append(surface)
        return sym

    def table_symbol(self, name: str) -> str | None:
        """T# for table `name` (case-insensitive), or None if the table is not kept."""
        return self._table_idx.get(name.lower())

    def column_symbol(self, name: str) -> str | None:
        """C# for column name `name` (case-insensitive), or None."""
        return self._column_idx.get(name.lower())

    def value_symbol(self, value: object) -> str | None:
        """V# for a value equal to `value`, or None."""
        key = _value_key(value)
        for sym, entry in self.values.items():
            if _value_key(entry.value) == key:
                return sym
        return None

    def symbol_for_surface(self, text: str) -> str | None:
        """V# whose value or a surface form equals `text` case-insensitively, or None."""
        low = text.strip().lower()
        for sym, entry in self.values.items():
            if str(entry.value).lower() == low or low in (s.lower() for s in entry.surfaces):
                return sym
        return None

    def table_name(self, symbol: str) -> str | None:
        """The real table behind T#, or None."""
        return self.tables.get(symbol.upper())

    def column_name(self, symbol: str) -> str | None:
        """The real column name behind C#, or None."""
        return self.columns.get(symbol.upper())

    def value(self, symbol: str) -> ValueEntry | None:
        """The value entry behind V#, or None."""
        return self.values.get(symbol.upper())

    def is_symbol(self, text: str) -> bool:
        """Whether `text` is a T#, C# or V# symbol defined in this table (case-insensitive)."""
        sym = text.upper()
        return sym in self.tables or sym in self.columns or sym in self.values

    def item_symbol(self, item: str) -> str | None:
        """Symbol text for a schema item: "table" -> T#, "table.column" -> T#.C#, "column" -> C#."""
        if "." in item:
            tname, cname = item.split(".", 1)
            t, c = self.table_symbol(tname.strip()), self.column_symbol(cname.strip())
            if c is None:
                return None
            return f"{t}.{c}" if t else c
        return self.table_symbol(item.strip()) or self.column_symbol(item.strip())

    def column_ref_symbol(self, column: str | None) -> str | None:
        """`table.column` -> `T#.C#` (for value notes), or None when unknown."""
        return self.item_symbol(column) if column else None

    def value_notes(self) -> list[str]:
        """One line per value symbol naming its columns, e.g. `V1: a value of T1.C3 or T2.C5`."""
        lines = []
        for sym, entry in self.values.items():
            refs = [self.column_ref_symbol(entry.column)]
            refs += [r for r in map(self.column_ref_symbol, entry.also) if r and "." in r]
            refs = list(dict.fromkeys(r for r in refs if r))
            lines.append(f"{sym}: a value of {' or '.join(refs)}" if refs else f"{sym}: a value")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (insertion order kept) so the table can live on a row."""
        return {
            "tables": dict(self.tables),
            "columns": dict(self.columns),
            "values": {sym: e.to_dict() for sym, e in self.values.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SymbolTable:
        """Rebuild from `to_dict` output."""
        table = cls()
        for sym, name in (data.get("tables") or {}).items():
            table.tables[sym] = name
            table._table_idx[name.lower()] = sym
        for sym, name in (data.get("columns") or {}).items():
            table.columns[sym] = name
            table._column_idx[name.lower()] = sym
        for sym, raw in (data.get("values") or {}).items():
            table.values[sym] = ValueEntry.from_dict(raw)
        return table

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SymbolTable) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (
            f"SymbolTable({len(self.tables)} tables, {len(self.columns)} columns, "
            f"{len(self.values)} values)"
        )
