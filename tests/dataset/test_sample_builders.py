"""The shipped sample files are exactly what the two builders write (run on a copy)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DATA = ROOT / "data"
BUILT = {
    "build_sample.py": ["tables.json", "1_input.json", "databases"],
    "build_bird_sample.py": ["bird/dev.json", "bird/dev_tables.json", "bird/dev_databases"],
}


def _files(base: Path, names: list[str]) -> list[str]:
    found: list[str] = []
    for name in names:
        path = base / name
        paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found += [str(p.relative_to(base)) for p in paths]
    return found


@pytest.mark.parametrize("script", sorted(BUILT))
def test_a_builder_rewrites_the_shipped_files_byte_for_byte(tmp_path: Path, script: str) -> None:
    for source in DATA.glob("*.py"):
        shutil.copy(source, tmp_path)
    done = subprocess.run(
        [sys.executable, str(tmp_path / script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "empty results: []" in done.stdout
    shipped = _files(DATA, BUILT[script])
    assert shipped and _files(tmp_path, BUILT[script]) == shipped
    for name in shipped:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name
