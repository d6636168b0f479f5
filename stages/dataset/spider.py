"""What MaskSQL stages share: the Spider dataset of a run (tables.json, databases) and row data.

Stages take relocatable names (`tables="tables.json"`, `databases="databases"`) resolved against
the run's data folder in `setup`, so moving the folder does not make finished stages stale.
Helpers rebuild a row's kept schema and symbol table from the plain JSON the row carries.
`schema_problems` checks that tables.json and the databases agree before a run starts.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import orjson

from masksql_pipe.engine.stage import StageRun
from masksql_pipe.errors import InputError
from stages.sql.schema import Schema, load_schema, load_schemas
from stages.sql.symbols import SymbolTable
from stages.sql.tokens import quote_identifier

SCHEMA_CHECKS = ("stop", "warn")
"""Values of `data.schema_check`: stop the run when tables.json and a database disagree, or
run anyway with the disagreement recorded on each affected row (SCHEMA_PROBLEM_KEY)."""

SCHEMA_PROBLEM_KEY = "schema_mismatch"
"""Row key (with `data.schema_check: warn`): how the row's database disagrees with tables.json."""

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"


def default_template(name: str) -> Path:
    """The shipped prompt template `stages/prompts/<name>.j2`."""
    return PROMPTS_DIR / f"{name}.j2"


def file_digest(path: Path) -> str | None:
    """Short sha256 of a file's bytes (None when it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def duplicate_db_ids(tables: Path) -> list[str]:
    """db_ids that more than one entry of tables.json declares (the last would win silently)."""
    try:
        entries = orjson.loads(tables.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []  # a missing or broken file is reported where it is loaded
    if not isinstance(entries, list):
        return []
    counts = Counter(str(e["db_id"]) for e in entries if isinstance(e, dict) and "db_id" in e)
    return sorted(db_id for db_id, n in counts.items() if n > 1)


def _database_tables(db_path: Path) -> dict[str, set[str]]:
    """{table (lower case): {column (lower case)}} of a SQLite file, opened read-only."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            name.lower(): {
                str(r[1]).lower()
                for r in con.execute(f"PRAGMA table_info({quote_identifier(name)})")
            }
            for name in names
        }
    finally:
        con.close()


def database_problem(db_path: Path, schema: Schema) -> str | None:
    """One line naming `db_path` and what of `schema` it lacks, or why it is no SQLite
    database; None when every table and column of the schema is there (case-insensitive)."""
    if db_path.stat().st_size == 0:
        return f"{db_path}: empty file (0 bytes), not a SQLite database (db_id {schema.db_id!r})"
    try:
        found = _database_tables(db_path)
    except sqlite3.DatabaseError as exc:
        return f"{db_path}: not a readable SQLite database ({exc}) (db_id {schema.db_id!r})"
    missing: list[str] = []
    for table in schema.tables:
        columns = found.get(table.name.lower())
        if columns is None:
            missing.append(f"table {table.name!r}")
            continue
        missing += [
            f"column {table.name}.{c.name!r}"
            for c in table.columns
            if c.name.lower() not in columns
        ]
    if not missing:
        return None
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return (
        f"{db_path}: {missing[0]}{more} of tables.json (db_id {schema.db_id!r}) "
        "is not in the database"
    )


def schema_problems(tables: Path, databases: Path, db_ids: Iterable[str]) -> dict[str, str]:
    """{db_id: one line} for each of `db_ids` whose tables.json entry is declared twice or
    does not match its database. A db_id without an entry or a database file is left to the
    rows (they fail with their own message), as before."""
    wanted = sorted(set(db_ids))
    problems: dict[str, str] = {}
    for db_id in duplicate_db_ids(tables):
        if db_id in wanted:
            problems[db_id] = f"{tables}: db_id {db_id!r} is declared more than once"
    schemas = load_schemas(tables)
    for db_id in wanted:
        path = databases / db_id / f"{db_id}.sqlite"
        if db_id in problems or db_id not in schemas or not path.is_file():
            continue
        problem = database_problem(path, schemas[db_id])
        if problem:
            problems[db_id] = problem
    return problems


