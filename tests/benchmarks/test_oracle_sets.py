"""benchmarks/oracle_sets.py: the oracle's figures per dataset folder, read from the run's files,
the folders themselves untouched, a folder that fails named with a non-zero exit."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.helpers_files import snapshot

SCRIPT = ROOT / "benchmarks" / "oracle_sets.py"
SAMPLE_ROWS = len(json.loads((ROOT / "data" / "1_input.json").read_text(encoding="utf-8")))
BIRD_ROWS = len(json.loads((ROOT / "data" / "bird" / "dev.json").read_text(encoding="utf-8")))


def load_script():  # type: ignore[no-untyped-def]
    """The script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("oracle_sets", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def spider_copy(dest: Path) -> Path:
    """The shipped Spider-layout sample: questions, schema file and databases."""
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "data" / "1_input.json", dest / "1_input.json")
    shutil.copy(ROOT / "data" / "tables.json", dest / "tables.json")
    shutil.copytree(ROOT / "data" / "databases", dest / "databases")
    return dest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )


def test_shipped_samples_score_every_row_with_the_oracle(tmp_path: Path) -> None:
    spider = spider_copy(tmp_path / "spider")
    bird = tmp_path / "bird"
    shutil.copytree(ROOT / "data" / "bird", bird)
    before = snapshot(tmp_path)
    out = tmp_path / "figures.json"
    proc = run(str(spider), str(bird), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = "folder rows EA leaking guard-blocked rewrites errors"
    assert lines[0].split() == header.split()
    ea = f"100.0% ({SAMPLE_ROWS}/{SAMPLE_ROWS})"
    assert lines[1].split() == [str(spider), str(SAMPLE_ROWS), *ea.split(), "0", "-", "-", "-"]
    assert lines[2].split()[:4] == [
        str(bird),
        str(BIRD_ROWS),
        "100.0%",
        f"({BIRD_ROWS}/{BIRD_ROWS})",
    ]
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures[str(spider)]["exec_acc"] == 1.0
    assert figures[str(spider)]["rows"] == SAMPLE_ROWS
    assert figures[str(bird)]["errors"] == {}
    assert snapshot(tmp_path) == {**before, "figures.json": snapshot(tmp_path)["figures.json"]}


def test_a_folder_that_fails_is_named_and_the_others_still_measured(tmp_path: Path) -> None:
    good = spider_copy(tmp_path / "good")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "1_input.json").write_text("[{", encoding="utf-8")
    proc = run(str(broken), str(good))
    assert proc.returncode == 1
    failures = [line for line in proc.stderr.splitlines() if "oracle_sets:" in line]
    assert len(failures) == 1 and str(broken) in failures[0], proc.stderr
    assert any(line.split()[:1] == [str(good)] for line in proc.stdout.splitlines())


def test_guard_causes_grouped_and_local_rewrites_counted() -> None:
    module = load_script()
    base = {"exec_acc": 0, "leaks": []}

    def blocked(message: str) -> dict[str, object]:
        error = {"stage": "GenerateSymbolicSql", "type": "GuardBlocked", "message": message}
        return {**base, "pipe_error": error}

    rows = [
        blocked("privacy guard: the schema part holds 3 word(s) that are not symbols"),
        blocked("privacy guard: the schema part holds 1 word(s) that are not symbols"),
        blocked("privacy guard (block): the question still carries 2 sensitive item(s)"),
        {**base, "pipe_error": {"stage": "RankSchemaItems", "type": "ReplyParseError"}},
        {**base, "exec_acc": 1, "symbolic_sql": "SELECT C2", "symbolic_sql_unaligned": "SELECT C1"},
        {**base, "symbolic_sql": "SELECT C1", "symbolic_sql_unaligned": "SELECT C1"},
        {**base, "exec_acc": 1, "pred_sql_before_repair": "SELEC 1", "values_dropped": ["x"]},
        {**base, "leaks": [{"kind": "name", "text": "t"}]},
    ]
    f = module.figures(rows)
    assert (f["rows"], f["correct"], f["leaking_rows"]) == (8, 2, 1)
    assert f["guard_blocked"] == {
        "privacy guard: the schema part holds": 2,
        "privacy guard (block): the question still carries": 1,
    }
    assert f["rewrites"] == {
        "aligned": 1,
        "values_dropped": 1,
        "schema_fallback": 0,
        "symbolic_repair": 0,
        "sql_repair": 1,
    }
    assert f["errors"] == {
        "GenerateSymbolicSql/GuardBlocked": 3,
        "RankSchemaItems/ReplyParseError": 1,
    }
