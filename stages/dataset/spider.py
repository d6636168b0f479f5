"""What MaskSQL stages share: the Spider dataset of a run (tables.json, databases) and row data.

Stages take relocatable names (`tables="tables.json"`, `databases="databases"`) resolved against
the run's data folder in `setup`, so moving the folder does not make finished stages stale.
Helpers rebuild a row's kept schema and symbol table from the plain JSON the row carries.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

from masksql_pipe.engine.stage import StageRun
from masksql_pipe.errors import InputError
from stages.sql.schema import Schema, load_schema
from stages.sql.symbols import SymbolTable

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
