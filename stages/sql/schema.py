"""Spider `tables.json` schemas: one `Schema` per db_id, name lookups, prompt rendering."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from masksql_pipe.errors import InputError
from stages.sql.names import name_forms
from stages.sql.tokens import quote_identifier


@dataclass(frozen=True)
class Column:
    """One column of a table, with its Spider type ("text", "number", ...)."""

    table: str
    name: str
    type: str = "text"


@dataclass(frozen=True)
class ForeignKey:
    """`table.column` references `ref_table.ref_column`."""

    table: str
    column: str
    ref_table: str
    ref_column: str


@dataclass
class Table:
    """A table: its columns in schema order and the names of its primary-key columns."""

    name: str
    columns: list[Column] = field(default_factory=list)
    primary_keys: list[str] = field(default_factory=list)

    def column(self, name: str) -> Column | None:
        """The column called `name` (case-insensitive), or None."""
        low = name.lower()
        for col in self.columns:
            if col.name.lower() == low:
                return col
        return None

    def is_primary_key(self, name: str) -> bool:
        """Whether column `name` (case-insensitive) is part of the primary key."""
        return name.lower() in {pk.lower() for pk in self.primary_keys}


@dataclass
class Schema:
    """The tables and foreign keys of one database; all lookups ignore case."""

    db_id: str
    tables: list[Table] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    def table(self, name: str) -> Table | None:
        """The table called `name` (case-insensitive), or None."""
        low = name.lower()
        for table in self.tables:
            if table.name.lower() == low:
                return table
        return None

    def column(self, table: str, name: str) -> Column | None:
        """Column `name` of `table` (both case-insensitive), or None."""
        tab = self.table(table)
        return tab.column(name) if tab else None

    def tables_with_column(self, name: str) -> list[Table]:
        """Every table that has a column called `name`, in schema order."""
        return [t for t in self.tables if t.column(name) is not None]

    def has_column_name(self, name: str) -> bool:
        """Whether any table has a column called `name`."""
        return bool(self.tables_with_column(name))

    def is_name(self, phrase: str) -> bool:
        """Whether `phrase` is a table or column name, ignoring case, `_` against spaces and a
        plural or singular ending (`singers` is `singer`): the test a declared type must pass
        to be shown to the remote model."""
        names = (n for t in self.tables for n in [t.name, *(c.name for c in t.columns)])
        return not name_forms(phrase).isdisjoint(set().union(*map(name_forms, names)))

    def column_names(self) -> list[str]:
        """Distinct column names (case-insensitive) in schema order, first spelling kept."""
        seen: dict[str, str] = {}
        for table in self.tables:
            for col in table.columns:
                seen.setdefault(col.name.lower(), col.name)
        return list(seen.values())

    def filter(self, keep: Mapping[str, Iterable[str]], *, keep_keys: bool = True) -> Schema:
        """A copy with only the tables in `keep` and, per table, the listed columns.

        An empty column list keeps every column. With `keep_keys`, primary keys and
        foreign-key columns between kept tables stay too, so joins remain expressible.
        Unknown names are ignored (a model may rank items that do not exist).
        """
        wanted: dict[str, set[str]] = {}
        for tname, cols in keep.items():
            tab = self.table(tname)
            if tab is not None:
                wanted.setdefault(tab.name.lower(), set()).update(c.lower() for c in cols)
        kept_fks = [
            fk
            for fk in self.foreign_keys
            if fk.table.lower() in wanted and fk.ref_table.lower() in wanted
        ]
        if keep_keys:
            for fk in kept_fks:
                for tname, cname in ((fk.table, fk.column), (fk.ref_table, fk.ref_column)):
                    if wanted[tname.lower()]:
                        wanted[tname.lower()].add(cname.lower())
        tables: list[Table] = []
        for tab in self.tables:
            cols = wanted.get(tab.name.lower())
            if cols is None:
                continue
            if cols and keep_keys:
                cols = cols | {pk.lower() for pk in tab.primary_keys}
            columns = [c for c in tab.columns if not cols or c.name.lower() in cols]
            names = {c.name.lower() for c in columns}
            pks = [pk for pk in tab.primary_keys if pk.lower() in names]
            tables.append(Table(tab.name, columns, pks))
        fks = [
            fk
            for fk in kept_fks
            if self._kept(tables, fk.table, fk.column)
            and self._kept(tables, fk.ref_table, fk.ref_column)
        ]
        return Schema(self.db_id, tables, fks)

    @staticmethod
    def _kept(tables: list[Table], table: str, column: str) -> bool:
        for tab in tables:
            if tab.name.lower() == table.lower():
                return tab.column(column) is not None
        return False

    def to_text(self, *, types: bool = False) -> str:
        """Compact prompt text: one `table(col, ...)` line per table, then the foreign keys."""
        lines = []
        for tab in self.tables:
            cols = []
            for col in tab.columns:
                text = quote_name(col.name)
                if types:
                    text += f" {col.type}"
                if tab.is_primary_key(col.name) and types:
                    text += " primary key"
                cols.append(text)
            lines.append(f"{quote_name(tab.name)}({', '.join(cols)})")
        if self.foreign_keys:
            lines.append("Foreign keys:")
            for fk in self.foreign_keys:
                lines.append(
                    f"{quote_name(fk.table)}.{quote_name(fk.column)} = "
                    f"{quote_name(fk.ref_table)}.{quote_name(fk.ref_column)}"
                )
        return "\n".join(lines)


_TYPE_WORD = r"[A-Za-z_][A-Za-z0-9_]*"
_SIGNED = r"[+-]?\d+(?:\.\d+)?"
DECLARED_TYPE = re.compile(
    rf"(?P<words>{_TYPE_WORD}(?:\s+{_TYPE_WORD})*)?"
    rf"(?:\s*\(\s*(?P<a>{_SIGNED})\s*(?:,\s*(?P<b>{_SIGNED})\s*)?\))?"
)
"""SQLite's type-name grammar: words, then an optional `(N)` or `(N, M)` of signed numbers."""

