"""Experiment subcommands through the real CLI: pipelines, models, history, summarize, format,
compare, report and rerun, on runs of the simple sample made in tmp_path."""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, cli, load

WIDE = {"COLUMNS": "250"}
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source"}


def copy_sample(name: str, tmp_path: Path) -> Path:
    """A fresh copy of a shipped sample dataset (the repository's folder is never written)."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(ROOT / "data" / "samples" / name / "1_input.json", folder / "1_input.json")
    return folder


def run_logs(folder: Path) -> list[dict[str, Any]]:
    """Run logs in the order they were written (ids of one second do not sort by time)."""
    paths = (folder / ".masksql_pipe" / "runs").glob("*.json")
    return [load(path) for path in sorted(paths, key=lambda path: path.stat().st_mtime_ns)]


def outcome(row: dict[str, Any]) -> str:
    """A case's outcome read straight from a last-file row."""
    if "pipe_error" in row:
        return "error"
    return "passed" if row["stages"]["assess"] == 0 else "failed"


def table_row(stdout: str, key: str) -> list[str]:
    """The cells of the rich table line that contains ``key``."""
    for line in stdout.splitlines():
        if key in line and "│" in line:
            return [cell.strip() for cell in line.strip().strip("│").split("│")]
    raise AssertionError(f"no table line with {key!r} in:\n{stdout}")


def one_error_line(result: Any) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    return lines[0]


def next_second() -> None:
    """Wait for the clock's next second, so the next run's id sorts after the last one's.

    Run ids are ``YYYYMMDD-HHMMSS-<random hex>``: two runs in one second sort by chance, and
    ``latest`` means the last id in sorted order.
    """
    now = time.time()
    time.sleep(math.ceil(now) - now + 0.01)


@dataclass
class TwoRuns:
    """A perfect run then a flakey run of the simple sample, with each run's last-file rows."""

    data: Path
    perfect_id: str
    flakey_id: str
    perfect_rows: list[dict[str, Any]]
    flakey_rows: list[dict[str, Any]]


@pytest.fixture
def two_runs(tmp_path: Path) -> TwoRuns:
    data = copy_sample("simple", tmp_path)
    result = cli("--data", str(data), "-p", "simple", "infer.model.name=perfect")
    assert result.returncode == 0, result.stderr
    perfect_rows = load(data / "5_assess.json")  # read now: the next run rewrites the file
    next_second()
    result = cli("--data", str(data), "-p", "simple", "infer.model.name=flakey")
    assert result.returncode == 1, result.stderr
    first, second = run_logs(data)
    return TwoRuns(data, first["id"], second["id"], perfect_rows, load(data / "5_assess.json"))


# ---------------------------------------------------------------------------------------------
# Pipelines and models


def test_pipelines_lists_the_builtin_pipelines() -> None:
    result = cli("pipelines", env=WIDE)
    assert result.returncode == 0, result.stderr
    simple = table_row(result.stdout, "│ simple ")
    assert simple[1].startswith("A model as a calculator")
    assert simple[2] == "infer.model.name"
    dag = table_row(result.stdout, "│ dag ")
    assert dag[1].startswith("The A..F graph")
    assert dag[2] == ""
    table_row(result.stdout, "│ masksql ")  # listed, loadable or not, without crashing


