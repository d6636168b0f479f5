"""A dataset folder seen read-only: stage files, each row's journey, its model calls, run outcomes.

Everything the viewer shows comes from here, as plain JSON-ready values. Nothing is written:
files are opened for reading only, and the bookkeeping folder is never created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from masksql_pipe.engine.files import (
    BOOKKEEPING_DIR,
    FileState,
    current_digest,
    numbered_files,
    read_rows,
)
from masksql_pipe.engine.row_diff import row_diff
from masksql_pipe.engine.stage import ERROR_KEY
from masksql_pipe.errors import InputError
from masksql_pipe.prompt.log import prompt_log_path, read_prompt_log

ID_KEYS = ("id", "case_id", "question_id")
TEXT_KEYS = ("question", "text", "input", "prompt")
"""Fields naming a row in the row list: its first id field, then its first text field."""


@dataclass
class _Cached:
    """A parsed file and the (size, mtime) it was parsed at: reparsed only when it changes."""

    stamp: tuple[int, int]
    value: Any


@dataclass
class RunFolder:
    """Read-only access to ``data``: its numbered files, prompt logs and run logs."""

    data: Path
    _cache: dict[Path, _Cached] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.data.is_dir():
            raise InputError(f"{self.data}: data folder not found")

    # -- files ----------------------------------------------------------------------------

    def stage_files(self) -> list[Path]:
        """The numbered files, in stage order."""
        return [path for _, path in numbered_files(self.data)]

    def stage_file(self, name: str) -> Path:
        """One numbered file by its file name (only names that exist: no path tricks)."""
        for path in self.stage_files():
            if path.name == name:
                return path
        raise InputError(f"{self.data}: no stage file {name!r}")

    def rows(self, path: Path) -> list[dict[str, Any]]:
        """The rows of a stage file, parsed once per version of the file."""
        return self._cached(path, read_rows)

    def _cached(self, path: Path, parse: Any) -> Any:
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        hit = self._cache.get(path)
        if hit is None or hit.stamp != stamp:
            hit = _Cached(stamp, parse(path))
            self._cache[path] = hit
        return hit.value

    def overview(self) -> dict[str, Any]:
        """The folder, each stage file with its row and error counts, and the recorded runs."""
        stages = []
        edited = self.edited_files()
        for path in self.stage_files():
            rows = self.rows(path)
            stages.append(
                {
                    "file": path.name,
                    "rows": len(rows),
                    "errors": sum(1 for row in rows if ERROR_KEY in row),
                    "prompt_log": self._prompt_log(path).is_file(),
                    "edited": path.name in edited,
                }
            )
        runs = [
            {
                "id": run["id"],
                "created": run.get("created"),
                "pipeline": run.get("pipeline"),
                "totals": run.get("totals"),
            }
            for run in self.runs()
        ]
        return {"data": str(self.data.resolve()), "stages": stages, "runs": runs}

    # -- rows -------------------------------------------------------------------------------

    def row_list(
        self,
        file: str,
        *,
        failed: bool = False,
        search: str = "",
        changed: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """The rows of one stage file, filtered: failed ones, those whose outcome differs
        between two runs, those whose JSON contains ``search`` (any case)."""
        rows = self.rows(self.stage_file(file))
        differing = self.changed_rows(*changed) if changed else None
        outcomes = self.last_outcomes()
        needle = search.casefold()
        listed = []
        for index, row in enumerate(rows):
            if failed and ERROR_KEY not in row:
                continue
            if differing is not None and index not in differing:
                continue
            if needle and needle not in orjson.dumps(row).decode().casefold():
                continue
            item: dict[str, Any] = {"index": index, "label": row_label(row)}
            if ERROR_KEY in row:
                item["error"] = row[ERROR_KEY]
            if differing is not None:
                item["outcomes"] = differing[index]
            if index in outcomes:
                item["outcome"] = outcomes[index]
            listed.append(item)
        return {"file": file, "total": len(rows), "rows": listed}

    def journey(self, index: int) -> dict[str, Any]:
        """Row ``index`` through every stage: what each stage changed, its error, its model calls.

        Rows keep their index from stage to stage; the input file is offset by the last run's
        ``--start`` (LimitJson's first kept row).
        """
        steps = []
        before: dict[str, Any] | None = None
        offset = self._start_offset()
        edited = self.edited_files()
        for number, path in enumerate(self.stage_files()):
            rows = self.rows(path)
            at = index + offset if number == 0 else index
            row = rows[at] if 0 <= at < len(rows) else None
            step: dict[str, Any] = {
                "file": path.name,
                "present": row is not None,
                "edited": path.name in edited,
            }
            if row is not None:
                step["row"] = row
                step["diff"] = row_diff(before or {}, row) if before is not None else None
                if step["diff"] is not None:
                    step["usage"] = fold_usage(step["diff"])
                if ERROR_KEY in row and (before is None or ERROR_KEY not in before):
                    step["error"] = row[ERROR_KEY]
                before = row
            step["calls"] = self.prompts(path.name, index)
            steps.append(step)
        if not any(step["present"] for step in steps):
            raise InputError(f"{self.data}: no row {index} in any stage file")
        return {"index": index, "start_offset": offset, "steps": steps}

    # -- prompt logs ---------------------------------------------------------------------------

    def _prompt_log(self, stage_path: Path) -> Path:
        return prompt_log_path(self.data / BOOKKEEPING_DIR, stage_path.stem)

    def prompts(self, file: str, index: int) -> list[dict[str, Any]]:
        """The model calls a stage made for row ``index`` in the newest run that called the
        model for it: messages, reply, tokens, latency, cache hit, retries (from
        ``DIR/.masksql_pipe/prompts/<stage>.jsonl``). Older runs' calls are left out: their row
        numbers may name other rows (another ``--start``)."""
        log = self._prompt_log(self.stage_file(file))
        if not log.is_file():
            return []
        return newest_run_calls(self._cached(log, calls_by_row).get(index, []))

    # -- run logs ------------------------------------------------------------------------------

    def runs(self) -> list[dict[str, Any]]:
        """The run records, oldest first (unreadable ones skipped)."""
        folder = self.data / BOOKKEEPING_DIR / "runs"
        if not folder.is_dir():
            return []
        records = []
        for path in folder.glob("*.json"):
            try:
                record = self._cached(path, lambda p: orjson.loads(p.read_bytes()))
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(record, dict) and "id" in record:
                records.append(record)
        return sorted(records, key=lambda r: (str(r.get("created", "")), r["id"]))

    def run(self, ref: str) -> dict[str, Any]:
        """A run by id or unique id prefix."""
        matches = [run for run in self.runs() if str(run["id"]).startswith(ref)]
        if len(matches) != 1:
            raise InputError(f"no single run {ref!r} in {self.data / BOOKKEEPING_DIR / 'runs'}")
        return matches[0]

    def changed_rows(self, run_a: str, run_b: str) -> dict[int, dict[str, Any]]:
        """Row index -> {a, b} outcomes, for the cases whose outcome differs between two runs.

        Cases are matched by id; the index is the case's row in run B (else run A).
        """
        cases_a = {str(c.get("id")): c for c in self.run(run_a).get("cases") or []}
        cases_b = {str(c.get("id")): c for c in self.run(run_b).get("cases") or []}
        result = {}
        for case_id in [*cases_b, *(k for k in cases_a if k not in cases_b)]:
            a, b = cases_a.get(case_id), cases_b.get(case_id)
            if outcome(a) != outcome(b):
                index = (b or a or {}).get("index")
                if isinstance(index, int):
                    result[index] = {"id": case_id, "a": outcome(a), "b": outcome(b)}
        return result

    def last_outcomes(self) -> dict[int, str]:
        """Row index -> outcome (passed, failed, error, unjudged) in the newest run log."""
        runs = self.runs()
        cases = (runs[-1].get("cases") or []) if runs else []
        return {
            case["index"]: outcome(case)
            for case in cases
            if isinstance(case, dict) and isinstance(case.get("index"), int)
        }

    def edited_files(self) -> set[str]:
        """Stage files changed by hand since the engine wrote them (their digest is not the
        one in their stage record); later stages rerun from them."""
        book = self.data / BOOKKEEPING_DIR
        edited = set()
        for path in self.stage_files():
            record = read_json_quietly(book / "stages" / f"{path.stem}.json")
            output = record.get("output") if isinstance(record, dict) else None
            known = FileState.from_dict(output) if isinstance(output, dict) else None
            if known is not None and current_digest(path, known) != known.digest:
                edited.add(path.name)
        return edited

    def _start_offset(self) -> int:
        """The last run's ``--start``: row i of the second file is row i+start of the input."""
        runs = self.runs()
        if not runs:
            return 0
        argv = [str(arg) for arg in runs[-1].get("argv") or []]
        for position, arg in enumerate(argv):
            value = None
            if arg == "--start" and position + 1 < len(argv):
                value = argv[position + 1]
            elif arg.startswith("--start="):
                value = arg.partition("=")[2]
            if value is not None and value.isdigit():
                return int(value)
        return 0


def outcome(case: dict[str, Any] | None) -> str:
    """One word for a case's outcome in a run: passed, failed, error, unjudged or missing."""
    if case is None:
        return "missing"
    if case.get("status") == "error" or case.get("error"):
        return "error"
    passed = case.get("passed")
    return "unjudged" if passed is None else ("passed" if passed else "failed")


def row_label(row: dict[str, Any]) -> str:
    """A short text naming a row in the list: ``id · question`` where the row has them."""
    parts = []
    for keys in (ID_KEYS, TEXT_KEYS):
        for key in keys:
            value = row.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                parts.append(" ".join(str(value).split()))
                break
    text = " · ".join(parts)
    return text if len(text) <= 90 else text[:89] + "…"


def newest_run_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls of the last run among ``calls`` (log order; lines without a run id, from
    before runs were recorded in the log, count as one run)."""
    if not calls:
        return []
    last = calls[-1].get("run")
    return [call for call in calls if call.get("run") == last]


def calls_by_row(path: Path) -> dict[int, list[dict[str, Any]]]:
    """A prompt log's calls grouped by row index, in log order (every run's, oldest first)."""
    calls: dict[int, list[dict[str, Any]]] = {}
    for call in read_prompt_log(path):
        row = call.get("row")
        if isinstance(row, int) and not isinstance(row, bool):
            calls.setdefault(row, []).append(call)
    return calls


USAGE_KEYS = ("total_toks", "total_latency")
"""Running totals every model-calling stage bumps: shown as one usage line, not two changes."""


def fold_usage(diff: dict[str, Any]) -> dict[str, Any] | None:
    """Take the running totals out of a row diff: {key: [before, after]} (None: untouched)."""
    usage: dict[str, Any] = {}
    for key in USAGE_KEYS:
        if key in diff["added"]:
            usage[key] = [None, diff["added"].pop(key)]
        elif key in diff["changed"]:
            change = diff["changed"].pop(key)
            usage[key] = [change["before"], change["after"]]
    return usage or None


def read_json_quietly(path: Path) -> Any:
    """A JSON file's value, None when it is missing or unreadable (read-only viewer)."""
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
