"""Dataset layouts as distributed: Spider's and BIRD's folders run without conversion.

A layout names the file holding the questions, the schema file, the databases folder and the
row key of the gold SQL. `detect_layout` picks it from the folder (BIRD when `dev_tables.json`
and `dev_databases/` are there) or from the `dataset` setting. The engine starts from
`DIR/1_input.json`; for BIRD, `prepare_input` writes it as a deterministic copy of `dev.json`
(every field kept, the gold SQL also under `query`, the name every stage reads), and rewrites
it only when `dev.json` changes, so hand edits of `1_input.json` survive reruns.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from masksql_pipe.engine.files import write_json
from masksql_pipe.errors import ConfigError, InputError

INPUT_FILE = "1_input.json"
SOURCE_RECORD = "dataset_source.json"
"""Bookkeeping file (in DIR/.masksql_pipe/) recording the digest of the copied source."""


@dataclass(frozen=True)
class DatasetLayout:
    """Where a layout keeps its questions, schema and databases, and its gold SQL key."""

    name: str
    questions: str
    tables: str
    databases: str
    gold_key: str


LAYOUTS = {
    "spider": DatasetLayout("spider", INPUT_FILE, "tables.json", "databases", "query"),
    "bird": DatasetLayout("bird", "dev.json", "dev_tables.json", "dev_databases", "SQL"),
}


def detect_layout(folder: Path | None, setting: str = "auto") -> DatasetLayout:
    """The layout the `dataset` setting names, or for `auto` the one the folder has."""
    if setting != "auto":
        if setting not in LAYOUTS:
            raise ConfigError(
                f"setting 'dataset' must be auto, {' or '.join(LAYOUTS)}, got {setting!r}"
            )
        return LAYOUTS[setting]
    if folder is not None:
        folder = Path(folder)
        bird = LAYOUTS["bird"]
        if (folder / bird.tables).is_file() and (folder / bird.databases).is_dir():
            return bird
    return LAYOUTS["spider"]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def input_rows(source: Path, raw: bytes, gold_key: str) -> list[dict[str, Any]]:
    """The rows of a layout's question file, with the gold SQL also under `query`."""
    try:
        rows = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(rows, list):
        raise InputError(f"{source}: expected a JSON list of questions")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{source}: row {i} is not an object")
        for key in ("db_id", "question", gold_key):
            if key not in row and not (key == gold_key and "query" in row):
                raise InputError(f"{source}: row {i} has no {key!r} field")
        copy = dict(row)
        if "query" not in copy:
            copy["query"] = copy[gold_key]
        out.append(copy)
    return out


def prepare_input(folder: Path, layout: DatasetLayout) -> Path:
    """`folder/1_input.json`, written from the layout's question file when that is another
    file and it changed since the last copy (its digest is kept in the bookkeeping folder)."""
    folder = Path(folder)
    target = folder / INPUT_FILE
    if layout.questions == INPUT_FILE:
        return target
    source = folder / layout.questions
    if not source.is_file():
        if target.is_file():
            return target
        raise InputError(f"{source}: file not found (a {layout.name} folder has it)")
    raw = source.read_bytes()
    record_path = folder / ".masksql_pipe" / SOURCE_RECORD
    digest = _digest(raw)
    if target.is_file() and record_path.is_file():
        try:
            record = orjson.loads(record_path.read_bytes())
        except orjson.JSONDecodeError:
            record = {}
        if record.get("source") == layout.questions and record.get("sha256") == digest:
            return target
    rows = input_rows(source, raw, layout.gold_key)
    write_json(target, rows)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(record_path, {"source": layout.questions, "sha256": digest, "rows": len(rows)})
    return target
