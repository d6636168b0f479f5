"""The MaskSQL pipeline against a real OpenAI-compatible server on 127.0.0.1 (real openai client,
real subprocess): replaying the oracle's answers reaches 100%, and hostile SQL answers
(DROP TABLE, ATTACH, a runaway recursive CTE) are reported on the rows without harm."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from masksql_pipe.loopback.server import LoopbackServer, prompt_id
from tests.conftest import cli, load
from tests.masksql.test_pipeline import LAST, copy_data, recomputed_accuracy

SERVER_MODELS = ["models.slm=local-slm", "models.llm=remote-llm"]


def prompt_logs(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Prompt log entries of every model stage, by stage key."""
    logs = {}
    for path in sorted((folder / ".masksql_pipe" / "prompts").glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        logs[path.stem] = [json.loads(line) for line in lines]
    return logs


def last_user(messages: list[dict[str, Any]]) -> str:
    return [m["content"] for m in messages if m["role"] == "user"][-1]


@pytest.fixture(scope="module")
def oracle_answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the oracle pipeline once; its prompt -> reply pairs, per stage."""
    folder = copy_data(tmp_path_factory.mktemp("recorded") / "data")
    proc = cli("--data", str(folder), cwd=folder.parent)
    assert proc.returncode == 0, proc.stderr
    logs = prompt_logs(folder)
    replies = {last_user(e["messages"]): e["reply"] for entries in logs.values() for e in entries}
    return {"logs": logs, "replies": replies}


def server_env(server: LoopbackServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "test-key"}


def test_replayed_answers_over_http_reach_full_accuracy(
    oracle_answers: dict[str, Any], tmp_path: Path
) -> None:
    replies = oracle_answers["replies"]
    expected = {
        prompt_id(e["messages"]) for entries in oracle_answers["logs"].values() for e in entries
    }
    assert len(expected) > 100
    folder = copy_data(tmp_path / "data")
    with LoopbackServer(reply=lambda messages: replies.get(last_user(messages), "")) as server:
        proc = cli("--data", str(folder), *SERVER_MODELS, cwd=tmp_path, env=server_env(server))
        assert proc.returncode == 0, proc.stderr
        received = server.requests_by_prompt()
    assert set(received) == expected
    assert server.requests >= len(expected)
    assert "models: slm=local-slm llm=remote-llm" in proc.stderr
    rows = load(folder / LAST)
    assert sum(r["exec_acc"] for r in rows) == 33
    assert recomputed_accuracy(folder, rows) == 1.0
    results = load(folder / "results.json")
    assert results["exec_acc"] == 1.0
    assert results["models"] == {"slm": "local-slm", "llm": "remote-llm"}
    # usage counted from the server's token figures, and the key never written anywhere
    assert results["tokens"]["total"] > 0
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl"):
            assert "test-key" not in path.read_text(encoding="utf-8", errors="replace")


HOSTILE = {
    "drop": "DROP TABLE T1",
    "attach": "ATTACH DATABASE 'evil.sqlite' AS evil",
    "cte": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
}


def hostile_kind(prompt: str) -> str:
    """Which hostile answer a prompt of rows 0-2 gets (by words its question keeps masked)."""
    if "How many" in prompt:
        return "drop"
    if "older" in prompt:
        return "cte"
    return "attach"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hostile_sql_answers_are_reported_and_harmless(
    oracle_answers: dict[str, Any], tmp_path: Path
) -> None:
    replies = oracle_answers["replies"]
    sql_stage = {last_user(e["messages"]) for e in oracle_answers["logs"]["11_GenerateSymbolicSql"]}

    def reply(messages: list[dict[str, Any]]) -> str:
        prompt = last_user(messages)
        if prompt in replies and prompt not in sql_stage:
            return replies[prompt]  # ranking, values, links, attack: as the oracle answered
        sql = HOSTILE[hostile_kind(prompt)]  # every SQL-writing call gets hostile SQL
        if "T1, T2 ..." not in prompt:  # the local repair prompt shows real names
            sql = sql.replace("T1", "singer")
        return "```sql\n" + sql + "\n```"

    folder = copy_data(tmp_path / "data")
    dbs = sorted(folder.glob("databases/*/*.sqlite"))
    before = {db: sha256(db) for db in dbs}
    args = ["--data", str(folder), "--limit", "3", "execution.timeout=0.5", *SERVER_MODELS]
    with LoopbackServer(reply=reply) as server:
        proc = cli(*args, cwd=tmp_path, env=server_env(server))
    assert proc.returncode == 0, proc.stderr
    rows = load(folder / LAST)
    assert [hostile_kind(r["question"]) for r in rows] == ["drop", "attach", "cte"]
    by_kind = {hostile_kind(r["question"]): r for r in rows}
    for kind in ("drop", "attach"):
        row = by_kind[kind]
        # the local check caught it and asked the remote model for a repair (still hostile)
        assert row["symbolic_sql_problems"] and "not authorized" in row["symbolic_sql_problems"][0]
        assert row["symbolic_sql_draft"] == HOSTILE[kind]
        assert "not authorized" in row["execution_before_repair"]["error"]
        assert "not authorized" in row["execution"]["error"]
        assert row["pred_sql_before_repair"] == HOSTILE[kind].replace("T1", "singer")
        assert row["pred_sql"] == HOSTILE[kind].replace("T1", "singer")
    cte = by_kind["cte"]
    assert cte["symbolic_sql_problems"] == []  # it compiles; only running it shows the problem
    assert "timed out" in cte["execution_before_repair"]["error"]
    assert "timed out" in cte["pred_error"]
    for row in rows:
        assert row["exec_acc"] == 0
        assert row["pred_error"]
        assert row["gold_error"] is None
    assert {db: sha256(db) for db in dbs} == before
    assert not list(tmp_path.rglob("evil.sqlite"))
    assert not list(Path.cwd().glob("evil.sqlite"))
    results = load(folder / "results.json")
    assert results["exec_acc"] == 0.0 and results["errors"]["rows"] == 0
