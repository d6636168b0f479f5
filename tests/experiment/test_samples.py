"""The simple and dag samples through the real CLI: config errors, DAG data flow, runs and logs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from masksql_pipe.experiment.samples import sample_file
from tests.conftest import ROOT, cli, load

SAMPLES = ROOT / "data" / "samples"
WIDE = {"COLUMNS": "200"}


def copy_sample(name: str, tmp_path: Path) -> Path:
    """A fresh copy of a shipped sample dataset (the repository's folder is never written)."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(SAMPLES / name / "1_input.json", folder / "1_input.json")
    return folder


def run_logs(folder: Path) -> list[dict[str, Any]]:
    """Run logs in the order they were written (ids of one second do not sort by time)."""
    paths = (folder / ".masksql_pipe" / "runs").glob("*.json")
    return [load(path) for path in sorted(paths, key=lambda path: path.stat().st_mtime_ns)]


def numbered(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.json"))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_shipped_cases_match_the_package_copies() -> None:
    # the README points at data/samples; an installed package carries the same cases
    for name in ("simple", "dag"):
        shipped = load(SAMPLES / name / "1_input.json")
        packaged = load(sample_file(f"{name}_cases.json"))
        assert shipped == packaged
        assert len({case["id"] for case in shipped}) == len(shipped)


# ---------------------------------------------------------------------------------------------
# Configuration errors, all before any row runs


def test_missing_prompt_settings_are_reported_together(tmp_path: Path) -> None:
    data = copy_sample("simple", tmp_path)
    result = cli("--data", str(data), "--pipeline", "simple")
    assert result.returncode == 2
    assert "infer.model.name" in result.stderr
    assert numbered(data) == ["1_input.json"]

    # a config file can turn more settings into prompts: all missing ones come in one line
    config = tmp_path / "prompts.yaml"
    config.write_text(
        "prepare:\n"
        "  template: '<Prompt: Template file for system message>'\n"
        "infer:\n"
        "  model:\n"
        "    name: '<Prompt: Model name to use for inference stage>'\n"
        "    settings: {max_tokens: 50}\n"
    )
    result = cli("--data", str(data), "--pipeline", "simple", "--config", str(config))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1
    assert "prepare.template (Template file for system message)" in lines[0]
    assert "infer.model.name (Model name to use for inference stage)" in lines[0]
    assert numbered(data) == ["1_input.json"]


def test_internal_setting_cannot_be_set_on_the_command_line(tmp_path: Path) -> None:
    data = copy_sample("simple", tmp_path)
    result = cli(
        "--data",
        str(data),
        "--pipeline",
        "simple",
        "infer.model.name=perfect",
        "prepare.template_text=Answer 7 always.",
    )
    assert result.returncode == 2
    assert "'prepare.template_text'" in result.stderr
    assert "cannot be set" in result.stderr
    assert numbered(data) == ["1_input.json"]


def test_unknown_setting_gets_a_suggestion(tmp_path: Path) -> None:
    data = copy_sample("simple", tmp_path)
    result = cli("--data", str(data), "-p", "simple", "infer.model.nmae=perfect")
    assert result.returncode == 2
    assert "did you mean 'infer.model.name'" in result.stderr
    result = cli("--data", str(data), "-p", "simple", "infer.model.name=perfect", "infer.modle=x")
    assert result.returncode == 2
    assert "did you mean 'infer.model'" in result.stderr
    assert numbered(data) == ["1_input.json"]


def test_bad_model_or_template_stops_before_any_row(tmp_path: Path) -> None:
    data = copy_sample("simple", tmp_path)
    result = cli("--data", str(data), "-p", "simple", "infer.model.name=no-such-model")
    assert result.returncode == 2
    assert "'no-such-model'" in result.stderr and "API key" in result.stderr
    assert numbered(data) == ["1_input.json"]

    broken = tmp_path / "broken.j2"
    broken.write_text("You are a calculator.\n{% if case.hint %}\nno endif\n")
    result = cli(
        "--data",
        str(data),
        "-p",
        "simple",
        "infer.model.name=perfect",
        f"prepare.template={broken}",
    )
    assert result.returncode == 2
    assert str(broken) in result.stderr
    assert numbered(data) == ["1_input.json"]

    result = cli(
        "--data", str(data), "-p", "simple", "infer.model.name=perfect", "prepare.template=nope.j2"
    )
    assert result.returncode == 2
    assert "nope.j2" in result.stderr and "not found" in result.stderr

    result = cli(
        "--data",
        str(data),
        "-p",
        "simple",
        "infer.model.name=perfect",
        "infer.model.settings.top_p=7",
    )
    assert result.returncode == 2
    assert "infer.model.settings.top_p" in result.stderr
    assert numbered(data) == ["1_input.json"]


# ---------------------------------------------------------------------------------------------
# The dag sample


def expected_dag(case: dict[str, Any], d_sep: str = ":", f_sep: str = "|") -> dict[str, Any]:
    """The A..F results worked out directly from the case, as the sample's docstring says."""
    a = case["word"].upper()
    b = "".join(reversed(a))
    c = len(case["word"]) * case["n"]
    d = b + d_sep + str(c)
    e = case["n"] * case["n"]
    return {"A": a, "B": b, "C": c, "D": d, "E": e, "F": d + f_sep + str(e)}


def test_dag_nodes_see_the_results_of_their_inputs(tmp_path: Path) -> None:
    data = copy_sample("dag", tmp_path)
    cases = load(data / "1_input.json")
    result = cli("--data", str(data), "--pipeline", "dag")
    assert result.returncode == 0, result.stderr
    # ties in the graph are broken by spec order: E comes after D
    assert numbered(data) == [
        "1_input.json",
        "2_A.json",
        "3_B.json",
        "4_C.json",
        "5_D.json",
        "6_E.json",
        "7_F.json",
    ]
    rows = load(data / "7_F.json")
    assert [row["id"] for row in rows] == [case["id"] for case in cases]
    for case, row in zip(cases, rows, strict=True):
        assert row["stages"] == expected_dag(case)
    # B's file holds only A and B: a node runs after its inputs and before later nodes
    assert set(load(data / "3_B.json")[0]["stages"]) == {"A", "B"}
    (log,) = run_logs(data)
    assert log["totals"]["passed"] == len(cases)
    assert all(c["passed"] is True for c in log["cases"])

    # a changed setting makes the nodes that captured it stale, and only from there on
    result = cli("--data", str(data), "--pipeline", "dag", "D.separator=#")
    assert result.returncode == 0, result.stderr
    rows = load(data / "7_F.json")
    for case, row in zip(cases, rows, strict=True):
        assert row["stages"] == expected_dag(case, d_sep="#")
    stages = {stage["name"]: stage["status"] for stage in run_logs(data)[-1]["stages"]}
    assert stages["A"] == stages["B"] == stages["C"] == "up to date"
    assert stages["D"] == stages["F"] == "ran"
    assert run_logs(data)[-1]["totals"]["passed"] == 0  # expected texts use ':'


# ---------------------------------------------------------------------------------------------
# The simple sample


def outcome(row: dict[str, Any]) -> str:
    """A case's outcome read straight from a last-file row."""
    if "pipe_error" in row:
        return "error"
    return "passed" if row["stages"]["assess"] == 0 else "failed"


def test_simple_with_perfect_passes_every_case(tmp_path: Path) -> None:
    data = copy_sample("simple", tmp_path)
    cases = load(data / "1_input.json")
    result = cli("--data", str(data), "--pipeline", "simple", "infer.model.name=perfect")
    assert result.returncode == 0, result.stderr
    rows = load(data / "5_assess.json")
    assert [row["id"] for row in rows] == [case["id"] for case in cases]
    for case, row in zip(cases, rows, strict=True):
        assert "pipe_error" not in row
        assert row["stages"]["infer"] == str(case["answer"])
        assert row["stages"]["extract"] == case["answer"]
        assert row["stages"]["assess"] == 0
        system, user = row["stages"]["prepare"]
        assert system["role"] == "system" and "calculator" in system["content"]
        assert user == {"role": "user", "content": case["user"]}
        assert ("Hint:" in system["content"]) == ("hint" in case)
        if "hint" in case:
            assert "Hint: " + case["hint"] in system["content"]
        # offline token estimate: 4 characters a token, prompt and reply counted apart
        prompt_chars = len(system["content"]) + len(user["content"])
        assert row["total_toks"] == prompt_chars // 4 + len(str(case["answer"])) // 4

    (log,) = run_logs(data)
    assert log["pipeline"] == "simple"
    assert log["config"]["infer"]["model"]["name"] == "perfect"
    assert log["config"]["prepare"]["template_text"].startswith("You are a careful calculator")
    totals = log["totals"]
    assert totals["cases"] == totals["complete"] == totals["passed"] == len(cases)
    assert totals["error"] == totals["failed"] == 0
    assert totals["total_toks"] == sum(row["total_toks"] for row in rows)
    assert [c["id"] for c in log["cases"]] == [case["id"] for case in cases]
    # the infer node's model calls show in its stage figures, as a PromptProcessor's do
    (infer,) = [stage for stage in log["stages"] if stage["name"] == "infer"]
    stats = infer["stats"]
    assert stats["calls"] == len(cases)
    assert stats["prompt_tokens"] + stats["completion_tokens"] == totals["total_toks"]
    assert stats["latency_max"] >= stats["latency_p95"] >= stats["latency_p50"] >= 0
    assert all(c["passed"] is True and c["status"] == "complete" for c in log["cases"])
    assert f"{len(cases)} of {len(cases)} answers correct" in result.stdout


def test_simple_with_echo_fails_cases_without_errors(tmp_path: Path) -> None:
    # echo repeats the question; the last number in it is rarely the answer
    data = copy_sample("simple", tmp_path)
    cases = load(data / "1_input.json")
    result = cli("--data", str(data), "-p", "simple", "infer.model.name=echo")
    assert result.returncode == 0, result.stderr
    (log,) = run_logs(data)
    expected_pass = 0
    for case in cases:
        last = case["user"].rstrip("?").replace("(", " ").replace(")", " ").split()[-1]
        expected_pass += int(last) == case["answer"]
    assert log["totals"]["error"] == 0
    assert log["totals"]["passed"] == expected_pass
    assert log["totals"]["failed"] == len(cases) - expected_pass


def test_simple_with_flakey_records_errors_without_losing_rows(tmp_path: Path) -> None:
    data = copy_sample("simple", tmp_path)
    cases = load(data / "1_input.json")
    result = cli("--data", str(data), "--pipeline", "simple", "infer.model.name=flakey")
    rows = load(data / "5_assess.json")
    assert [row["id"] for row in rows] == [case["id"] for case in cases]
    failed = [row for row in rows if "pipe_error" in row]
    assert failed, "flakey should break some of the ten cases"
    assert result.returncode == 1
    assert f"{len(failed)} rows failed" in result.stderr
    for row in failed:
        error = row["pipe_error"]
        if error["stage"] == "infer":
            assert error["type"] == "ModelError"
        else:
            assert (error["stage"], error["type"]) == ("extract", "ValueError")
            assert "no number" in error["message"]
        assert row["answer"] == next(c["answer"] for c in cases if c["id"] == row["id"])
    assert {row["pipe_error"]["stage"] for row in failed} == {"infer", "extract"}

    (log,) = run_logs(data)
    by_id = {c["id"]: c for c in log["cases"]}
    for row in rows:
        case = by_id[row["id"]]
        assert case["status"] == ("error" if "pipe_error" in row else "complete")
        if "pipe_error" in row:
            assert case["error"]["stage"] == row["pipe_error"]["stage"]
            assert case["error"]["traceback"]  # the traceback is kept in the run log
    assert log["totals"]["error"] == len(failed)
    assert log["totals"]["passed"] == sum(1 for row in rows if outcome(row) == "passed")

    # the same run tolerated by --max-errors exits 0 (flakey is deterministic: same failures)
    result = cli(
        "--data", str(data), "-p", "simple", "infer.model.name=flakey", "--max-errors", "10"
    )
    assert result.returncode == 0, result.stderr
    assert run_logs(data)[-1]["totals"]["error"] == len(failed)


def test_changing_the_model_reruns_from_infer(tmp_path: Path) -> None:
    data = copy_sample("simple", tmp_path)
    assert cli("--data", str(data), "-p", "simple", "infer.model.name=flakey").returncode == 1
    result = cli("--data", str(data), "-p", "simple", "infer.model.name=perfect")
    assert result.returncode == 0, result.stderr
    stages = {stage["name"]: stage["status"] for stage in run_logs(data)[-1]["stages"]}
    assert stages == {"prepare": "up to date", "infer": "ran", "extract": "ran", "assess": "ran"}
    assert all(outcome(row) == "passed" for row in load(data / "5_assess.json"))


def test_simple_template_from_the_data_folder(tmp_path: Path) -> None:
    data = copy_sample("simple", tmp_path)
    (data / "terse.j2").write_text("Calculator for case {{ case.id }}. Number only.")
    result = cli(
        "--data", str(data), "-p", "simple", "infer.model.name=perfect", "prepare.template=terse.j2"
    )
    assert result.returncode == 0, result.stderr
    rows = load(data / "5_assess.json")
    for row in rows:
        assert (
            row["stages"]["prepare"][0]["content"]
            == f"Calculator for case {row['id']}. Number only."
        )
    (log,) = run_logs(data)
    assert log["config"]["prepare"]["template_text"] == (data / "terse.j2").read_text()
    assert json.loads(json.dumps(log["config"]))["prepare"]["template"] == "terse.j2"
