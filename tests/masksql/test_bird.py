"""A BIRD-layout folder runs as distributed (no conversion); evidence reaches the remote model
only masked; the oracle scores every question; results carry the research figures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
LLM_LOGS = ("GenerateSymbolicSql", "RepairSymbolicSql", "AddInferenceAttack", "AddQuestionAttack")


@pytest.fixture
def bird(tmp_path: Path) -> Path:
    folder = tmp_path / "bird"
    shutil.copytree(
        ROOT / "data" / "bird", folder, ignore=shutil.ignore_patterns("1_input.json", ".*")
    )
    return folder


def llm_prompts(folder: Path) -> dict[int, list[str]]:
    """Every llm-role prompt text as logged, by row index."""
    prompts: dict[int, list[str]] = {}
    for log in (folder / ".masksql_pipe" / "prompts").glob("*.jsonl"):
        if not any(log.stem.endswith(name) for name in LLM_LOGS):
            continue
        for line in log.read_text().splitlines():
            call = json.loads(line)
            text = "\n".join(m["content"] for m in call["messages"])
            prompts.setdefault(call["row"], []).append(text)
    return prompts


def secrets(folder: Path) -> list[str]:
    """Identifiers that need quoting (spaces, parentheses, %) of the sample's databases."""
    tables = json.loads((folder / "dev_tables.json").read_text())
    names = set()
    for entry in tables:
        names.update(entry["table_names_original"])
        names.update(c for _, c in entry["column_names_original"] if c != "*")
    return sorted(n for n in names if re.search(r"[ ()%]", n))


def test_bird_folder_runs_as_distributed_with_evidence_masked(bird: Path):
    source = json.loads((bird / "dev.json").read_text())
    proc = cli("--data", str(bird))
    assert proc.returncode == 0, proc.stderr
    assert (bird / "1_input.json").is_file()  # written from dev.json by the pipeline
    results = json.loads((bird / "results.json").read_text())
    assert results["dataset"] == "bird"
    assert results["correct"] == len(source)  # the oracle answers every question
    research = results["research"]
    assert research["ea"]["original"]["count"] == len(source)
    by_difficulty = {k: v["rows"] for k, v in research["by"]["difficulty"].items()}
    expected = {}
    for row in source:
        expected[row["difficulty"]] = expected.get(row["difficulty"], 0) + 1
    assert by_difficulty == expected
    assert set(research["by"]["db_id"]) == {r["db_id"] for r in source}

    prompts = llm_prompts(bird)
    assert sorted(prompts) == list(range(len(source)))
    names = secrets(bird)
    assert "Discount (%)" in names and "transactions (1k)" in names
    for index, row in enumerate(source):
        texts = "\n".join(prompts[index])
        assert "Evidence: " in texts  # shown to the remote model ...
        assert row["evidence"] not in texts  # ... never as written
        for literal in re.findall(r"'([^']+)'", row["evidence"]):
            assert literal not in texts, (index, literal)
        for name in names:
            assert name.lower() not in texts.lower(), (index, name)
    rows = json.loads(sorted(bird.glob("*_Results.json"))[0].read_text())
    assert all(r["symbolic_evidence"] != r["evidence"] for r in rows)
    # the same symbols as the question: EUR and CZK are V1 and V2 in both
    assert rows[1]["symbolic_question"].endswith("pay in V1 against T1 who pay in V2?")
    assert rows[1]["symbolic_evidence"] == "ratio = count(C2 = V1) / count(C2 = V2)"
    # masked on the question's path: the guard's last check found nothing left to mask
    assert not any((r.get("privacy_guard") or {}).get("evidence") for r in rows)

    # the HTML report charts EA by difficulty with intervals, and the privacy figures
    proc = cli("report", "latest", "--data", str(bird))
    assert proc.returncode == 0, proc.stderr
    page = Path(proc.stdout.strip()).read_text()
    section = page.split("<h2>EA by difficulty</h2>", 1)[1].split("</section>", 1)[0]
    assert section.count('<rect class="bar"') == len(expected)
    assert section.count('<line class="ci"') == len(expected)
    for difficulty, count in expected.items():
        assert difficulty in section and f"({count}/{count})" in section
    assert "<h2>Privacy</h2>" in page and "leaks of kind name" in page
    assert "http" not in page.split("<h2>Execution accuracy", 1)[1]


def test_unmasked_baseline_shows_the_evidence_as_written(bird: Path):
    # positive control for the checks above: without masking they would fail
    proc = cli("--data", str(bird), "--pipeline", "unmasked")
    assert proc.returncode == 0, proc.stderr
    source = json.loads((bird / "dev.json").read_text())
    prompts = llm_prompts(bird)
    generate = [p for p in prompts[2] if p.startswith("Write one SQLite query")]
    assert generate and source[2]["evidence"] in generate[0]


def test_dataset_setting_and_bad_folder(bird: Path, tmp_path: Path):
    proc = cli("--data", str(bird), "dataset=wikisql")
    assert proc.returncode == 2
    assert "setting 'dataset' must be" in proc.stderr
    (bird / "dev.json").unlink()
    proc = cli("--data", str(bird))
    assert proc.returncode == 2
    assert "dev.json: file not found" in proc.stderr


def test_unmasked_baseline_has_no_ris(bird: Path):
    proc = cli("--data", str(bird), "--pipeline", "unmasked")
    assert proc.returncode == 0, proc.stderr
    research = json.loads((bird / "results.json").read_text())["research"]
    assert research["ris"] == {"mean": None, "rows": 0}  # nothing masked: nothing to score
    logs = list((bird / ".masksql_pipe" / "prompts").glob("*_AddQuestionAttack.jsonl"))
    assert all(not log.read_text().strip() for log in logs)  # and no model asked
