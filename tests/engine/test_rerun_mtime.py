"""A touched or copied folder is re-hashed once: after a content check confirms a file is
unchanged its record takes the new mtime, so the next no-op rerun trusts size+mtime again.

The proof is observable: after the first rerun a file's content is replaced by same-size garbage
and its mtime put back with os.utime. The second rerun still says "up to date" (it did not read
the file). That blind spot is the intended trade-off of size+mtime records, as in git and make.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import cli, load, write_rows
from tests.masksql.test_pipeline import copy_data

PIPE = ["--pipeline", "tests.helpers_stages:CountingPipeline"]


def garble_keeping_stat(path: Path) -> None:
    """Same-size garbage in `path`, its mtime put back: only a read of the content could tell."""
    stat = path.stat()
    path.write_bytes(b"#" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def skipped(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.endswith("up to date, skipped")]


def test_a_touched_input_is_rehashed_once_then_trusted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = write_rows(data / "1_input.json", [{"x": i} for i in range(20)])
    assert cli("--data", str(data), *PIPE).returncode == 0
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touch
    rerun = cli("--data", str(data), *PIPE)
    assert rerun.returncode == 0 and len(skipped(rerun.stderr)) == 3, rerun.stderr
    (record,) = [
        load(p) for p in (data / ".masksql_pipe" / "stages").glob("2_*.json")
    ]  # the record of the stage that reads the touched file
    assert record["input"]["mtime_ns"] == first.stat().st_mtime_ns
    garble_keeping_stat(first)
    again = cli("--data", str(data), *PIPE)
    assert again.returncode == 0 and len(skipped(again.stderr)) == 3, again.stderr


def test_a_copied_run_folder_is_rehashed_once_externals_included(tmp_path: Path) -> None:
    source = copy_data(tmp_path / "source")
    assert cli("--data", str(source), "--pipeline", "unmasked").returncode == 0
    copy = Path(shutil.copytree(source, tmp_path / "copy", copy_function=shutil.copy))
    rerun = cli("--data", str(copy), "--pipeline", "unmasked")
    assert rerun.returncode == 0, rerun.stderr
    stages = len(list(copy.glob("*_*.json"))) - 1
    assert len(skipped(rerun.stderr)) == stages, rerun.stderr
    externals = 0
    for path in (copy / ".masksql_pipe" / "stages").glob("*.json"):
        for name, state in (load(path).get("external") or {}).items():
            assert state["mtime_ns"] == (copy / name).stat().st_mtime_ns, (path.name, name)
            externals += 1
    assert externals > 0
    (middle,) = copy.glob("5_*.json")
    garble_keeping_stat(middle)
    again = cli("--data", str(copy), "--pipeline", "unmasked")
    assert again.returncode == 0 and len(skipped(again.stderr)) == stages, again.stderr
