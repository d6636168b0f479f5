"""MaskSQL's privacy promise against small models that fail: the remote model never sees a real
name, database value or question number, whatever the small model answers (loopback server,
real openai client, real CLI subprocess); block mode sends nothing; the leak audit finds a
planted leak and reports zero on a clean run; the unmasked baseline."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from masksql_pipe.loopback.server import LoopbackServer
from stages.pipelines.masksql import LLM_STAGES
from stages.sql.symbols import SymbolTable
from tests.conftest import cli, load
from tests.masksql.test_loopback import SERVER_MODELS, last_user, prompt_logs, server_env
from tests.masksql.test_pipeline import copy_data


def last_file(folder: Path) -> Path:
    """The run's final file (`N_Results.json`, whatever N the stage list gives)."""
    (path,) = folder.glob("*_Results.json")
    return path


def stage_number(folder: Path, name: str) -> int:
    (path,) = folder.glob(f"*_{name}.json")
    return int(path.name.split("_")[0])


def is_llm_log(stage_key: str) -> bool:
    return stage_key.split("_", 1)[1] in LLM_STAGES


def is_llm_prompt(prompt: str) -> bool:
    """The llm-role prompts are the ones that describe symbols (their templates say so)."""
    return "T1, T2 ..." in prompt


def secrets_of(folder: Path) -> dict[str, set[str]]:
    """Every table/column name (and its `_` -> space form) and every text cell of the sample,
    read straight from tables.json and the SQLite files (not through the code under test)."""
    names: set[str] = set()
    for entry in load(folder / "tables.json"):
        names.update(entry["table_names_original"])
        names.update(c for t, c in entry["column_names_original"] if t >= 0)
    names |= {n.replace("_", " ") for n in names}
    values: set[str] = set()
    for db in folder.glob("databases/*/*.sqlite"):
        with sqlite3.connect(db) as con:
            tables = [
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for name in tables:
                for cells in con.execute(f'SELECT * FROM "{name}"'):
                    values.update(
                        c.strip()
                        for c in cells
                        if isinstance(c, str) and (len(c.strip()) >= 3 or not c.strip().isalpha())
                    )
    return {"name": {n for n in names if n.strip()}, "value": {v for v in values if v}}


def mentions(text: str, needle: str) -> bool:
    return bool(re.search(r"(?<!\w)" + re.escape(needle) + r"(?!\w)", text, re.IGNORECASE))


def leaks_in_llm_prompts(folder: Path) -> tuple[list[tuple[str, int, str, str]], int]:
    """(stage, row, kind, text) for every secret in a logged llm prompt; and prompts checked."""
    secrets = secrets_of(folder)
    questions = load(folder / "2_LimitJson.json")
    found = []
    checked = 0
    for stage, entries in prompt_logs(folder).items():
        if not is_llm_log(stage):
            continue
        for entry in entries:
            text = "\n".join(m["content"] for m in entry["messages"] if m["role"] == "user")
            checked += 1
            for kind, items in secrets.items():
                found += [(stage, entry["row"], kind, s) for s in items if mentions(text, s)]
            question = questions[entry["row"]]["question"]
            for number in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?!\w)", question):
                if mentions(text, number):
                    found.append((stage, entry["row"], "number", number))
    return found, checked


def run_with(folder: Path, reply: Any, *args: str) -> tuple[Any, LoopbackServer]:
    with LoopbackServer(reply=reply) as server:
        proc = cli(
            "--data", str(folder), *SERVER_MODELS, "--max-errors", "1000", *args,
            cwd=folder.parent, env=server_env(server),
        )  # fmt: skip
    return proc, server


def empty_small_model(messages: list[dict[str, Any]]) -> str:
    """A small model that finds nothing (well-formed empty replies); the llm answers SQL."""
    prompt = last_user(messages)
    if is_llm_prompt(prompt):
        if "Guess the original" in prompt:
            return "{}"
        return "```sql\nSELECT count(*) FROM T1\n```"
    return "[]"


