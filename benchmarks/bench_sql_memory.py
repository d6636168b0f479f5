"""Peak memory of a hostile SQL result: `run_sql` alone and the whole pipeline, each in a fresh
process, side by side with the same process doing nothing heavy (the baseline).

The query builds 300 rows of 9 MB each; its result is refused at the byte cap, which is counted
while rows are fetched. The pipeline run uses a copy of the data folder whose first two rows
have the query as their gold SQL (the offline oracle answers with it). Target: every peak RSS
under 500 MB.

    python benchmarks/bench_sql_memory.py [--rows 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 300) "
    "SELECT replace(hex(zeroblob(4500000)),'0','a') FROM c"
)
TARGET_MB = 500
_RUN_SQL = """
import sys
from stages.sql.execution import run_sql
print(run_sql(sys.argv[1], sys.argv[2], timeout=120).error)
"""
HARMLESS = "SELECT 1"


def peak_mb(command: list[str]) -> tuple[float, str]:
    """Peak RSS (MB) of `command` run alone in a fresh child, via a measuring wrapper."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "said = [line for line in done.stdout.splitlines() if 'larger than' in line]\n"
        "print(peak); print(said[0] if said else '')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
        check=True,
    )
    lines = done.stdout.splitlines()
    return int(lines[0]) / 1024, lines[1] if len(lines) > 1 else ""


def data_folder(target: Path, rows: int, sql: str) -> Path:
    """A copy of the sample data folder's first `rows` rows, each with `sql` as its gold SQL."""
    data = ROOT / "data"
    items = json.loads((data / "1_input.json").read_text())[:rows]
    for item in items:
        item["query"] = sql
    target.mkdir()
    (target / "1_input.json").write_text(json.dumps(items))
    shutil.copyfile(data / "tables.json", target / "tables.json")
    for db_id in {item["db_id"] for item in items}:
        shutil.copytree(data / "databases" / db_id, target / "databases" / db_id)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2, help="hostile rows in the pipeline run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = next(
            data_folder(Path(tmp) / "hostile", args.rows, HOSTILE).glob("databases/*/*.sqlite")
        )
        data_folder(Path(tmp) / "harmless", args.rows, HARMLESS)
        pipeline = [sys.executable, str(ROOT / "main.py"), "run", "--data"]
        runs = {
            "run_sql, baseline SELECT 1": [sys.executable, "-c", _RUN_SQL, str(db), HARMLESS],
            "run_sql, hostile query": [sys.executable, "-c", _RUN_SQL, str(db), HOSTILE],
            f"pipeline, {args.rows} harmless rows": [*pipeline, str(Path(tmp) / "harmless")],
            f"pipeline, {args.rows} hostile rows": [*pipeline, str(Path(tmp) / "hostile")],
        }
        worst = 0.0
        for name, command in runs.items():
            mb, said = peak_mb(command)
            worst = max(worst, mb)
            print(f"{name:<28} peak RSS {mb:8.1f} MB   {said[:90]}")
    verdict = "met" if worst < TARGET_MB else "MISSED"
    print(f"worst peak {worst:.1f} MB; target < {TARGET_MB} MB: {verdict}")


if __name__ == "__main__":
    main()