AFFINITIES = ("integer", "text", "blob", "real", "numeric")
"""SQLite's five column affinities: the neutral types a symbolic schema may always show."""


def parse_type(declared: str) -> tuple[list[str], str] | None:
    """The words and canonical spelling (`decimal(10,2)`) of a declared column type; None when
    it does not follow SQLite's type-name grammar. No type at all is `([], "")`."""
    m = DECLARED_TYPE.fullmatch(declared.strip())
    if m is None or (m["words"] is None and m["a"] is not None):
        return None
    words = (m["words"] or "").split()
    size = ",".join(x for x in (m["a"], m["b"]) if x is not None)
    return words, " ".join(words) + (f"({size})" if size else "")


def type_affinity(declared: str) -> str:
    """SQLite's affinity of a declared type, by its rules in their order (INT, CHAR/CLOB/TEXT,
    BLOB or no type, REAL/FLOA/DOUB, else NUMERIC)."""
    up = declared.upper()
    if "INT" in up:
        return "integer"
    if any(k in up for k in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if "BLOB" in up or not up.strip():
        return "blob"
    if any(k in up for k in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


def type_secrets(words: list[str], secret: Callable[[str], bool]) -> list[str]:
    """Every run of consecutive words of a declared type that `secret` flags (a name or value
    of the database); the affinity words alone are never flagged."""
    runs = (" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1))
    return [r for r in runs if r.lower() not in AFFINITIES and secret(r)]


def shown_type(declared: str, secret: Callable[[str], bool]) -> str:
    """The type a symbolic schema shows for `declared`: its canonical spelling when it follows
    the grammar and names nothing `secret` flags, else its SQLite affinity."""
    parsed = parse_type(declared)
    if parsed is not None and not type_secrets(parsed[0], secret):
        return parsed[1]
    return type_affinity(declared)


def quote_name(name: str) -> str:
    """`name` as written in SQL: bare when it is a plain word, else in double quotes."""
    return quote_identifier(name)


def parse_schema(entry: Mapping[str, Any], source: str = "tables.json") -> Schema:
    """Build a `Schema` from one Spider `tables.json` entry; errors name `source` and the db_id."""
    db_id = entry.get("db_id", "?")
    where = f"{source}: db_id {db_id!r}"
    try:
        table_names = list(entry["table_names_original"])
        raw_columns = list(entry["column_names_original"])
        types = list(entry.get("column_types") or ["text"] * len(raw_columns))
        pk_ids = _flatten(entry.get("primary_keys") or [])
        fk_pairs = list(entry.get("foreign_keys") or [])
    except (KeyError, TypeError) as exc:
        raise InputError(f"{where}: missing or malformed field {exc}") from None
    tables = [Table(str(name)) for name in table_names]
    columns: list[Column | None] = []
    for idx, pair in enumerate(raw_columns):
        try:
            t_idx, cname = int(pair[0]), str(pair[1])
        except (TypeError, ValueError, IndexError):
            msg = f"{where}: column_names_original[{idx}] is not [table, name]"
            raise InputError(msg) from None
        if t_idx < 0:
            columns.append(None)
            continue
        if t_idx >= len(tables):
            raise InputError(f"{where}: column {cname!r} points to missing table {t_idx}")
        ctype = str(types[idx]) if idx < len(types) else "text"
        col = Column(tables[t_idx].name, cname, ctype)
        tables[t_idx].columns.append(col)
        columns.append(col)

    def col_at(i: Any, what: str) -> Column:
        try:
            col = columns[int(i)]
        except (TypeError, ValueError, IndexError):
            col = None
        if col is None:
            raise InputError(f"{where}: {what} refers to unknown column index {i!r}")
        return col

    for pk in pk_ids:
        col = col_at(pk, "primary_keys")
        tab = next(t for t in tables if t.name == col.table)
        tab.primary_keys.append(col.name)
    fks = []
    for pair in fk_pairs:
        try:
            src, dst = pair
        except (TypeError, ValueError):
            raise InputError(f"{where}: foreign_keys entry {pair!r} is not a pair") from None
        a, b = col_at(src, "foreign_keys"), col_at(dst, "foreign_keys")
        fks.append(ForeignKey(a.table, a.name, b.table, b.name))
    return Schema(str(db_id), tables, fks)


def _flatten(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, list | tuple):
            out.extend(_flatten(item))
        else:
            out.append(item)
    return out


_CACHE: dict[str, tuple[tuple[int, int], dict[str, Schema]]] = {}


def load_schemas(path: str | os.PathLike[str]) -> dict[str, Schema]:
    """Every schema in a Spider `tables.json`, by db_id (cached until the file changes)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise InputError(f"{p}: schema file not found (expected Spider tables.json)") from None
    key = str(p.resolve())
    stamp = (st.st_mtime_ns, st.st_size)
    hit = _CACHE.get(key)
    if hit and hit[0] == stamp:
        return hit[1]
    try:
        data = orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise InputError(f"{p}: expected a JSON list of schemas")
    schemas: dict[str, Schema] = {}
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or "db_id" not in entry:
            raise InputError(f"{p}: entry {i} has no db_id")
        schemas[str(entry["db_id"])] = parse_schema(entry, str(p))
    _CACHE[key] = (stamp, schemas)
    return schemas


def load_schema(path: str | os.PathLike[str], db_id: str) -> Schema:
    """The schema of `db_id` from `tables.json` at `path`; InputError naming both if absent."""
    schemas = load_schemas(path)
    try:
        return schemas[db_id]
    except KeyError:
        raise InputError(f"{path}: no schema for db_id {db_id!r} in tables.json") from None
