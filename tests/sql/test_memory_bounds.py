"""A result's bytes are counted while rows are fetched: a hostile query ends as a "larger than"
error inside a bounded address space, and concurrent queries share one byte budget (real
SQLite files, a real subprocess with RLIMIT_AS)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from stages.sql.execution import ByteBudget, run_sql

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 300) "
    "SELECT replace(hex(zeroblob(4500000)),'0','a') FROM c"
)
_CHILD = """
import resource, sys
limit = 1_500_000_000
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from stages.sql.execution import run_sql
res = run_sql(sys.argv[1], sys.argv[2], timeout=120)
print(res.error)
"""


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    return path


def test_hostile_result_is_refused_within_a_bounded_address_space(tmp_path: Path) -> None:
    db = _db(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(db), HOSTILE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout.strip()
    assert "larger than 64 MB" in said and "MemoryError" not in said, said


def test_concurrent_queries_never_reserve_more_than_the_budget(tmp_path: Path) -> None:
    db = _db(tmp_path)
    budget = ByteBudget(2 * 20_000_000)
    results: list[str | None] = []
    sql = HOSTILE.replace("LIMIT 300", "LIMIT 8").replace("4500000", "1500000")

    def one() -> None:
        results.append(run_sql(db, sql, timeout=120, max_bytes=20_000_000, budget=budget).error)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6 and all(r and "larger than 20 MB" in r for r in results), results
    assert 0 < budget.peak <= budget.total and budget.in_use == 0