def test_small_model_that_finds_nothing_leaks_nothing(tmp_path: Path) -> None:
    folder = copy_data(tmp_path / "data")
    proc, _ = run_with(folder, empty_small_model)
    assert proc.returncode == 0, proc.stderr
    found, checked = leaks_in_llm_prompts(folder)
    assert checked >= 66  # every row's SQL prompt and attack prompt were checked
    assert found == []
    rows = load(last_file(folder))
    # the guard stepped in for the values and numbers the small model did not find ...
    kinds = {f["kind"] for r in rows for f in r.get("privacy_guard", {}).get("question", [])}
    assert {"value", "number"} <= kinds
    # ... and the audit, reading the same prompt logs, agrees
    audit = load(folder / "results.json")["privacy"]["leak_audit"]
    assert audit["audited_rows"] == 33 and audit["rows_with_leaks"] == 0
    assert audit["prompts"] >= 66


def test_every_request_answered_with_an_empty_list_leaks_nothing(tmp_path: Path) -> None:
    """Both roles on a server that answers `[]` to everything: no SQL comes back (the rows fail
    at GenerateSymbolicSql), but every llm prompt that went out is clean."""
    folder = copy_data(tmp_path / "data")
    proc, server = run_with(folder, lambda messages: "[]")
    assert proc.returncode == 0, proc.stderr
    found, checked = leaks_in_llm_prompts(folder)
    assert checked >= 33 and found == []
    audit = load(folder / "results.json")["privacy"]["leak_audit"]
    assert audit["audited_rows"] == 33 and audit["rows_with_leaks"] == 0
    assert server.requests > 33


def bogus_small_model(messages: list[dict[str, Any]]) -> str:
    """A small model that drops needed columns, invents values and links nonsense; the llm
    uses a value symbol as an alias, then repairs."""
    prompt = last_user(messages)
    if is_llm_prompt(prompt):
        if "Guess the original" in prompt:
            return "```json\n{}\n```"
        if "does not compile" in prompt:
            return "Fixed:\n```sql\nSELECT C1 FROM T1\n```"
        return "Draft:\n```sql\nSELECT C1\n```\nFinal:\n```sql\nSELECT C1 AS V1 FROM T1\n```"
    if "Pick the tables and columns" in prompt:  # ranking keeps one column of one table
        return '```json\n{"singer": ["singer_id"], "student": [], "Städte": ["Name"]}\n```'
    if "Find the literal values" in prompt:
        return '```json\n["singers", "singer.name", "10", "stadium_id"]\n```'
    if "Say which column" in prompt:
        return '```json\n{"singers": "singer.age"}\n```'
    if "Link the words" in prompt:
        return '```json\n{"stadium_id": "singer.name", "home": "singer"}\n```'
    return "I am not sure how to answer that."


def test_bogus_small_model_leaks_nothing_and_symbol_misuse_is_repaired(tmp_path: Path) -> None:
    folder = copy_data(tmp_path / "data")
    proc, _ = run_with(folder, bogus_small_model)
    assert proc.returncode == 0, proc.stderr
    found, checked = leaks_in_llm_prompts(folder)
    assert checked >= 66
    assert found == []
    rows = load(last_file(folder))
    by_question = {r["question"]: r for r in rows}
    home = by_question["What is the home town of Liam O'Brien?"]
    # ranking dropped "Home Town": the guard masked it anyway and the schema grew by it
    assert "Home Town" in home["filtered_schema"]["singer"]
    assert any(f["text"] == "home town" for f in home["privacy_guard"]["question"])
    # invented values are dropped and counted
    assert "singer.name" in home["values_dropped"] and "10" in home["values_dropped"]
    # `AS V1` was caught locally and sent for repair
    assert any("alias" in p for p in rows[0]["symbolic_sql_problems"])
    assert rows[0]["symbolic_sql_draft"] == "SELECT C1 AS V1 FROM T1"
    assert load(folder / "results.json")["privacy"]["leak_audit"]["rows_with_leaks"] == 0


