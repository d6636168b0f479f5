"""`main.py sweep` (an application command from an entry point) runs configurations through
the real CLI and tabulates EA and leak rate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sweep(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["COLUMNS"] = "250"
    return subprocess.run(
        [sys.executable, "main.py", "sweep", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sweep_tabulates_each_configuration(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    rows = json.loads((ROOT / "data" / "1_input.json").read_text())[:5]
    (data / "1_input.json").write_text(json.dumps(rows))
    shutil.copy(ROOT / "data" / "tables.json", data)
    shutil.copytree(ROOT / "data" / "databases", data / "databases")
    proc = sweep("--data", str(data), "masksql", "unmasked")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Privacy-utility sweep" in proc.stdout
    table = json.loads((data / ".masksql_pipe" / "sweep.json").read_text())
    assert [r["configuration"] for r in table] == ["masksql", "unmasked"]
    masked, unmasked = table
    assert masked["ea"]["count"] == 5 and unmasked["ea"]["count"] == 5
    assert masked["leak"]["count"] == 0
    assert unmasked["leak"]["count"] == 5  # the real names reach the remote model
    low = 100 * 0.025 ** (1 / 5)  # 5/5: the exact lower bound, not a collapsed bootstrap
    assert f"100.0% [{low:.1f}%, 100.0%] (5/5)" in proc.stdout
    kept = json.loads((data / ".masksql_pipe" / "sweep" / "2.json").read_text())
    assert kept["privacy"]["masked"] is False

    proc = sweep("--data", str(data), "masksql schema=partial")
    assert proc.returncode == 2
    assert "configuration 'masksql schema=partial'" in proc.stdout

    proc = sweep("--data", str(tmp_path / "absent"), "masksql")
    assert proc.returncode == 2
    assert f"{tmp_path / 'absent'}: data folder not found" in proc.stderr
