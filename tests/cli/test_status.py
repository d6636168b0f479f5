"""`status` on a dataset folder that has never run: a plain account of what the first run will
make (a BIRD folder's 1_input.json comes from dev.json), exit 0, and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]


def bird_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "bird"
    shutil.copytree(
        ROOT / "data" / "bird", folder, ignore=shutil.ignore_patterns("1_input.json", ".*")
    )
    return folder


def test_status_of_a_bird_folder_that_never_ran(tmp_path: Path):
    folder = bird_copy(tmp_path)
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    proc = cli("status", "--data", str(folder))
    assert proc.returncode == 0, proc.stderr
    rows = len(json.loads((folder / "dev.json").read_text()))
    text = " ".join(proc.stdout.split())
    assert f"nothing has run yet in {folder}" in text
    assert f"make 1_input.json from dev.json ({rows} rows)" in text
    assert "not run yet" in text  # every stage file listed as still to make
    # status writes nothing: no 1_input.json, no bookkeeping
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


def test_status_after_a_run_reads_the_made_input(tmp_path: Path):
    folder = bird_copy(tmp_path)
    assert cli("--data", str(folder), "--limit", "1").returncode == 0
    proc = cli("status", "--data", str(folder))
    assert proc.returncode == 0, proc.stderr
    assert "nothing has run yet" not in proc.stdout
    assert "up to date" in proc.stdout


def test_status_of_a_folder_with_no_questions_is_bad_input(tmp_path: Path):
    folder = bird_copy(tmp_path)
    (folder / "dev.json").unlink()
    proc = cli("status", "--data", str(folder))
    assert proc.returncode == 2
    assert "1_input.json: file not found" in proc.stderr