def test_block_mode_records_an_error_and_sends_nothing(tmp_path: Path) -> None:
    folder = copy_data(tmp_path / "data")
    # rows 1-3 name a database value (France, Liam O'Brien) that the small model misses
    args = ["--start", "1", "--limit", "3", "privacy.guard=block"]
    proc, server = run_with(folder, empty_small_model, *args)
    assert proc.returncode == 0, proc.stderr
    sent = [json.loads(p) for p in server.requests_by_prompt()]
    assert sent  # the small model was asked ...
    assert not [m for m in sent if is_llm_prompt(last_user(m))]  # ... the remote model never
    rows = load(last_file(folder))
    assert len(rows) == 3
    for row in rows:
        assert row["pipe_error"]["stage"] == "AddSymbolicQuestion"
        assert row["pipe_error"]["type"] == "GuardBlocked"
        assert "prompt not sent" in row["pipe_error"]["message"]
    assert not (folder / ".masksql_pipe" / "prompts" / "11_GenerateSymbolicSql.jsonl").exists() or (
        prompt_logs(folder)["11_GenerateSymbolicSql"] == []
    )


def test_reply_without_sql_is_a_failed_call_not_the_rows_sql(tmp_path: Path) -> None:
    folder = copy_data(tmp_path / "data")

    def reply(messages: list[dict[str, Any]]) -> str:
        prompt = last_user(messages)
        if is_llm_prompt(prompt):
            return "I am not sure how to answer that."
        return "[]"

    proc, _ = run_with(folder, reply, "--limit", "2")
    assert proc.returncode == 0, proc.stderr
    rows = load(last_file(folder))
    for row in rows:
        assert row["pipe_error"]["stage"] == "GenerateSymbolicSql"
        assert "no SQL in reply" in row["pipe_error"]["message"]
        assert "symbolic_sql" not in row and "pred_sql" not in row
    # the tokens those rows spent still count in the results
    results = load(folder / "results.json")
    assert results["tokens"]["total"] == sum(r["total_toks"] for r in rows) > 0


@pytest.fixture(scope="module")
def oracle_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = copy_data(tmp_path_factory.mktemp("oracle") / "data")
    proc = cli("--data", str(folder), cwd=folder.parent)
    assert proc.returncode == 0, proc.stderr
    return folder


def test_leak_audit_is_zero_on_a_clean_run_and_finds_a_planted_leak(
    oracle_folder: Path,
) -> None:
    results = load(oracle_folder / "results.json")
    assert results["exec_acc"] == 1.0
    audit = results["privacy"]["leak_audit"]
    assert audit == {**audit, "audited_rows": 33, "rows_with_leaks": 0}
    assert audit["prompts"] >= 66
    rows = load(last_file(oracle_folder))
    index = {r["question"]: i for i, r in enumerate(rows)}
    planted = {
        index[
            "What is the home town of Liam O'Brien?"
        ]: "Who is T1 in the home town of Liam O'Brien?",
        index["List the singer names and concert names of all concerts in 2014."]: "V1 or 2014?",
        index["List the instructors whose name starts with Mar."]: "LIKE 'Mar%'",
    }
    log = oracle_folder / ".masksql_pipe" / "prompts" / "11_GenerateSymbolicSql.jsonl"
    with log.open("a", encoding="utf-8") as handle:
        for row, text in planted.items():
            entry = {"row": row, "messages": [{"role": "user", "content": text}], "reply": ""}
            handle.write(json.dumps(entry) + "\n")
    before_audit = str(stage_number(oracle_folder, "AuditLeaks") - 1)
    proc = cli("--data", str(oracle_folder), "--from", before_audit, cwd=oracle_folder.parent)
    assert proc.returncode == 0, proc.stderr
    rows = load(last_file(oracle_folder))
    leaks = {
        i: {(x["kind"], x["text"]) for x in r["leaks"]} for i, r in enumerate(rows) if r["leaks"]
    }
    home, concerts, mar = planted
    assert leaks == {
        home: {("name", "home town"), ("value", "Liam O'Brien")},
        concerts: {("number", "2014")},
        mar: {("literal", "Mar")},
    }
    assert all(x["stage"] == "GenerateSymbolicSql" for r in rows for x in r["leaks"])
    audit = load(oracle_folder / "results.json")["privacy"]["leak_audit"]
    assert audit["rows_with_leaks"] == 3
    assert audit["by_kind"] == {"name": 1, "value": 1, "number": 1, "literal": 1}
    assert "rows with a leak (audit)" in proc.stdout + proc.stderr
    # the experiment summary and the HTML report show the audit first among their figures
    summary = cli("summarize", "latest", "--data", str(oracle_folder), cwd=oracle_folder.parent)
    assert "rows with a leak in an llm prompt (audit)" in summary.stdout
    assert "3/33" in summary.stdout
    report = cli("report", "latest", "--data", str(oracle_folder), cwd=oracle_folder.parent)
    assert report.returncode == 0, report.stderr
    (page,) = (oracle_folder / ".masksql_pipe" / "runs").glob("*.html")
    html = page.read_text(encoding="utf-8")
    assert '<section id="figures">' in html and "3/33" in html


