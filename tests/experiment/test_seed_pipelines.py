"""The Pipelines seed's examples as written (tests/seed_pipelines.py) through the real CLI:
the SimplePipeline with an offline model and with the loopback server, the A..F DAG, and
summarize, format, compare and rerun on their run logs. Also ExceptionContext under asyncio."""

from __future__ import annotations

import asyncio
import json
import operator
import re
from pathlib import Path
from typing import Any

import pytest

from masksql_pipe.errors import ExceptionContext, error_context
from masksql_pipe.loopback.server import LoopbackServer
from masksql_pipe.prompt.log import read_prompt_log
from tests.conftest import cli, load, write_rows
from tests.lm_fixtures import SECRET

SIMPLE = ("--pipeline", "tests.seed_pipelines:SimplePipeline")
TEMPLATE = "You are a calculator. Case {{ case.id }}: reply with the number only.\n"
WIDE = {"COLUMNS": "200"}
CONTEXT = "Extracting numerical answer from LLM response."


def simple_folder(tmp_path: Path, cases: list[dict[str, Any]]) -> tuple[Path, Path]:
    """A data folder holding the cases, and the template file beside it."""
    template = tmp_path / "system.j2"
    template.write_text(TEMPLATE, encoding="utf-8")
    data = tmp_path / "data"
    write_rows(data / "1_input.json", cases)
    return data, template


def run_logs(data: Path) -> list[dict[str, Any]]:
    """The run logs, oldest first (ids share their second: order by creation time)."""
    logs = (data / ".masksql_pipe" / "runs").glob("*.json")
    records = [json.loads(path.read_text(encoding="utf-8")) for path in logs]
    return sorted(records, key=lambda record: record["created"])


def test_simple_with_echo_offline(tmp_path: Path) -> None:
    cases = [
        {"id": "n1", "user": "42", "answer": 42},
        {"id": "n2", "user": "7.5", "answer": 7},
        {"id": "q1", "user": "What is 2 + 2?", "answer": 4},
    ]
    data, template = simple_folder(tmp_path, cases)
    settings = (f"prepare.template={template}", "infer.model.name=echo")
    proc = cli("--data", str(data), *SIMPLE, *settings, cwd=tmp_path, env=WIDE)
    assert proc.returncode == 1, proc.stderr  # q1 failed: more errors than --max-errors 0
    rows = {row["id"]: row for row in load(data / "5_assess.json")}
    assert rows["n1"]["stages"]["assess"] == 0
    assert rows["n2"]["stages"]["assess"] == 0.5
    system = rows["n1"]["stages"]["prepare"][0]
    rendered = TEMPLATE.replace("{{ case.id }}", "n1").rstrip("\n")  # jinja2 drops the last \n
    assert system == {"role": "system", "content": rendered}
    error = rows["q1"]["pipe_error"]
    assert error["stage"] == "extract" and error["context"] == [CONTEXT]
    assert error["message"].startswith("Extracting numerical answer from LLM response: ")

    (log,) = run_logs(data)
    assert log["config"]["prepare"]["template_text"] == TEMPLATE
    by_id = {case["id"]: case for case in log["cases"]}
    assert by_id["q1"]["error"]["context"] == [CONTEXT]
    # infer's calls are in the prompt log and in each case's totals
    entries = read_prompt_log(data / ".masksql_pipe" / "prompts" / "3_infer.jsonl")
    assert [e["reply"] for e in entries] == ["42", "7.5", "What is 2 + 2?"]
    assert {e["run"] for e in entries} == {log["id"]}
    for entry in entries:
        row = load(data / "3_infer.json")[entry["row"]]
        assert row["total_toks"] == entry["prompt_tokens"] + entry["completion_tokens"] > 0


def calculator(messages: list[dict[str, Any]]) -> str:
    """The loopback model: works out "What is A op B?" from the last user message."""
    text = [m for m in messages if m["role"] == "user"][-1]["content"]
    a, op, b = re.fullmatch(r"What is (-?\d+) ([-+*]) (-?\d+)\?", text).groups()
    ops = {"+": operator.add, "-": operator.sub, "*": operator.mul}
    return str(ops[op](int(a), int(b)))


