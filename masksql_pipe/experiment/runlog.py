"""Run logs: one JSON record per run, enough to repeat, summarize and compare it."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from masksql_pipe.engine.files import BOOKKEEPING_DIR, read_json, read_rows, write_json
from masksql_pipe.engine.pipeline import Pipeline as Engine
from masksql_pipe.engine.scrub import scrub
from masksql_pipe.engine.stage import ERROR_KEY
from masksql_pipe.errors import InputError
from masksql_pipe.experiment.config import loggable, redact


def runs_dir(data_dir: Path) -> Path:
    """Folder of a dataset's run logs."""
    return data_dir / BOOKKEEPING_DIR / "runs"


RUNNING = "running.json"
"""The run in progress in a data folder (pipeline, settings, command line), until it is logged."""


def running_path(data_dir: Path) -> Path:
    """Where the run in progress is noted."""
    return data_dir / BOOKKEEPING_DIR / RUNNING


def run_in_progress(data_dir: Path) -> dict[str, Any] | None:
    """The noted run in progress (or one killed before it could log), if any."""
    path = running_path(data_dir)
    if not path.is_file():
        return None
    try:
        record = read_json(path)
    except InputError:
        return None
    return record if isinstance(record, dict) and "pipeline" in record else None


def git_commit() -> str | None:
    """Commit of the code that ran, when it runs from a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


class RunLogger:
    """Collects what one run did and writes it to ``DIR/.masksql_pipe/runs/<id>.json``."""

    def __init__(self, data_dir: Path, pipeline: str, experiment: Any, argv: list[str]) -> None:
        self.data_dir = data_dir
        self.pipeline = pipeline
        self.experiment = experiment
        self.argv = redact(list(argv))
        now = datetime.now(UTC)
        self.created = now.isoformat(timespec="microseconds")
        self.id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"

    def start(self) -> None:
        """Note the run in progress (`RUNNING`): `status` meanwhile judges by its pipeline and
        settings, not by the default pipeline's, before this run has a log."""
        record = {
            "id": self.id,
            "created": self.created,
            "pipeline": self.pipeline,
            "argv": self.argv,
            "config": loggable(self.experiment.config()),
            "in_progress": True,
        }
        write_json(running_path(self.data_dir), scrub(record))

    def finish(self) -> None:
        """The run is over (logged or not): it is no longer in progress."""
        running_path(self.data_dir).unlink(missing_ok=True)

    def write(self, engine: Engine, last: Path | None, interrupted: str | None = None) -> dict:
        """Build the record from the engine's reports and the last file's rows; save it."""
        tracebacks = {
            report.name: {
                row: text for row, text in engine.tracebacks.get(Path(report.file).stem, [])
            }
            for report in engine.reports
        }
        cases = []
        if last is not None:
            for index, row in enumerate(read_rows(last)):
                cases.append(self._case(index, row, tracebacks))
        complete = [c for c in cases if c["status"] == "complete"]
        record = {
            "id": self.id,
            "created": self.created,
            "finished": datetime.now(UTC).isoformat(timespec="microseconds"),
            "git_commit": git_commit(),
            "pipeline": self.pipeline,
            "data_dir": str(self.data_dir.resolve()),
            "argv": self.argv,
            "config": loggable(self.experiment.config()),
            "stages": [report.to_dict() for report in engine.reports],
            "cases": cases,
            "totals": {
                "cases": len(cases),
                "complete": len(complete),
                "error": len(cases) - len(complete),
                "passed": sum(1 for c in complete if c["passed"] is True),
                "failed": sum(1 for c in complete if c["passed"] is False),
                "total_toks": sum(c["total_toks"] for c in cases),
                "total_latency": round(sum(c["total_latency"] for c in cases), 4),
            },
        }
        if interrupted:
            record["interrupted"] = interrupted
        record = scrub(record)  # keys echoed in error messages or tracebacks, key-shaped text
        write_json(runs_dir(self.data_dir) / f"{self.id}.json", record)
        self.finish()
        return record

    def _case(self, index: int, row: dict[str, Any], tracebacks: dict) -> dict[str, Any]:
        failure = row.get(ERROR_KEY)
        error = None
        if failure:
            error = dict(failure)
            error["traceback"] = tracebacks.get(failure.get("stage"), {}).get(index, "")
        return {
            "index": index,
            "id": self.experiment.case_id(row, index),
            "status": "error" if failure else "complete",
            "passed": None if failure else self.experiment.case_passed(row),
            "error": error,
            "total_toks": int(row.get("total_toks") or 0),
            "total_latency": float(row.get("total_latency") or 0.0),
            "result": None if failure else self.experiment.case_result(row),
        }


_RUN_FIELDS = {
    "id": str,
    "created": str,
    "pipeline": str,
    "argv": list,
    "config": dict,
    "stages": list,
    "cases": list,
    "totals": dict,
}
_warned: set[str] = set()


def run_log_problem(record: Any) -> str | None:
    """What makes a run log unusable (one phrase), or None."""
    if record is None:
        return "unreadable (not JSON, perhaps cut short)"
    if not isinstance(record, dict):
        return "not a JSON object"
    for name, kind in _RUN_FIELDS.items():
        required = name in ("id", "created")
        if (required or name in record) and not isinstance(record.get(name), kind):
            return f"field {name!r} is missing or not a {kind.__name__}"
    return None


def _warn(message: str) -> None:
    """One line on stderr, once per process."""
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr, flush=True)


def list_runs(data_dir: Path) -> list[dict[str, Any]]:
    """All usable run records of a dataset, oldest first; a damaged one is named and skipped."""
    folder = runs_dir(data_dir)
    if not folder.is_dir():
        return []
    runs = []
    for path in sorted(folder.glob("*.json")):
        record = read_json(path)
        problem = run_log_problem(record)
        if problem:
            _warn(f"{path}: {problem}; ignored")
            continue
        runs.append(record)
    # ids name the second only; `created` orders runs started within the same second
    return sorted(runs, key=lambda r: (r["created"], r["id"]))


def _newer_damaged(data_dir: Path, latest: dict[str, Any]) -> list[Path]:
    """Run logs named after ``latest`` (ids start with the time) that could not be used."""
    return [
        path
        for path in sorted(runs_dir(data_dir).glob("*.json"))
        if path.stem > latest["id"] and run_log_problem(read_json(path))
    ]


def load_run(data_dir: Path, ref: str) -> dict[str, Any]:
    """A run by id, unique id prefix, or ``latest``; a clear error otherwise."""
    runs = list_runs(data_dir)
    if not runs:
        raise InputError(f"{runs_dir(data_dir)}: no runs recorded yet")
    if ref == "latest":
        for path in _newer_damaged(data_dir, runs[-1]):
            _warn(
                f"{path} is newer than run {runs[-1]['id']} but unreadable; "
                f"'latest' means {runs[-1]['id']}"
            )
        return runs[-1]
    matches = [run for run in runs if run["id"].startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputError(f"no run {ref!r} in {runs_dir(data_dir)} (see `history`)")
    raise InputError(f"run id prefix {ref!r} is ambiguous: {', '.join(m['id'] for m in matches)}")


def recorded_option(argv: list[str], flag: str, kind: Callable[[str], Any]) -> Any:
    """The value of ``flag`` in a recorded command line (``--limit 3`` or ``--limit=3``)."""
    value = None
    for index, item in enumerate(argv):
        if item == flag and index + 1 < len(argv):
            value = argv[index + 1]
        elif item.startswith(flag + "="):
            value = item.partition("=")[2]
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InputError(f"recorded option {flag} {value!r} is not valid") from None