def test_unmasked_baseline_scores_full_and_its_prompts_carry_real_data(tmp_path: Path) -> None:
    listed = cli("pipelines", cwd=tmp_path)
    assert "unmasked" in listed.stdout
    folder = copy_data(tmp_path / "data")
    proc = cli("--data", str(folder), "--pipeline", "unmasked", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "UNMASKED baseline" in proc.stderr
    results = load(folder / "results.json")
    assert results["exec_acc"] == 1.0 and results["privacy"]["masked"] is False
    assert results["privacy"]["leak_audit"]["rows_with_leaks"] == 33
    found, _ = leaks_in_llm_prompts(folder)
    assert {kind for *_, kind, _ in found} >= {"name", "value", "number"}


@pytest.mark.parametrize("mode", ["mask", "block"])
def test_final_check_guards_a_hand_edited_question(tmp_path: Path, mode: str) -> None:
    """A symbolic question edited by hand after the guard ran is still guarded where the llm
    prompt is built (GenerateSymbolicSql): masked in mask mode, the row fails in block mode."""
    folder = copy_data(tmp_path / "data")
    args = ["--data", str(folder), "--limit", "3", f"privacy.guard={mode}", "--max-errors", "9"]
    assert cli(*args, cwd=tmp_path).returncode == 0
    (edited,) = folder.glob("*_AddSymbolicQuestion.json")
    rows = load(edited)
    rows[1]["symbolic_question"] = rows[1]["question"]  # "... singers from France?"
    edited.write_text(json.dumps(rows), encoding="utf-8")
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    found, _ = leaks_in_llm_prompts(folder)
    assert found == []
    row = load(last_file(folder))[1]
    if mode == "mask":
        masked = {f["text"] for f in row["privacy_guard"]["GenerateSymbolicSql"]}
        assert {"France", "singers"} <= masked and row["exec_acc"] == 1
    else:
        assert row["pipe_error"]["stage"] == "GenerateSymbolicSql"
        assert row["pipe_error"]["type"] == "GuardBlocked"


def test_a_value_on_the_wrong_column_is_moved_to_its_own(tmp_path: Path) -> None:
    """A generated query comparing France with the wrong column (as Qwen 1.5B wrote it) is
    aligned locally before it runs: the row scores, and the change is recorded."""
    folder = copy_data(tmp_path / "data")
    args = ["--data", str(folder), "--limit", "3", "--max-errors", "9"]
    assert cli(*args, cwd=tmp_path).returncode == 0
    (generated,) = folder.glob("*_GenerateSymbolicSql.json")
    rows = load(generated)
    row = rows[1]  # "What are the names and ages of singers from France?"
    symbols = SymbolTable.from_dict(row["symbols"])
    right = symbols.item_symbol("singer.country").split(".")[1]
    wrong = symbols.column_symbol("name")
    assert f"{right} = V1" in row["symbolic_sql"]
    row["symbolic_sql"] = row["symbolic_sql"].replace(f"{right} = V1", f"{wrong} = V1")
    generated.write_text(json.dumps(rows), encoding="utf-8")
    assert cli(*args, cwd=tmp_path).returncode == 0
    final = load(last_file(folder))[1]
    assert final["symbolic_sql_unaligned"] == row["symbolic_sql"]
    assert final["value_columns_aligned"] and final["exec_acc"] == 1
