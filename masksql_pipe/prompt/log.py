"""The prompt log of a model stage: where it is, and reading it back.

Each model stage appends one JSON line per call to `DIR/.masksql_pipe/prompts/<N>_<Stage>.jsonl`
(row index, messages as sent, reply, usage). Audits and reports read it through this module.
The stage also records what it logged (`LogTally`: entries and the rows they are for) in its
stage record, so a reader can prove it saw every call: a deleted, truncated or damaged log
comes up short of the tally.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

PROMPTS_FOLDER = "prompts"

PROMPT_LOG_STAT = "prompt_log"
"""Key of the stage-record stats that holds the stage's LogTally."""


def prompt_log_path(book_dir: Path, stage_key: str) -> Path:
    """The log file of stage `stage_key` (`<N>_<Stage>`) in bookkeeping folder `book_dir`."""
    return Path(book_dir) / PROMPTS_FOLDER / f"{stage_key}.jsonl"


def find_prompt_log(book_dir: Path, stage_name: str, before: int | None = None) -> Path | None:
    """The log of the stage called `stage_name` with the highest number below `before`."""
    best: tuple[int, Path] | None = None
    pattern = re.compile(r"(\d+)_" + re.escape(stage_name))
    for path in (Path(book_dir) / PROMPTS_FOLDER).glob(f"*_{stage_name}.jsonl"):
        m = pattern.fullmatch(path.stem)
        if m is None:
            continue
        number = int(m.group(1))
        if before is not None and number >= before:
            continue
        if best is None or number > best[0]:
            best = (number, path)
    return best[1] if best else None


def read_prompt_log(path: Path) -> list[dict[str, Any]]:
    """Every entry of a log, in order; a torn or unreadable line is skipped."""
    entries = []
    try:
        data = Path(path).read_bytes()
    except OSError:
        return []
    for line in data.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


class LogTally:
    """What a stage's prompt log holds: readable entries and the set of rows they are for."""

    def __init__(self) -> None:
        self.entries = 0
        self.rows: set[int] = set()

    def add(self, row: Any) -> None:
        """Count one entry, for row `row` (None outside a row)."""
        self.entries += 1
        if isinstance(row, int) and not isinstance(row, bool):
            self.rows.add(row)

    @classmethod
    def of_file(cls, path: Path) -> LogTally:
        """The tally of an existing log (what earlier runs of the stage wrote into it)."""
        tally = cls()
        for entry in read_prompt_log(path):
            tally.add(entry.get("row"))
        return tally

    def to_dict(self) -> dict[str, Any]:
        """`{"entries": n, "rows": [[start, stop], ...]}`: rows as half-open ranges, so a
        million-row stage records a few numbers, not a million."""
        ranges: list[list[int]] = []
        for row in sorted(self.rows):
            if ranges and ranges[-1][1] == row:
                ranges[-1][1] = row + 1
            else:
                ranges.append([row, row + 1])
        return {"entries": self.entries, "rows": ranges}


def tallied_rows(tally: Any) -> tuple[int, set[int]] | None:
    """(entries, rows) of a recorded tally, or None when it is absent or malformed."""
    if not isinstance(tally, dict) or not isinstance(tally.get("entries"), int):
        return None
    rows: set[int] = set()
    for pair in tally.get("rows") or []:
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, int) for x in pair)
        ):
            return None
        rows.update(range(pair[0], pair[1]))
    return tally["entries"], rows


def latest_by_row(entries: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The last logged call of each row index (a rerun's call replaces the earlier ones)."""
    latest: dict[int, dict[str, Any]] = {}
    for entry in entries:
        row = entry.get("row")
        if isinstance(row, int) and not isinstance(row, bool):
            latest[row] = entry
    return latest


def sent_text(entry: dict[str, Any], roles: tuple[str, ...] = ("system", "user")) -> str:
    """The text a logged call sent, from the messages of the given roles."""
    messages = entry.get("messages") or []
    return "\n".join(
        str(m.get("content", ""))
        for m in messages
        if isinstance(m, dict) and m.get("role") in roles
    )
