"""Offline-oracle figures over dataset folders: one line per Spider- or BIRD-layout folder.

    python benchmarks/oracle_sets.py data data/bird ../shared/devsets/machinespider-train \
        [--json figures.json]

Runs `python main.py` (the real CLI) with both model roles on the offline oracle, on a temporary
copy of each folder (the folder itself is never written), and reads the figures from the run's
last numbered stage file: rows, execution accuracy, rows the privacy guard blocked (by the
leading text of the guard's message), local rewrites by kind, rows with a leak in a remote
prompt (the audit), rows with errors by stage and error class. With the oracle every miss is the
pipeline's own: masking, guard or rewriting, never the model. A folder that fails to run is
named on one line and the exit code is 1 (the other folders are still measured).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from masksql_pipe.engine.files import numbered_files, read_rows  # noqa: E402
from masksql_pipe.engine.stage import ERROR_KEY  # noqa: E402
from masksql_pipe.errors import PipeError  # noqa: E402
from stages.pipelines.masksql import summarize  # noqa: E402

GUARD_ERROR = "GuardBlocked"
REWRITES = {
    "aligned": "value-column alignment (symbolic_sql_unaligned differs from symbolic_sql)",
    "values_dropped": "detected values dropped as not in the question (values_dropped)",
    "schema_fallback": "ranking fell back to the whole schema (schema_items_fallback)",
    "symbolic_repair": "symbolic SQL repaired by the model (symbolic_sql_draft)",
    "sql_repair": "concrete SQL repaired after it failed to run (pred_sql_before_repair)",
}
"""Rewrite kinds counted per row, from the fields the stages record when they change a query."""


class FolderFailed(Exception):
    """The CLI did not complete a run on a folder."""


def _is_output(name: str) -> bool:
    """A file an earlier run wrote (stage files from 2 on, results): not copied, so the copy
    runs from its input."""
    match = re.match(r"(\d+)_.*\.json$", name)
    return name == "results.json" or bool(match and int(match.group(1)) >= 2)


def copy_folder(source: Path, dest: Path) -> Path:
    """`source` copied to `dest` without bookkeeping or earlier outputs."""
    shutil.copytree(
        source,
        dest,
        ignore=lambda _dir, names: [n for n in names if n == ".masksql_pipe" or _is_output(n)],
    )
    return dest


def run_oracle(folder: Path) -> list[dict[str, Any]]:
    """The last stage file's rows of an oracle run of the CLI on `folder` (a copy)."""
    command = [sys.executable, str(ROOT / "main.py"), "--data", str(folder)]
    command += ["--max-errors", "1000000000", "models.slm=oracle", "models.llm=oracle"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        command, cwd=folder.parent, env=env, capture_output=True, text=True, check=False
    )
    files = numbered_files(folder)
    if proc.returncode != 0 or not (folder / "results.json").is_file() or not files:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise FolderFailed(f"exit {proc.returncode}: {last}")
    return read_rows(files[-1][1])


def guard_cause(message: str) -> str:
    """The leading cause text of a guard message: up to its first count or clause break."""
    return re.split(r"[\d;]", message, maxsplit=1)[0].strip().rstrip(":")


def rewrites(row: dict[str, Any]) -> list[str]:
    """The rewrite kinds recorded on one row."""
    found = []
    unaligned = row.get("symbolic_sql_unaligned")
    if unaligned is not None and unaligned != row.get("symbolic_sql"):
        found.append("aligned")
    if row.get("values_dropped"):
        found.append("values_dropped")
    if row.get("schema_items_fallback"):
        found.append("schema_fallback")
    if row.get("symbolic_sql_draft") is not None:
        found.append("symbolic_repair")
    if row.get("pred_sql_before_repair") is not None:
        found.append("sql_repair")
    return found


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One folder's figures from its last stage file (EA and leaks as the run computes them)."""
    totals = summarize(rows)
    blocked: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    rewritten: Counter[str] = Counter()
    for row in rows:
        error = row.get(ERROR_KEY)
        if isinstance(error, dict):
            errors[f"{error.get('stage', '?')}/{error.get('type', '?')}"] += 1
            if error.get("type") == GUARD_ERROR:
                blocked[guard_cause(str(error.get("message", "")))] += 1
        rewritten.update(rewrites(row))
    return {
        "rows": totals["rows"],
        "correct": totals["correct"],
        "exec_acc": totals["exec_acc"],
        "guard_blocked": dict(blocked.most_common()),
        "rewrites": {kind: rewritten[kind] for kind in REWRITES},
        "leaking_rows": totals["privacy"]["leak_audit"]["rows_with_leaks"],
        "errors": dict(errors.most_common()),
    }


def _counts(counts: dict[str, int], quote: bool = False) -> str:
    """`a 3, b 1` (keys quoted when they are sentences), or `-` when none."""
    shown = [(f'"{k}"' if quote else k, v) for k, v in counts.items() if v]
    return ", ".join(f"{k} {v}" for k, v in shown) or "-"


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Printable lines: a header and one line per folder, columns aligned."""
    grid = [["folder", "rows", "EA", "leaking", "guard-blocked", "rewrites", "errors"]]
    for name, f in results.items():
        ea = f"{100 * f['exec_acc']:.1f}% ({f['correct']}/{f['rows']})" if f["rows"] else "n/a"
        blocked = _counts(f["guard_blocked"], quote=True)
        rewritten, errors = _counts(f["rewrites"]), _counts(f["errors"])
        grid.append([name, str(f["rows"]), ea, str(f["leaking_rows"]), blocked, rewritten, errors])
    widths = [max(len(line[i]) for line in grid) for i in range(len(grid[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in grid
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="Spider- or BIRD-layout folders")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    failed = []
    with tempfile.TemporaryDirectory(prefix="masksql-oracle-") as tmp:
        for i, folder in enumerate(args.folders):
            name = str(folder)
            if not folder.is_dir():
                failed.append(f"{name}: not a folder")
                continue
            try:
                copy = copy_folder(folder, Path(tmp) / f"{i}_{folder.resolve().name}")
                results[name] = figures(run_oracle(copy))
            except (FolderFailed, PipeError, OSError, ValueError) as exc:
                failed.append(f"{name}: failed to run ({exc})")
    for line in table(results):
        print(line)
    for kind, meaning in REWRITES.items():
        print(f"  rewrite {kind}: {meaning}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for line in failed:
        print(f"oracle_sets: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
