"""The MaskSQL pipeline through the real CLI on a copy of the sample data: oracle accuracy,
--schema full, per-row dataset errors, privacy of the remote prompts, and config errors."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, cli, load, write_rows

DATA = ROOT / "data"
STAGES = [
    "LimitJson",
    "RankSchemaItems",
    "AddFilteredSchema",
    "AddSymbolTable",
    "DetectValues",
    "LinkValues",
    "LinkSchema",
    "AddSymbolicSchema",
    "AddSymbolicQuestion",
    "GenerateSymbolicSql",
    "RepairSymbolicSql",
    "AddConcreteSql",
    "ExecuteConcreteSql",
    "RepairSql",
    "CalcExecAcc",
    "AddInferenceAttack",
    "AddQuestionAttack",
    "AuditLeaks",
    "Results",
]
LAST = f"{len(STAGES) + 1}_Results.json"


def copy_data(dest: Path) -> Path:
    """A fresh copy of the sample dataset (the repository's data/ is never written)."""
    dest.mkdir(parents=True)
    shutil.copy(DATA / "1_input.json", dest / "1_input.json")
    shutil.copy(DATA / "tables.json", dest / "tables.json")
    shutil.copytree(DATA / "databases", dest / "databases")
    return dest


def plain_rows(db: Path, sql: str) -> Counter[tuple[Any, ...]]:
    """Rows of `sql` on a copy of `db`, as a multiset, through plain sqlite3 (floats rounded)."""
    with sqlite3.connect(db) as con:
        rows = con.execute(sql).fetchall()
    return Counter(tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows)


def recomputed_accuracy(folder: Path, rows: list[dict[str, Any]]) -> float:
    """Execution accuracy recomputed independently: run gold and predicted SQL with sqlite3."""
    good = 0
    for row in rows:
        if "pipe_error" in row:
            continue
        db = folder / "databases" / row["db_id"] / f"{row['db_id']}.sqlite"
        if plain_rows(db, row["query"]) == plain_rows(db, row["pred_sql"]):
            good += 1
    return good / len(rows)


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One oracle run of the whole pipeline on the sample, with gold_links on two rows."""
    folder = copy_data(tmp_path_factory.mktemp("oracle") / "data")
    rows = load(folder / "1_input.json")
    rows[0]["gold_links"] = ["singers", "have"]  # "have" is no schema word: stays unmasked
    rows[1]["gold_links"] = ["France", "singers"]
    write_rows(folder / "1_input.json", rows)
    proc = cli("--data", str(folder), cwd=folder.parent, env={"COLUMNS": "200"})
    return {"folder": folder, "proc": proc}


def test_oracle_run_reaches_full_accuracy(oracle_run: dict[str, Any]) -> None:
    folder, proc = oracle_run["folder"], oracle_run["proc"]
    assert proc.returncode == 0, proc.stderr
    assert "models: slm=oracle llm=oracle (offline oracle" in proc.stderr
    assert "MaskSQL results" in proc.stdout and "100.00% (33/33)" in proc.stdout
    expected = ["1_input.json"] + [f"{i + 2}_{name}.json" for i, name in enumerate(STAGES)]
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(
        [*expected, "results.json", "tables.json"]
    )
    rows = load(folder / LAST)
    assert len(rows) == 33
    assert sum(r["exec_acc"] for r in rows) == 33
    assert recomputed_accuracy(folder, rows) == 1.0
    results = load(folder / "results.json")
    assert results["rows"] == 33 and results["exec_acc"] == 1.0
    assert results["errors"] == {"rows": 0, "by_stage": {}}
    assert results["tokens"]["total"] == sum(r["total_toks"] for r in rows) > 0
    # the offline oracle attacker answers nothing: no symbol re-identified
    assert results["privacy"]["reidentification_rate"] == 0.0
    symbols = sum(
        len(r["symbols"]["tables"]) + len(r["symbols"]["columns"]) + len(r["symbols"]["values"])
        for r in rows
    )
    assert results["privacy"]["symbols"] == symbols
    # 3 of the 4 annotated terms are masked ("have" is not a schema word)
    assert results["privacy"]["mask_coverage"] == 0.75
    assert results["privacy"]["annotated_terms"] == 4
    # no repair was needed with gold answers: no model call in the repair stages
    assert all(r["symbolic_sql_problems"] == [] for r in rows)
    assert not any("pred_sql_before_repair" in r for r in rows)


def test_oracle_rows_are_masked(oracle_run: dict[str, Any]) -> None:
    rows = load(oracle_run["folder"] / LAST)
    by_id = {r["question_id"]: r for r in rows}
    row = by_id[2]  # What are the names and ages of singers from France?
    symbols = row["symbols"]
    france = [s for s, v in symbols["values"].items() if v["value"] == "France"]
    assert len(france) == 1
    assert "France" not in row["symbolic_question"]
    assert france[0] in row["symbolic_question"]
    assert row["pred_sql"].count("'France'") == 1
    assert row["execution"]["ok"] is True


def _sample_names_and_values(folder: Path) -> set[str]:
    """Every table and column name of tables.json, every literal of the gold SQL (LIMIT counts
    aside), and every text cell (3+ characters) of the sample databases."""
    found: set[str] = set()
    for entry in load(folder / "tables.json"):
        found.update(entry["table_names_original"])
        found.update(name for _, name in entry["column_names_original"] if name != "*")
    for row in load(folder / "1_input.json"):
        sql = re.sub(r"(?i)\bLIMIT\s+\d+", "", row["query"])
        found.update(m.replace("''", "'").strip("%") for m in re.findall(r"'((?:[^']|'')*)'", sql))
        found.update(re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", sql))
    for db in folder.glob("databases/*/*.sqlite"):
        with sqlite3.connect(db) as con:
            names = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for name in names:
                for cells in con.execute(f'SELECT * FROM "{name}"'):
                    found.update(c for c in cells if isinstance(c, str) and len(c) >= 3)
    return {f for f in found if f.strip()}


def test_remote_model_sees_no_real_names_or_values(oracle_run: dict[str, Any]) -> None:
    folder = oracle_run["folder"]
    secrets = _sample_names_and_values(folder)
    assert {"singer", "Home Town", "Liam O'Brien", "France", "Bürgermeister", "2014"} <= secrets
    prompts = folder / ".masksql_pipe" / "prompts"
    checked = 0
    for stage in ("11_GenerateSymbolicSql", "12_RepairSymbolicSql", "17_AddInferenceAttack"):
        path = prompts / f"{stage}.jsonl"
        if stage == "12_RepairSymbolicSql" and not path.exists():
            continue  # no repair was asked for
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = load_line(line)
            text = "\n".join(m["content"] for m in entry["messages"])
            text = re.sub(r"(?i)\bLIMIT\s+\d+", "", text)  # the template's examples: no secret
            leaks = [
                s
                for s in secrets
                if re.search(r"(?<!\w)" + re.escape(s) + r"(?!\w)", text, re.IGNORECASE)
            ]
            assert leaks == [], (stage, entry["row"], leaks)
            checked += 1
    assert checked == 66
    # the generation prompt locates the question's symbols (symbols only, checked above)
    generate = (prompts / "11_GenerateSymbolicSql.jsonl").read_text(encoding="utf-8")
    assert "Symbols in the question: T" in generate and ": a column of T" in generate
    # the local small model does see real names: the check itself can fail
    local = (prompts / "3_RankSchemaItems.jsonl").read_text(encoding="utf-8")
    assert "singer" in local


def load_line(line: str) -> dict[str, Any]:
    import json

    return json.loads(line)


def test_full_schema_reaches_full_accuracy(tmp_path: Path) -> None:
    folder = copy_data(tmp_path / "data")
    proc = cli("--data", str(folder), "schema=full", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "schema: full" in proc.stderr
    rows = load(folder / LAST)
    assert sum(r["exec_acc"] for r in rows) == 33
    assert recomputed_accuracy(folder, rows) == 1.0
    tables = {e["db_id"]: e for e in load(folder / "tables.json")}
    for row in rows:  # the whole schema was kept, without a model call
        entry = tables[row["db_id"]]
        assert len(row["symbols"]["tables"]) == len(entry["table_names_original"])
    assert not (folder / ".masksql_pipe" / "prompts" / "3_RankSchemaItems.jsonl").read_text()
    assert load(folder / "results.json")["exec_acc"] == 1.0


def test_missing_database_and_schema_entry_are_row_errors(tmp_path: Path) -> None:
    folder = copy_data(tmp_path / "data")
    rows = load(folder / "1_input.json")
    rows[0]["db_id"] = "no_such_db"
    write_rows(folder / "1_input.json", rows)
    shutil.rmtree(folder / "databases" / "deutsche_staedte")
    german = sum(1 for r in rows if r["db_id"] == "deutsche_staedte")
    assert german == 8
    proc = cli("--data", str(folder), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # rows failed: more than --max-errors 0
    assert "9 rows failed" in proc.stderr
    out = load(folder / LAST)
    assert len(out) == 33
    first = out[0]["pipe_error"]
    assert first["stage"] == "RankSchemaItems"
    assert "no schema for db_id 'no_such_db'" in first["message"]
    assert "tables.json" in first["message"]
    failed_db = [r for r in out if r["db_id"] == "deutsche_staedte"]
    for row in failed_db:  # the privacy guard needs the database's values: no prompt goes out
        assert row["pipe_error"]["stage"] == "AddSymbolicQuestion"
        assert (
            "database file not found for db_id 'deutsche_staedte'" in row["pipe_error"]["message"]
        )
        assert "deutsche_staedte.sqlite" in row["pipe_error"]["message"]
    scored = [r for r in out if "pipe_error" not in r]
    assert len(scored) == 33 - 1 - 8
    assert all(r["exec_acc"] == 1 for r in scored)
    results = load(folder / "results.json")
    assert results["correct"] == 24
    assert results["exec_acc"] == round(24 / 33, 6)
    assert results["errors"]["by_stage"] == {"RankSchemaItems": 1, "AddSymbolicQuestion": 8}


def test_wrong_model_or_setting_fails_before_any_row(tmp_path: Path) -> None:
    folder = copy_data(tmp_path / "data")
    proc = cli("--data", str(folder), "models.llm=no-such-model", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no-such-model" in proc.stderr and "OPENAI_API_KEY" in proc.stderr
    assert sorted(p.name for p in folder.glob("*.json")) == ["1_input.json", "tables.json"]
    proc = cli("--data", str(folder), "schema=partial", cwd=tmp_path)
    assert proc.returncode == 2
    assert "setting 'schema' must be 'ranked', 'full' or 'resdsql'" in proc.stderr
    proc = cli("--data", str(folder), "execution.timeout=-1", cwd=tmp_path)
    assert proc.returncode == 2 and "execution.timeout" in proc.stderr


def test_models_default_from_environment(tmp_path: Path) -> None:
    folder = copy_data(tmp_path / "data")
    proc = cli("--data", str(folder), "--limit", "2", cwd=tmp_path, env={"SLM_MODEL": "perfect"})
    assert proc.returncode == 0, proc.stderr
    assert "models: slm=perfect llm=oracle" in proc.stderr
    rows = load(folder / LAST)
    assert len(rows) == 2 and all(r["exec_acc"] == 1 for r in rows)