def input_db_ids(data_dir: Path, start: int = 0, limit: int | None = None) -> list[str]:
    """The db_ids of the rows a run uses (DIR/1_input.json, rows start .. start + limit)."""
    try:
        rows = orjson.loads((Path(data_dir) / "1_input.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []  # the engine reports a missing or broken input file
    if not isinstance(rows, list):
        return []
    stop = None if limit is None else start + limit
    return [str(r["db_id"]) for r in rows[start:stop] if isinstance(r, dict) and "db_id" in r]


def require(row: dict[str, Any], key: str, stage: str) -> Any:
    """`row[key]`, or a clear error naming the stage that should have added it."""
    if key not in row:
        raise InputError(f"row has no {key!r} field (added by {stage}; run it first)")
    return row[key]


class DatasetMixin:
    """Finds the dataset files of a run and a row's schema, kept schema, symbols and database.

    Declares what it reads to the engine (``external_files``): tables.json, and for stages that
    run SQL (``reads_databases``) each database file its rows use, so editing the schema or a
    database makes exactly those outputs stale. ``preflight`` stops a run before any stage when
    the schema file or the database folder is missing.
    """

    reads_databases: ClassVar[bool] = False
    """True for stages that open the rows' databases (their contents are then part of staleness)."""
    tables: str
    databases: str
    tables_digest: str | None = None
    """Set by the pipeline (digest of tables.json), so editing the schema file reruns stages."""
    _tables_path: Path | None = None
    _databases_path: Path | None = None

    def _init_dataset(self, tables: str, databases: str) -> None:
        self.tables = str(tables)
        self.databases = str(databases)

    def _setup_dataset(self, run: StageRun) -> None:
        self._tables_path = Path(run.data_dir) / self.tables
        self._databases_path = Path(run.data_dir) / self.databases

    def external_files(self, rows: list[dict[str, Any]]) -> list[Path]:
        """tables.json and, when this stage runs SQL, the database file of every row's db_id."""
        if self._tables_path is None or self._databases_path is None:
            return []
        files = [self._tables_path]
        if self.reads_databases:
            db_ids = sorted({str(row["db_id"]) for row in rows if "db_id" in row})
            files.extend(self._databases_path / db_id / f"{db_id}.sqlite" for db_id in db_ids)
        return files

    def preflight(self, data_dir: Path) -> None:
        """The dataset must have its schema file and database folder before any stage runs."""
        tables = Path(data_dir) / self.tables
        if not tables.is_file():
            raise InputError(
                f"{tables}: schema file not found; a Spider dataset folder needs tables.json "
                "(or set data.tables)"
            )
        databases = Path(data_dir) / self.databases
        if not databases.is_dir():
            raise InputError(
                f"{databases}: database folder not found; expected "
                "databases/<db_id>/<db_id>.sqlite (or set data.databases)"
            )

    def _dataset_fingerprint(self) -> dict[str, Any]:
        return {"tables_digest": self.tables_digest} if self.tables_digest else {}

    def full_schema(self, row: dict[str, Any]) -> Schema:
        """The whole schema of the row's database; InputError when tables.json lacks it."""
        if self._tables_path is None:
            raise RuntimeError(f"{type(self).__name__}: setup() has not run")
        db_id = require(row, "db_id", "the input")
        if not self._tables_path.is_file():
            raise InputError(
                f"{self._tables_path}: schema file not found (db_id {db_id!r}); "
                "a Spider dataset folder needs tables.json"
            )
        return load_schema(self._tables_path, str(db_id))

    def kept_schema(self, row: dict[str, Any]) -> Schema:
        """The row's filtered schema, from AddFilteredSchema's `filtered_schema` map."""
        kept = require(row, "filtered_schema", "AddFilteredSchema")
        return self.full_schema(row).filter(kept)

    @staticmethod
    def symbols(row: dict[str, Any]) -> SymbolTable:
        """The row's symbol table (AddSymbolTable's `symbols`, extended by LinkValues)."""
        return SymbolTable.from_dict(require(row, "symbols", "AddSymbolTable"))

    def database(self, row: dict[str, Any]) -> Path:
        """The row's SQLite file; InputError naming it when it does not exist."""
        if self._databases_path is None:
            raise RuntimeError(f"{type(self).__name__}: setup() has not run")
        db_id = str(require(row, "db_id", "the input"))
        path = self._databases_path / db_id / f"{db_id}.sqlite"
        if not path.is_file():
            raise InputError(f"{path}: database file not found for db_id {db_id!r}")
        return path
