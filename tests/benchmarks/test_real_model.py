"""benchmarks/real_model.py: the seeded one-per-database sample, the per-question file, EA with
intervals and the exact McNemar p-value, `--compare` of two runs; end to end against the
project's loopback server on three questions of the shipped sample."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from masksql_pipe.experiment.stats import mcnemar_exact
from masksql_pipe.loopback.server import LoopbackServer
from stages.answers.replies import render_sql_reply
from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "real_model.py"


def load_script():  # type: ignore[no-untyped-def]
    """The script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("real_model", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )


ROWS = [{"db_id": f"db{i % 7}", "question": f"q{i}", "query": "SELECT 1"} for i in range(40)]


def test_sample_is_seeded_one_per_database_and_grows_by_adding() -> None:
    module = load_script()
    five = module.sample_indices(ROWS, 5, seed=3)
    assert five == module.sample_indices(ROWS, 5, seed=3)
    assert len(five) == 5 and five == sorted(five)
    assert len({ROWS[i]["db_id"] for i in five}) == 5
    assert set(five) <= set(module.sample_indices(ROWS, 6, seed=3))
    every = module.sample_indices(ROWS, 0, seed=3)
    assert sorted(ROWS[i]["db_id"] for i in every) == sorted({r["db_id"] for r in ROWS})
    assert module.sample_indices(ROWS, 50, seed=3) == every
    databases = {
        frozenset(ROWS[i]["db_id"] for i in module.sample_indices(ROWS, 3, seed=s))
        for s in range(6)
    }
    assert len(databases) > 1  # the seed picks the databases, not only their questions
    assert module.sample_indices(ROWS, 2, seed=3, start=3) == sorted(
        set(module.sample_indices(ROWS, 5, seed=3)) - set(module.sample_indices(ROWS, 3, seed=3))
    )


def test_bird_sample_copy_holds_only_the_chosen_questions_and_their_databases(
    tmp_path: Path,
) -> None:
    module = load_script()
    source = ROOT / "data" / "bird"
    rows = json.loads((source / "dev.json").read_text(encoding="utf-8"))
    indices = module.sample_indices(rows, 1, seed=0)
    copy = module.copy_sample(tmp_path / "b", source, indices)
    assert json.loads((copy / "dev.json").read_text(encoding="utf-8")) == [rows[indices[0]]]
    assert (copy / "dev_tables.json").is_file()
    assert [p.name for p in (copy / "dev_databases").iterdir()] == [rows[indices[0]]["db_id"]]


@pytest.mark.parametrize(("b", "c", "p"), [(0, 6, 0.03125), (1, 5, 0.21875), (3, 3, 1.0)])
def test_mcnemar_p_value_by_hand(b: int, c: int, p: float) -> None:
    # two-sided exact: 2 * P(Binomial(b + c, 1/2) <= min(b, c)); 2/64 and 2*7/64 by hand
    a_side = [1] * b + [0] * c + [1, 0]
    b_side = [0] * b + [1] * c + [1, 0]
    assert mcnemar_exact(a_side, b_side).p_value == pytest.approx(p, abs=1e-12)


def records_file(path: Path, masked: list[int], unmasked: list[int], ids: list[int]) -> Path:
    """A hand-written `--out` file: one question per id, correct flags per arm."""
    questions: list[dict[str, Any]] = [
        {
            "id": i,
            "index": i,
            "db_id": f"d{i}",
            "masked": {"correct": bool(m), "leaks": [], "error": None},
            "unmasked": {"correct": bool(u), "leaks": [], "error": None},
        }
        for i, m, u in zip(ids, masked, unmasked, strict=True)
    ]
    path.write_text(json.dumps({"meta": {}, "questions": questions}), encoding="utf-8")
    return path


def test_compare_pairs_questions_and_judges_each_arm(tmp_path: Path) -> None:
    ids = list(range(8))
    a = records_file(tmp_path / "a.json", [0] * 6 + [1, 1], [1, 0, 0, 0, 0, 0, 1, 1], [*ids])
    # b: one extra question (left out) and the same 8 in another order
    b_masked = [1] * 8 + [0]
    b_unmasked = [0, 1, 1, 1, 1, 1, 1, 1, 1]
    order = [7, 6, 5, 4, 3, 2, 1, 0, 99]
    b = records_file(
        tmp_path / "b.json",
        [b_masked[ids.index(i)] if i in ids else 0 for i in order],
        [b_unmasked[ids.index(i)] if i in ids else 1 for i in order],
        order,
    )
    proc = run("--compare", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("== 8 questions in both files (1 in only one")
    masked = next(line for line in lines if line.startswith("masked:"))
    assert "gained 6, lost 0" in masked and "p = 0.03125" in masked
    assert "B helped beyond noise" in masked
    # Wilson 2/8 by hand: centre 0.3311, half-width 0.2596
    assert "A 2/8 = 25.0% (95% Wilson CI 7.1-59.1%)" in masked and "B 8/8 = 100.0%" in masked
    unmasked = next(line for line in lines if line.startswith("unmasked:"))
    assert "gained 5, lost 1" in unmasked and "p = 0.2188" in unmasked
    assert "no change beyond noise" in unmasked


def test_compare_names_a_file_that_is_not_a_run(tmp_path: Path) -> None:
    good = records_file(tmp_path / "a.json", [1], [1], [1])
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    proc = run("--compare", str(good), str(bad))
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and str(bad) in proc.stderr


def test_three_questions_end_to_end_against_the_loopback_server(tmp_path: Path) -> None:
    """The server writes the gold SQL when it sees a real question and `SELECT 1` otherwise:
    unmasked gets every question right, masked (symbolic question) none."""
    module = load_script()
    rows = json.loads((ROOT / "data" / "1_input.json").read_text(encoding="utf-8"))

    def reply(messages: list[dict[str, Any]]) -> str:
        text = " ".join(str(m.get("content")) for m in messages)
        if "JSON" in text:
            return "{}" if "JSON object" in text else "[]"
        gold = [r["query"] for r in rows if r["question"] in text]
        return render_sql_reply(gold[0] if gold else "SELECT 1")

    out = tmp_path / "q.json"
    with LoopbackServer(reply=reply) as server:
        proc = run(
            *("--data", str(ROOT / "data"), "-n", "3", "--seed", "5", "--out", str(out)),
            *("--base-url", server.base_url, "--model", "m", "--keep", str(tmp_path / "w")),
        )
    assert proc.returncode == 0, proc.stderr
    questions = json.loads(out.read_text(encoding="utf-8"))["questions"]
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2 + 3 + 1
    expected = module.sample_indices(rows, 3, seed=5)
    assert [q["index"] for q in questions] == expected
    assert [q["db_id"] for q in questions] == [rows[i]["db_id"] for i in expected]
    assert [q["unmasked"]["correct"] for q in questions] == [True] * 3
    assert [q["masked"]["correct"] for q in questions] == [False] * 3
    assert all(q["masked"]["error"] is None and not q["masked"]["leaks"] for q in questions)
    assert all("name" in q["unmasked"]["leaks"] for q in questions)
    assert "== EA masked: 0/3 = 0.0%" in proc.stdout
    assert "== EA unmasked: 3/3 = 100.0%" in proc.stdout
    assert "exact McNemar p = 0.25 (right only masked: 0, right only unmasked: 3)" in proc.stdout
