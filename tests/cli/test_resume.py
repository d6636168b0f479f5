"""Resuming from any numbered file, through the real CLI on a copy of the sample data with the
offline oracle: a folder whose lowest file is N_X.json runs the stages after N; --input names
the start when earlier files exist; a file no stage writes stops with the choices (exit 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import cli, load, write_rows
from tests.masksql.test_pipeline import LAST, STAGES, copy_data

LINK = f"{STAGES.index('LinkSchema') + 2}_LinkSchema.json"
REPAIR = f"{STAGES.index('RepairSymbolicSql') + 2}_RepairSymbolicSql.json"
WIDE = {"COLUMNS": "250"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder after one full oracle run on three rows (kept read-only: tests copy it)."""
    folder = copy_data(tmp_path_factory.mktemp("resume") / "data")
    proc = cli("--data", str(folder), "--limit", "3", cwd=folder.parent, env=WIDE)
    assert proc.returncode == 0, proc.stderr
    return folder


def clone(finished: Path, tmp_path: Path) -> Path:
    """A private copy of the finished folder, bookkeeping included."""
    dest = tmp_path / "data"
    shutil.copytree(finished, dest)
    return dest


def number(path: Path) -> int:
    return int(path.name.split("_", 1)[0])


def test_folder_starting_at_file_8_runs_the_later_stages(finished: Path, tmp_path: Path) -> None:
    folder = clone(finished, tmp_path)
    for path in folder.glob("*_*.json"):
        if number(path) < number(folder / LINK):
            path.unlink()
    rows = load(folder / LINK)
    write_rows(folder / LINK, rows[:2])  # a hand edit: the later stages must see 2 rows

    status = cli("status", "--data", str(folder), cwd=tmp_path, env=WIDE)
    assert status.returncode == 0, status.stderr
    assert "resumes from this file" in status.stdout
    assert "edited by hand" not in status.stdout
    line = next(x for x in status.stdout.splitlines() if x.startswith(f"│ {LINK.split('_')[0]}_"))
    assert "input" in line

    proc = cli("--data", str(folder), cwd=tmp_path, env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert f"pipeline masksql on {folder / LINK}" in " ".join(proc.stderr.split())
    assert len(load(folder / LAST)) == 2
    assert not (folder / "1_input.json").exists()
    assert not list(folder.glob("2_*.json"))
    assert [r["question"] for r in load(folder / LAST)] == [r["question"] for r in rows[:2]]


def test_file_no_stage_writes_stops_with_the_choices(finished: Path, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(finished / "tables.json", folder)
    shutil.copy(finished / LINK, folder / "8_Renamed.json")
    for command in (("run",), ("status",)):
        proc = cli(*command, "--data", str(folder), cwd=tmp_path, env=WIDE)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 or command == ("status",), proc.stderr
        assert "8_Renamed.json" in lines[-1] and LINK in lines[-1]
        assert "1_input.json" in lines[-1]
    assert sorted(p.name for p in folder.glob("*.json")) == ["8_Renamed.json", "tables.json"]


def test_explicit_input_skips_earlier_files(finished: Path, tmp_path: Path) -> None:
    folder = clone(finished, tmp_path)
    limited = (folder / "2_LimitJson.json").read_bytes()
    rows = load(folder / "1_input.json")
    write_rows(folder / "1_input.json", rows[1:])  # would make every stage rerun from 1
    write_rows(folder / REPAIR, load(folder / REPAIR)[:1])

    status = cli("status", "--data", str(folder), "--input", REPAIR, cwd=tmp_path, env=WIDE)
    assert status.returncode == 0, status.stderr
    assert "not read by this run" in status.stdout

    proc = cli("--data", str(folder), "--input", REPAIR, cwd=tmp_path, env=WIDE)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "2_LimitJson.json").read_bytes() == limited
    assert len(load(folder / LAST)) == 1

    again = cli("rerun", "latest", "--data", str(folder), cwd=tmp_path, env=WIDE)
    assert again.returncode == 0, again.stderr
    assert (folder / "2_LimitJson.json").read_bytes() == limited  # rerun replays --input

    bad = cli("--data", str(folder), "--input", "../elsewhere/3_x.json", cwd=tmp_path)
    assert bad.returncode == 2 and "not a file of the data folder" in bad.stderr