@pytest.fixture
def loopback_runs(tmp_path: Path) -> dict[str, Any]:
    """Two runs of the seed's SimplePipeline on the loopback server: a first, then --force."""
    cases = [
        {"id": "add", "user": "What is 12 + 30?", "answer": 42},
        {"id": "sub", "user": "What is 7 - 19?", "answer": -12},
        {"id": "mul", "user": "What is 13 * 11?", "answer": 143},
    ]
    data, template = simple_folder(tmp_path, cases)
    with LoopbackServer(reply=calculator, latency=0.01) as server:
        models = tmp_path / "models.yaml"
        models.write_text(
            f"models:\n  loop:\n    model: m\n    base_url: '{server.base_url}'\n",
            encoding="utf-8",
        )
        env = {"OPENAI_API_KEY": SECRET, **WIDE}
        base = ("--data", str(data), *SIMPLE, "--models", str(models))
        settings = (f"prepare.template={template}", "infer.model.name=loop")
        first = cli(*base, *settings, cwd=tmp_path, env=env)
        assert first.returncode == 0, first.stderr
        sent = server.requests
        again = cli("rerun", "latest", "--data", str(data), "--force", cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stderr
        return {"data": data, "cases": cases, "sent": sent, "after": server.requests}


def test_simple_on_the_loopback_server(loopback_runs: dict[str, Any]) -> None:
    data = loopback_runs["data"]
    rows = load(data / "5_assess.json")
    assert [row["stages"]["assess"] for row in rows] == [0, 0, 0]
    assert loopback_runs["sent"] == 3
    assert loopback_runs["after"] == 3  # the forced rerun was answered by the response cache

    first, second = run_logs(data)
    entries = read_prompt_log(data / ".masksql_pipe" / "prompts" / "3_infer.jsonl")
    assert [(e["run"], e["cached"]) for e in entries] == [(first["id"], False)] * 3 + [
        (second["id"], True)
    ] * 3
    fresh = {e["row"]: e for e in entries if not e["cached"]}
    for index, row in enumerate(load(data / "3_infer.json")):
        logged = fresh[index]
        assert logged["latency"] >= 0.01  # the server's latency
        assert first["cases"][index]["total_toks"] == (
            logged["prompt_tokens"] + logged["completion_tokens"]
        )
        assert first["cases"][index]["total_latency"] >= 0.01
        # a cached answer keeps its recorded usage, as PromptProcessor rows do
        assert row["total_toks"] == second["cases"][index]["total_toks"] > 0


def test_summarize_format_compare_on_seed_run_logs(loopback_runs: dict[str, Any]) -> None:
    data = str(loopback_runs["data"])
    first, second = run_logs(loopback_runs["data"])
    summary = cli("summarize", "latest", "--data", data, env=WIDE)
    assert summary.returncode == 0, summary.stderr
    shown = cli("format", first["id"], "--data", data, env=WIDE)
    assert shown.returncode == 0, shown.stderr
    for case in loopback_runs["cases"]:
        assert f"│ {case['id']} " in summary.stdout
        assert case["id"] in shown.stdout
    compared = cli("compare", first["id"], second["id"], "--data", data, env=WIDE)
    assert compared.returncode == 0, compared.stderr
    assert first["id"] in compared.stdout and second["id"] in compared.stdout


def test_seed_dag_through_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_rows(data / "1_input.json", [{"id": "one"}, {"id": "two"}])
    dag = ("--pipeline", "tests.seed_pipelines:DagPipeline")
    proc = cli("--data", str(data), *dag, cwd=tmp_path, env=WIDE)
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in data.glob("*.json"))
    assert files == sorted(
        ["1_input.json", "2_A.json", "3_B.json", "4_C.json", "5_D.json", "6_E.json", "7_F.json"]
    )
    for row in load(data / "7_F.json"):
        assert row["stages"]["F"] == "F(D(B(A),C(A)),E)"
    again = cli("rerun", "latest", "--data", str(data), cwd=tmp_path, env=WIDE)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("up to date") >= 6
    summary = cli("summarize", "latest", "--data", str(data), env=WIDE)
    assert summary.returncode == 0 and "│ one " in summary.stdout


async def test_exception_context_is_per_task() -> None:
    """Two rows in flight at once: each error carries its own blocks, never the other's."""
    started = asyncio.Event()

    async def row(name: str, wait: bool) -> BaseException:
        try:
            with ExceptionContext(f"outer {name}"), ExceptionContext(f"inner {name}"):
                if wait:
                    started.set()
                    await asyncio.sleep(0.05)
                else:
                    await started.wait()
                raise ValueError(name)
        except ValueError as exc:
            return exc

    first, second = await asyncio.gather(row("a", True), row("b", False))
    assert error_context(first) == ["outer a", "inner a"]
    assert error_context(second) == ["outer b", "inner b"]
    with ExceptionContext("left"):
        pass
    try:
        with ExceptionContext("next"):
            raise KeyError("x")
    except KeyError as exc:
        assert error_context(exc) == ["next"]  # a closed block leaves nothing behind


async def test_registry_model_has_the_seed_interface() -> None:
    """`registry.model(name)`: `infer` answers as text, `metadata()` names the model."""
    from masksql_pipe.lm.registry import ModelRegistry

    model = ModelRegistry({}, {}).model("echo")
    assert model.metadata() == {"name": "echo", "model": "echo", "offline": True}
    assert await model.infer([{"role": "user", "content": "hi"}]) == "hi"
    perfect = ModelRegistry({}, {}).model("perfect")
    assert await perfect.infer([{"role": "user", "content": "q"}], None, oracle="7") == "7"
