"""Shared fixtures: dataset folders on disk and running the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as a stage file (plain orjson, as a user's own tool would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(rows))
    return path


def load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
):
    """Run ``python main.py ARGS`` as a real subprocess; returns the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A dataset folder with ten small rows."""
    folder = tmp_path / "data"
    write_rows(folder / "1_input.json", [{"id": f"r{i}", "x": i} for i in range(10)])
    return folder
