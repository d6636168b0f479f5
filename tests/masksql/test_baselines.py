"""Baseline pipelines run offline: slm-only keeps every call on the small model; gold-links
answers linking from gold data whatever the small model is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    rows = json.loads((ROOT / "data" / "1_input.json").read_text())[:6]
    (data / "1_input.json").write_text(json.dumps(rows))
    shutil.copy(ROOT / "data" / "tables.json", data)
    shutil.copytree(ROOT / "data" / "databases", data / "databases")
    return data


def calls(folder: Path) -> dict[str, set[str]]:
    """Model names answering each logged stage."""
    out: dict[str, set[str]] = {}
    for log in (folder / ".masksql_pipe" / "prompts").glob("*.jsonl"):
        stage = log.stem.split("_", 1)[1]
        out[stage] = {json.loads(line)["model"] for line in log.read_text().splitlines()}
    return out


def test_listed(folder: Path):
    proc = cli("pipelines")
    assert "slm-only" in proc.stdout and "gold-links" in proc.stdout


def test_slm_only_sends_nothing_to_the_llm(folder: Path):
    # the llm is echo: any SQL it wrote would fail; the oracle slm writes everything
    proc = cli("--data", str(folder), "--pipeline", "slm-only", "models.llm=echo")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((folder / "results.json").read_text())
    assert results["correct"] == 6
    used = calls(folder)
    assert "GenerateSymbolicSql" in used
    assert all(models <= {"oracle"} for models in used.values()), used  # empty: no call
    assert not list(folder.glob("*_AddInferenceAttack.json"))
    assert not list(folder.glob("*_AuditLeaks.json"))


def test_gold_links_answers_linking_from_gold_data(folder: Path, tmp_path: Path):
    # control: the masksql pipeline with an echo slm loses rows in linking
    control = tmp_path / "control"
    shutil.copytree(folder, control)
    args = ["models.slm=echo", "models.llm=oracle", "--max-errors", "99"]
    proc = cli("--data", str(control), *args)
    assert proc.returncode == 0, proc.stderr
    plain = json.loads((control / "results.json").read_text())
    assert plain["correct"] < 6
    proc = cli("--data", str(folder), "--pipeline", "gold-links", "models.slm=echo")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((folder / "results.json").read_text())
    assert results["correct"] == 6
    used = calls(folder)
    for stage in ("RankSchemaItems", "DetectValues", "LinkSchema"):
        assert used[stage] == {"oracle"}, (stage, used[stage])