def test_models_lists_offline_and_configured_models(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        "  mine:\n"
        "    model: my-model-v1\n"
        "    base_url: http://127.0.0.1:9/v1\n"
        "    api_key_env: MY_TEST_MODEL_KEY\n"
    )
    result = cli("models", "--models", str(models), env=WIDE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("oracle", "perfect", "echo", "flakey"):
        cells = table_row(result.stdout, f"│ {name} ")
        assert cells[1] == "offline" and cells[3] == "ready"
    mine = table_row(result.stdout, "│ mine ")
    assert mine[2] == "my-model-v1"
    assert mine[3] == "no key: set $MY_TEST_MODEL_KEY"

    secret = "sk-test-0123456789abcdef"
    result = cli(
        "models", "--models", str(models), env={**WIDE, "MY_TEST_MODEL_KEY": secret}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert table_row(result.stdout, "│ mine ")[3] == "ready"
    assert secret not in result.stdout + result.stderr

    result = cli("models", "--models", str(tmp_path / "absent.yaml"), cwd=tmp_path)
    assert "absent.yaml" in one_error_line(result)


# ---------------------------------------------------------------------------------------------
# Browsing run logs


def test_history_lists_runs_newest_first(two_runs: TwoRuns) -> None:
    result = cli("history", "--data", str(two_runs.data), env=WIDE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.index(two_runs.flakey_id) < result.stdout.index(two_runs.perfect_id)
    for run_id, rows in (
        (two_runs.perfect_id, two_runs.perfect_rows),
        (two_runs.flakey_id, two_runs.flakey_rows),
    ):
        cells = table_row(result.stdout, run_id)
        assert cells[2] == "simple"
        assert cells[3] == str(len(rows))
        assert cells[4] == str(sum(outcome(row) == "passed" for row in rows))
        assert cells[5] == str(sum(outcome(row) == "error" for row in rows))
        assert cells[6] == f"{sum(row.get('total_toks', 0) for row in rows):,}"

    result = cli("history", "--data", str(two_runs.data), "--limit", "1", env=WIDE)
    assert two_runs.flakey_id in result.stdout and two_runs.perfect_id not in result.stdout


def test_history_of_a_dataset_without_runs(tmp_path: Path) -> None:
    data = copy_sample("simple", tmp_path)
    assert "no runs recorded yet" in one_error_line(cli("history", "--data", str(data)))


def test_summarize_and_format_show_every_case(two_runs: TwoRuns) -> None:
    result = cli("summarize", "latest", "--data", str(two_runs.data), env=WIDE)
    assert result.returncode == 0, result.stderr
    for row in two_runs.flakey_rows:
        cells = table_row(result.stdout, f"│ {row['id']} ")
        assert cells[2] == outcome(row)
        if outcome(row) == "error":
            assert cells[5].startswith(f"{row['pipe_error']['stage']}: ")

    result = cli("format", two_runs.perfect_id[:-1], "--data", str(two_runs.data), env=WIDE)
    assert result.returncode == 0, result.stderr
    assert two_runs.perfect_id in result.stdout
    for row in two_runs.perfect_rows:
        expected = f'result: {{"expected": {row["answer"]}, "answer": {row["answer"]}}}'
        assert f"{row['id']}  passed" in result.stdout
        assert expected in result.stdout


def test_run_references_resolve_or_fail_in_one_line(two_runs: TwoRuns) -> None:
    data = str(two_runs.data)
    line = one_error_line(cli("summarize", "nope", "--data", data))
    assert "'nope'" in line and "history" in line
    common = "".join(
        a for a, b in zip(two_runs.perfect_id, two_runs.flakey_id, strict=True) if a == b
    )[:4]
    line = one_error_line(cli("summarize", common, "--data", data))
    assert "ambiguous" in line
    assert two_runs.perfect_id in line and two_runs.flakey_id in line


def test_compare_finds_the_cases_whose_outcome_changed(two_runs: TwoRuns) -> None:
    before = {row["id"]: outcome(row) for row in two_runs.perfect_rows}
    after = {row["id"]: outcome(row) for row in two_runs.flakey_rows}
    changed = {case_id for case_id in before if before[case_id] != after[case_id]}
    assert changed, "the flakey run should change some outcomes"

    result = cli("compare", two_runs.perfect_id, "latest", "--data", str(two_runs.data), env=WIDE)
    assert result.returncode == 0, result.stderr
    assert f"Changed cases ({len(changed)})" in result.stdout
    listed = result.stdout.split("Changed cases", 1)[1]
    for case_id in before:
        if case_id in changed:
            cells = table_row(listed, f"│ {case_id} ")
            assert cells[1:4] == [before[case_id], after[case_id], "regressed"]
        else:
            assert f"│ {case_id} " not in listed
    passed_a = sum(value == "passed" for value in before.values())
    passed_b = sum(value == "passed" for value in after.values())
    assert table_row(result.stdout, "│ passed ")[1:4] == [
        str(passed_a),
        str(passed_b),
        f"{passed_b - passed_a:+d}",
    ]


# ---------------------------------------------------------------------------------------------
# HTML reports


class PageParser(HTMLParser):
    """Collects the text of a page and checks every opened element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and "://" in value:
                self.external.append(value)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_page(path: Path) -> tuple[PageParser, str]:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert parser.stack == []
    assert parser.external == []  # self-contained: nothing fetched from elsewhere
    return parser, " ".join(" ".join(parser.text).split())


def test_report_writes_a_self_contained_page_beside_the_log(two_runs: TwoRuns) -> None:
    result = cli("report", "latest", "--data", str(two_runs.data))
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == two_runs.data / ".masksql_pipe" / "runs" / f"{two_runs.flakey_id}.html"
    parser, text = parse_page(path)
    assert {"html", "table", "section"} <= parser.tags
    rows = two_runs.flakey_rows
    passed = sum(outcome(row) == "passed" for row in rows)
    errors = sum(outcome(row) == "error" for row in rows)
    assert two_runs.flakey_id in text
    assert f"{100 * passed / len(rows):.1f}%" in text
    assert f"accuracy: {passed} passed of {len(rows)} cases" in text
    assert f"errors ({100 * errors / len(rows):.1f}%)" in text
    assert f"{sum(row.get('total_toks', 0) for row in rows):,}" in text
    for row in rows:
        assert row["id"] in text
        if "pipe_error" in row:
            assert row["pipe_error"]["message"] in text


def test_report_of_a_comparison_to_a_chosen_file(two_runs: TwoRuns, tmp_path: Path) -> None:
    target = tmp_path / "cmp.html"
    result = cli(
        "report",
        two_runs.perfect_id,
        "--compare",
        "latest",
        "--out",
        str(target),
        "--data",
        str(two_runs.data),
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == target
    _, text = parse_page(target)
    assert two_runs.perfect_id in text and two_runs.flakey_id in text
    for row in two_runs.flakey_rows:
        if "pipe_error" in row:
            assert row["id"] in text  # each regressed case is listed

    result = cli(
        "report",
        "latest",
        "--out",
        str(tmp_path / "nowhere" / "x.html"),
        "--data",
        str(two_runs.data),
    )
    assert "nowhere" in one_error_line(result)


# ---------------------------------------------------------------------------------------------
# Rerun


def test_rerun_latest_reproduces_the_config_with_the_patch(two_runs: TwoRuns) -> None:
    old = run_logs(two_runs.data)[-1]
    result = cli(
        "rerun", "latest", "--data", str(two_runs.data), "infer.model.name=perfect", env=WIDE
    )
    assert result.returncode == 0, result.stderr
    logs = run_logs(two_runs.data)
    assert len(logs) == 3
    new = logs[-1]
    expected = copy.deepcopy(old["config"])
    expected["infer"]["model"]["name"] = "perfect"
    assert new["config"] == expected
    assert new["pipeline"] == old["pipeline"] == "simple"
    assert new["argv"][:2] == ["rerun", "latest"]
    assert new["totals"]["passed"] == new["totals"]["cases"] == len(two_runs.flakey_rows)
    stages = {stage["name"]: stage["status"] for stage in new["stages"]}
    assert stages["prepare"] == "up to date" and stages["infer"] == "ran"

    # a changed setting that the recorded config already holds is kept, not reset to defaults
    result = cli(
        "rerun",
        two_runs.perfect_id,
        "--data",
        str(two_runs.data),
        "infer.model.settings.max_tokens=64",
    )
    assert result.returncode == 0, result.stderr
    newest = run_logs(two_runs.data)[-1]
    assert newest["config"]["infer"]["model"]["name"] == "perfect"
    assert newest["config"]["infer"]["model"]["settings"]["max_tokens"] == 64

    # history shows the reruns as runs of their own
    result = cli("history", "--data", str(two_runs.data), env=WIDE)
    assert all(log["id"] in result.stdout for log in run_logs(two_runs.data))


def test_rerun_errors_are_one_line(two_runs: TwoRuns) -> None:
    data = str(two_runs.data)
    line = one_error_line(cli("rerun", "latest", "--data", data, "infer.model.nmae=perfect"))
    assert "did you mean 'infer.model.name'" in line
    line = one_error_line(cli("rerun", "latest", "--data", data, "prepare.template_text=x"))
    assert "prepare.template_text" in line

    # a secret the log holds redacted must be given again
    runs = two_runs.data / ".masksql_pipe" / "runs"
    log = load(runs / f"{two_runs.perfect_id}.json")
    log["id"] = "19990101-000000-aaaaaa"
    log["config"]["infer"]["model"]["settings"]["api_key"] = "***"
    (runs / "19990101-000000-aaaaaa.json").write_text(json.dumps(log))
    line = one_error_line(cli("rerun", "1999", "--data", data))
    assert "infer.model.settings.api_key" in line and "redacted" in line
