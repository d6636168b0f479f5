"""A damaged value index is never trusted: garbage, a truncated file or an emptied cells table is
named in one warning and rebuilt, and the audit finds the same values as with a sound index;
the temp files of a build whose process died are swept (unmasked pipeline, real CLI)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from stages.privacy.stage import INDEX_FOLDER
from tests.conftest import cli, load
from tests.masksql.test_pipeline import copy_data

RUN = ("--pipeline", "unmasked")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = copy_data(tmp_path_factory.mktemp("index") / "data")
    assert cli("--data", str(folder), *RUN).returncode == 0
    return folder


@pytest.fixture
def run_copy(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "data"))


def indexes(folder: Path) -> list[Path]:
    return sorted((folder / ".masksql_pipe" / INDEX_FOLDER).glob("*.sqlite"))


def value_leaks(folder: Path) -> int:
    """Value leaks the audit recorded on the rows (read from its file)."""
    (audit,) = folder.glob("*_AuditLeaks.json")
    return sum(leak["kind"] == "value" for row in load(audit) for leak in row["leaks"])


def garbage(path: Path) -> None:
    path.write_bytes(b"not an index " * 100)


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def emptied(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("DELETE FROM cells")


@pytest.mark.parametrize("damage", [garbage, truncated, emptied])
def test_a_damaged_index_is_named_once_and_rebuilt(
    run_copy: Path, damage: Callable[[Path], None]
) -> None:
    before = value_leaks(run_copy)
    assert before > 0
    paths = indexes(run_copy)
    assert paths
    for path in paths:
        damage(path)
    proc = cli("--data", str(run_copy), *RUN, "--from", "18")
    assert proc.returncode == 0, proc.stderr
    for path in paths:
        named = [x for x in proc.stderr.splitlines() if x.startswith("warning:") and str(path) in x]
        assert len(named) == 1 and named[0].endswith("rebuilt"), proc.stderr
        with sqlite3.connect(path) as con:
            assert con.execute("SELECT count(*) FROM cells").fetchone()[0] > 0
    (audit,) = run_copy.glob("*_AuditLeaks.json")
    assert not any("pipe_error" in row for row in load(audit))
    assert value_leaks(run_copy) == before


def test_temp_files_of_a_dead_build_are_swept_a_live_ones_kept(run_copy: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        index = indexes(run_copy)[0]
        left = [index.with_name(f"{index.name}.{dead.pid}.7.tmp")]
        left.append(left[0].with_name(left[0].name + "-journal"))
        kept = index.with_name(f"{index.name}.{live.pid}.7.tmp")
        for path in [*left, kept]:
            path.write_bytes(b"partial build")
        proc = cli("--data", str(run_copy), *RUN, "--from", "18")
        assert proc.returncode == 0, proc.stderr
        assert not any(p.exists() for p in left)
        assert kept.exists()
    finally:
        live.kill()
        live.wait()
