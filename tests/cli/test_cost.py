"""Dollars through the real command line: status, summarize, compare, report, --budget, --batch."""

from __future__ import annotations

import json
from pathlib import Path

from stages.pipelines.masksql import summarize as masksql_summary
from tests.conftest import cli
from tests.lm_fixtures import SECRET, questions, write_input
from tests.loopback_batch import BatchLoopbackServer

PIPE = ["--pipeline", "tests.helpers_models:AskPipeline", "model.name=loop"]
PRICE = "{input: 1000, output: 4000}"  # dollars per million tokens, large to show in 4 decimals


def models_file(tmp_path: Path, srv: BatchLoopbackServer, extra: str = "") -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(
        f"models:\n  loop:\n    model: m\n    base_url: '{srv.base_url}'\n"
        f"    price: {PRICE}\n{extra}",
        encoding="utf-8",
    )
    return path


def by_hand(n: int) -> float:
    """The loopback server's usage (4 characters a token, echo replies) at PRICE."""
    total = 0.0
    for q in questions(n):
        tokens = len(f"Q: {q['question']}") // 4
        total += (tokens * 1000 + tokens * 4000) / 1e6
    return total


def test_cost_in_status_summarize_compare_and_report(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_input(data, questions(6))
    env = {"OPENAI_API_KEY": SECRET}
    with BatchLoopbackServer() as srv:
        models = str(models_file(tmp_path, srv))
        first = cli("run", "--data", str(data), "--models", models, *PIPE, cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        second = cli(
            "run", "--data", str(data), "--models", models, "--force", *PIPE, cwd=tmp_path, env=env
        )
        assert second.returncode == 0, second.stderr
        assert srv.requests == 6  # the second run answered from the cache
    expected = f"{by_hand(6):.4f}"
    status = cli("status", "--data", str(data), "--models", models, *PIPE, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    # the stage file was last written by the cached run: it cost nothing then
    assert "$0.0000" in status.stdout
    runs = [json.loads(p.read_text()) for p in (data / ".masksql_pipe" / "runs").glob("*.json")]
    ids = [run["id"] for run in sorted(runs, key=lambda run: run["created"])]  # ids: the second
    summary = cli("summarize", ids[0], "--data", str(data), cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    assert "cost ($)" in summary.stdout and expected in summary.stdout
    compare = cli("compare", ids[0], ids[1], "--data", str(data), cwd=tmp_path)
    assert compare.returncode == 0, compare.stderr
    line = next(x for x in compare.stdout.splitlines() if "cost ($)" in x)
    assert expected in line and "0.0000" in line and f"-{expected}" in line
    report = cli("report", ids[0], "--data", str(data), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    html = next((data / ".masksql_pipe" / "runs").glob(f"{ids[0]}*.html")).read_text()
    assert f"${expected}" in html


def test_budget_stops_the_run_with_exit_2_before_sending(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_input(data, questions(6))
    with BatchLoopbackServer() as srv:
        models = str(models_file(tmp_path, srv))
        result = cli(
            "run",
            "--data",
            str(data),
            "--models",
            models,
            "--budget",
            "0.01",
            *PIPE,
            cwd=tmp_path,
            env={"OPENAI_API_KEY": SECRET},
        )
        assert srv.requests == 0
    assert result.returncode == 2, result.stderr
    assert "budget $0.0100" in result.stderr and "nothing was sent" in result.stderr
    assert (data / "2_LimitJson.json").exists()  # what was computed is kept
    assert SECRET not in result.stderr + result.stdout


def test_batch_flag_sends_a_batch(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_input(data, questions(5))
    with BatchLoopbackServer() as srv:
        srv.batches.delay = 0.05
        models = str(models_file(tmp_path, srv, "    batch: {poll_seconds: 0.02}\n"))
        result = cli(
            "run",
            "--data",
            str(data),
            "--models",
            models,
            "--batch",
            *PIPE,
            cwd=tmp_path,
            env={"OPENAI_API_KEY": SECRET},
        )
        assert result.returncode == 0, result.stderr
        assert srv.batches.counts["create"] == 1 and srv.requests == 0
    assert "5 prompts go to the batch API" in result.stderr


def test_results_json_cost_is_the_rows_total() -> None:
    rows = [{"total_cost": 0.25}, {"total_cost": 0.5}, {"pipe_error": {}, "total_cost": 0.125}]
    assert masksql_summary(rows)["cost"] == 0.875
    assert masksql_summary([{"total_toks": 3}])["cost"] is None  # no prices: no figure


def test_function_stages_record_cost_too(tmp_path: Path) -> None:
    import shutil

    from tests.conftest import ROOT

    data = tmp_path / "simple"
    data.mkdir()
    shutil.copy(ROOT / "data" / "samples" / "simple" / "1_input.json", data / "1_input.json")
    with BatchLoopbackServer() as srv:
        models = str(models_file(tmp_path, srv))
        result = cli(
            "run",
            "--data",
            str(data),
            "--models",
            models,
            "--pipeline",
            "simple",
            "infer.model.name=loop",
            "--max-errors",
            "1000",
            cwd=tmp_path,
            env={"OPENAI_API_KEY": SECRET},
        )
        assert result.returncode == 0, result.stderr
        bodies = srv.bodies()
    expected = 0.0
    for body in bodies:  # the loopback server's usage: 4 characters a token, echo replies
        prompt = len("".join(m["content"] for m in body["messages"])) // 4
        reply = len(next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user"))
        expected += (prompt * 1000 + min(reply // 4, body.get("max_tokens") or 10**9) * 4000) / 1e6
    run = json.loads(next((data / ".masksql_pipe" / "runs").glob("*.json")).read_text())
    infer = next(s for s in run["stages"] if s["name"] == "infer")
    assert bodies and abs(infer["stats"]["cost"] - expected) < 1e-9
