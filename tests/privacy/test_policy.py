"""`privacy.policy`: `full` masks every value; `category` masks only the values the small model
puts in a sensitive category (person, location, occupation), records its decisions on the row,
and the leak audit counts the values it let through apart (`value_allowed`)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from stages.classify_values import category_from_column
from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
LLM_LOGS = ("GenerateSymbolicSql", "RepairSymbolicSql", "AddInferenceAttack", "AddQuestionAttack")


def copy_data(folder: Path) -> Path:
    shutil.copytree(
        ROOT / "data",
        folder,
        ignore=shutil.ignore_patterns(".*", "bird", "samples", "[2-9]_*", "[1-9][0-9]_*", "*.py"),
    )
    return folder


def llm_prompts(folder: Path) -> dict[int, str]:
    """All llm-role prompt text sent for each row index, as the prompt logs recorded it."""
    prompts: dict[int, str] = {}
    for log in (folder / ".masksql_pipe" / "prompts").glob("*.jsonl"):
        if any(log.stem.endswith(name) for name in LLM_LOGS):
            for line in log.read_text().splitlines():
                call = json.loads(line)
                text = "\n".join(m["content"] for m in call["messages"])
                prompts[call["row"]] = prompts.get(call["row"], "") + "\n" + text
    return prompts


def shows(text: str, value: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", text, re.IGNORECASE) is not None


def last_rows(folder: Path) -> list[dict]:
    return json.loads(max(folder.glob("*_Results.json")).read_text())


@pytest.fixture(scope="module")
def category_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = copy_data(tmp_path_factory.mktemp("category") / "data")
    proc = cli("--data", str(folder), "privacy.policy=category")
    assert proc.returncode == 0, proc.stderr
    return folder


def test_category_policy_scores_everything_and_records_its_decisions(category_run: Path):
    rows = last_rows(category_run)
    results = json.loads((category_run / "results.json").read_text())
    assert results["exec_acc"] == 1.0 and results["correct"] == len(rows)
    assert results["privacy"]["policy"] == "category"
    assert any(p.name.endswith("_ClassifyValues.json") for p in category_run.iterdir())
    decided = [r for r in rows if r["value_categories"]]
    assert decided
    for row in decided:
        categories = row["value_categories"]
        assert set(categories) == set(row["values"])
        assert row["kept_values"] == [v for v, c in categories.items() if c == "other"]
        assert row["masked_values"] == [v for v, c in categories.items() if c != "other"]


def test_sensitive_values_never_reach_the_remote_model(category_run: Path):
    rows = last_rows(category_run)
    prompts = llm_prompts(category_run)
    masked = [(i, v) for i, r in enumerate(rows) for v in r["masked_values"]]
    kept = [(i, v) for i, r in enumerate(rows) for v in r["kept_values"]]
    assert masked and kept
    assert [(i, v) for i, v in masked if shows(prompts[i], v)] == []
    # the policy's point: values of no sensitive category go to the remote model as written
    shown = [(i, v) for i, v in kept if shows(prompts[i], v)]
    assert len(shown) == len(kept)


def test_the_audit_counts_allowed_values_apart(category_run: Path):
    rows = last_rows(category_run)
    audit = json.loads((category_run / "results.json").read_text())["privacy"]["leak_audit"]
    allowed = [leak for r in rows for leak in r["leaks"] if leak["kind"] == "value_allowed"]
    assert audit["by_kind"]["value_allowed"] == len(allowed) > 0
    for row in rows:
        kept = {v.lower() for v in row["kept_values"]}
        for leak in row["leaks"]:
            if leak["kind"] == "value_allowed":
                assert leak["text"].lower() in kept
    others = sum(n for kind, n in audit["by_kind"].items() if kind != "value_allowed")
    assert audit["rows_with_leaks"] == sum(
        1 for r in rows if any(leak["kind"] != "value_allowed" for leak in r["leaks"])
    )
    assert others == 0 and audit["leak_rate"] == 0.0


def test_full_policy_masks_every_value(tmp_path: Path, category_run: Path):
    folder = copy_data(tmp_path / "data")
    proc = cli("--data", str(folder))
    assert proc.returncode == 0, proc.stderr
    rows = last_rows(folder)
    assert not any(p.name.endswith("_ClassifyValues.json") for p in folder.iterdir())
    assert all("value_categories" not in r and "kept_values" not in r for r in rows)
    results = json.loads((folder / "results.json").read_text())
    assert results["privacy"]["policy"] == "full"
    assert "value_allowed" not in results["privacy"]["leak_audit"]["by_kind"]
    # what the category run let through is masked under the full policy
    prompts = llm_prompts(folder)
    kept = [(i, v) for i, r in enumerate(last_rows(category_run)) for v in r["kept_values"]]
    assert [(i, v) for i, v in kept if shows(prompts[i], v)] == []


def test_bad_policy_is_a_config_error(tmp_path: Path):
    folder = copy_data(tmp_path / "data")
    proc = cli("--data", str(folder), "privacy.policy=some")
    assert proc.returncode == 2
    assert "setting 'privacy.policy' must be 'full' or 'category', got 'some'" in proc.stderr


def test_the_oracle_rule_reads_the_linked_column():
    assert category_from_column("singer.Country") == "location"
    assert category_from_column("singer.Name") == "person"
    assert category_from_column("stadium.Name") == "location"
    assert category_from_column("employee.job_id") == "occupation"
    assert category_from_column("department.dept_name") == "other"
    assert category_from_column("concert.Year") == "other"
    assert category_from_column(None) == "unknown"


def test_bird_evidence_follows_the_policy(tmp_path: Path):
    folder = tmp_path / "bird"
    shutil.copytree(
        ROOT / "data" / "bird", folder, ignore=shutil.ignore_patterns("1_input.json", ".*")
    )
    proc = cli("--data", str(folder), "privacy.policy=category")
    assert proc.returncode == 0, proc.stderr
    rows = last_rows(folder)
    assert json.loads((folder / "results.json").read_text())["exec_acc"] == 1.0
    prompts = llm_prompts(folder)
    with_evidence = [r for r in rows if any(shows(r["evidence"], v) for v in r["kept_values"])]
    assert with_evidence
    for row in with_evidence:  # a kept value is written as such in the evidence too
        for value in row["kept_values"]:
            assert shows(row["symbolic_evidence"], value) == shows(row["evidence"], value)
    for i, row in enumerate(rows):
        for value in row["masked_values"]:
            assert not shows(prompts[i], value)
            assert not shows(row["symbolic_evidence"], value)
