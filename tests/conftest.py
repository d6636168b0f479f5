"""Shared fixtures: dataset folders on disk and running the real CLI (see `cli_runner`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.cli_runner import SUBPROCESS_ENV, run_in_process, run_in_subprocess

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
) -> subprocess.CompletedProcess[str]:
    """Run ``python main.py ARGS`` with ``cwd`` and ``env``: stdout, stderr and exit status.

    In this process, isolated as a subprocess would be (see `cli_runner`); tests whose point
    is a separate process call `cli_process`. MASKSQL_TEST_SUBPROCESS=1 makes both real.
    """
    if os.environ.get(SUBPROCESS_ENV) == "1":
        return run_in_subprocess(args, cwd, env, timeout)
    return run_in_process(args, cwd, env)


def cli_process(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python main.py ARGS`` as a real subprocess."""
    return run_in_subprocess(args, cwd, env, timeout)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A dataset folder with ten small rows."""
    folder = tmp_path / "data"
    write_rows(folder / "1_input.json", [{"id": f"r{i}", "x": i} for i in range(10)])
    return folder
