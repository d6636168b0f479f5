"""The command line through a real subprocess: run, status, show, bad input, exit codes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.conftest import cli, load, write_rows

PIPE = ["--pipeline", "tests.helpers_stages:CountingPipeline"]


def run(data: Path, *extra: str):
    return cli("--data", str(data), *PIPE, f"log.side_file={data.parent / 'side.log'}", *extra)


def status(data: Path) -> str:
    result = cli("status", "--data", str(data), *PIPE, f"log.side_file={data.parent / 'side.log'}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def line_of(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if name in line)


def test_run_then_status_then_hand_edit(data_dir: Path) -> None:
    result = run(data_dir)
    assert result.returncode == 0, result.stderr
    assert load(data_dir / "4_Logged.json")[2] == {"id": "r2", "x": 2, "y": 3, "logged": 20}
    text = status(data_dir)
    for name in ("2_LimitJson.json", "3_AddNumber.json", "4_Logged.json"):
        assert "up to date" in line_of(text, name)
        assert " 10 " in line_of(text, name)

    rows = load(data_dir / "3_AddNumber.json")
    rows[0]["y"] = 99
    write_rows(data_dir / "3_AddNumber.json", rows)
    write_rows(data_dir / "9_Leftover.json", [{"x": 1}])
    text = status(data_dir)
    assert "up to date" in line_of(text, "2_LimitJson.json")
    assert "edited by hand" in line_of(text, "3_AddNumber.json")
    assert "stale" in line_of(text, "4_Logged.json")
    assert "3_AddNumber.json changed" in line_of(text, "4_Logged.json")
    assert "not written by this pipeline" in line_of(text, "9_Leftover.json")


def test_status_before_any_run_says_not_run(data_dir: Path) -> None:
    assert "not run yet" in line_of(status(data_dir), "4_Logged.json")


def test_show_by_number_and_name_and_diff(data_dir: Path) -> None:
    assert run(data_dir).returncode == 0
    by_number = cli("show", "--data", str(data_dir), "3", "4")
    by_name = cli("show", "--data", str(data_dir), "addnumber", "4")
    assert by_number.returncode == 0, by_number.stderr
    assert orjson.loads(by_number.stdout) == {"id": "r4", "x": 4, "y": 5}
    assert by_name.stdout == by_number.stdout
    diff = cli("show", "--data", str(data_dir), "Logged", "4", "--diff")
    assert orjson.loads(diff.stdout) == {"added": {"logged": 40}, "changed": {}}


def test_show_errors(data_dir: Path) -> None:
    assert run(data_dir).returncode == 0
    result = cli("show", "--data", str(data_dir), "Nope")
    assert result.returncode == 2
    assert "no stage file 'Nope'" in result.stderr
    result = cli("show", "--data", str(data_dir), "3", "99")
    assert result.returncode == 2
    assert "no row 99 (the file has 10 rows)" in result.stderr


def test_failed_rows_exit_1_unless_tolerated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_rows(data / "1_input.json", [{"id": "a", "x": 1}, {"id": "b", "x": "text"}])
    result = run(data)
    assert result.returncode == 1
    assert "1 rows failed" in result.stderr.splitlines()[-1]
    rows = load(data / "4_Logged.json")
    assert rows[0]["logged"] == 10  # the good row is kept
    assert rows[1]["pipe_error"]["stage"] == "AddNumber"
    assert run(data, "--max-errors", "1").returncode == 0


def test_unknown_options_become_settings(data_dir: Path) -> None:
    result = run(data_dir, "--add.amount", "5")
    assert result.returncode == 0, result.stderr
    assert load(data_dir / "4_Logged.json")[0]["y"] == 5
    result = run(data_dir, "--add.amout", "5")
    assert result.returncode == 2
    assert "did you mean 'add.amount'" in result.stderr


def test_limit_and_start(data_dir: Path) -> None:
    assert run(data_dir, "--start", "2", "--limit", "3").returncode == 0
    assert [row["id"] for row in load(data_dir / "4_Logged.json")] == ["r2", "r3", "r4"]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("no-folder", "data folder not found"),
        ("no-input", "1_input.json: file not found"),
        ("bad-json", "1_input.json: invalid JSON at line 3, column"),
        ("not-list", "1_input.json: top level is a JSON object, expected a list"),
        ("not-object", "1_input.json: row 1 is a JSON string, expected an object"),
    ],
)
def test_bad_input_one_line_error(tmp_path: Path, setup: str, expected: str) -> None:
    data = tmp_path / "data"
    if setup != "no-folder":
        data.mkdir()
    content = {
        "bad-json": b'[\n  {"x": 1},\n  {"x": }\n]',
        "not-list": b'{"x": 1}',
        "not-object": b'[{"x": 1}, "two"]',
    }.get(setup)
    if content is not None:
        (data / "1_input.json").write_bytes(content)
    result = run(data)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert expected in errors[0]
    assert "Traceback" not in result.stderr


def test_bad_edit_keeps_computed_files(data_dir: Path) -> None:
    assert run(data_dir).returncode == 0
    before = (data_dir / "4_Logged.json").read_bytes()
    (data_dir / "3_AddNumber.json").write_text("[{")
    result = run(data_dir)
    assert result.returncode == 2
    assert "3_AddNumber.json: invalid JSON at line 1" in result.stderr
    assert (data_dir / "4_Logged.json").read_bytes() == before


def test_run_log_times_are_ordered(data_dir: Path) -> None:
    from datetime import datetime

    assert run(data_dir, "log.delay=0.01").returncode == 0
    (log,) = (data_dir / ".masksql_pipe" / "runs").glob("*.json")
    record = load(log)
    created = datetime.fromisoformat(record["created"])
    finished = datetime.fromisoformat(record["finished"])
    assert created <= finished
    assert (finished - created).total_seconds() >= 0.01 * 10 / 16  # 10 rows of 10 ms, 16 at once


def test_status_needs_no_api_key_but_run_does(tmp_path: Path) -> None:
    import shutil

    from tests.conftest import ROOT

    data = tmp_path / "spider"
    data.mkdir()
    for name in ("1_input.json", "tables.json"):
        shutil.copy(ROOT / "data" / name, data / name)
    shutil.copytree(ROOT / "data" / "databases", data / "databases")
    assert cli("--data", str(data), "--limit", "2").returncode == 0  # offline oracle models
    # a researcher looks at the folder from a shell without the key, for a remote llm
    result = cli("status", "--data", str(data), "--limit", "2", "models.llm=remote-model")
    assert result.returncode == 0, result.stderr
    assert "up to date" in line_of(result.stdout, "10_AddSymbolicQuestion.json")
    assert "stale" in line_of(result.stdout, "11_GenerateSymbolicSql.json")
    result = cli("--data", str(data), "--limit", "2", "models.llm=remote-model")
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr
    assert list((data / ".masksql_pipe" / "journal").glob("11_*")) == []  # stopped before rows


def test_status_judges_by_the_last_runs_settings(data_dir: Path) -> None:
    side = f"log.side_file={data_dir.parent / 'side.log'}"
    assert cli("--data", str(data_dir), *PIPE, side, "--limit", "4", "add.amount=3").returncode == 0
    result = cli("status", "--data", str(data_dir))  # nothing repeated
    assert result.returncode == 0, result.stderr
    assert "judged against the settings of run" in result.stderr
    for name in ("2_LimitJson.json", "3_AddNumber.json", "4_Logged.json"):
        assert "up to date" in line_of(result.stdout, name)
        assert " 4 " in line_of(result.stdout, name)
    # settings given explicitly are judged instead
    result = cli("status", "--data", str(data_dir), *PIPE, side, "--limit", "4", "add.amount=5")
    assert "up to date" in line_of(result.stdout, "2_LimitJson.json")
    assert "stale" in line_of(result.stdout, "3_AddNumber.json")


def test_pipelines_lists_user_pipelines_by_module_path() -> None:
    result = cli("pipelines", "tests.helpers_stages:CountingPipeline", "no_such_module:Nope")
    assert result.returncode == 0, result.stderr
    assert "Adds a number to x and logs each call" in line_of(
        result.stdout, "tests.helpers_stages:CountingPipeline"
    )
    assert "cannot load" in line_of(result.stdout, "no_such_module:Nope")
    assert "masksql" in result.stdout and "simple" in result.stdout
