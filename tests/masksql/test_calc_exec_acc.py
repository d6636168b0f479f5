"""CalcExecAcc as a stage, run by the engine on real SQLite files: a runnable wrong answer
scores 0, row order counts only when the gold query has ORDER BY, a cut result never scores."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from masksql_pipe import Pipeline, RunOptions
from stages.calc_exec_acc import CalcExecAcc
from tests.conftest import ROOT, load, write_rows

ORDERED = "SELECT name, age FROM singer WHERE country = 'France' ORDER BY age"
UNORDERED = "SELECT name, age FROM singer WHERE country = 'France'"
REVERSED = "SELECT name, age FROM singer WHERE country = 'France' ORDER BY age DESC"
CASES = [
    ("same query", ORDERED, ORDERED, 1),
    ("runnable but wrong rows", UNORDERED, "SELECT name, age FROM singer WHERE age > 40", 0),
    (
        "runnable but wrong value",
        "SELECT count(*) FROM singer",
        "SELECT count(*) + 1 FROM singer",
        0,
    ),
    ("gold orders: reverse order is wrong", ORDERED, REVERSED, 0),
    ("gold does not order: any order is right", UNORDERED, REVERSED, 1),
    ("failing prediction", UNORDERED, "SELECT nope FROM singer", 0),
]


def music_festival(tmp_path: Path) -> Path:
    """A Spider folder holding the sample's tables.json and its music_festival database."""
    data = tmp_path / "spider"
    data.mkdir()
    shutil.copy(ROOT / "data" / "tables.json", data / "tables.json")
    shutil.copytree(
        ROOT / "data" / "databases" / "music_festival", data / "databases" / "music_festival"
    )
    return data


async def test_calc_exec_acc_scores_each_case(tmp_path: Path) -> None:
    data = music_festival(tmp_path)
    rows = [
        {"case": name, "db_id": "music_festival", "query": gold, "pred_sql": pred}
        for name, gold, pred, _ in CASES
    ]
    write_rows(data / "1_input.json", rows)
    await Pipeline([CalcExecAcc()], RunOptions(progress=False)).run(data / "1_input.json")
    scored = {row["case"]: row["exec_acc"] for row in load(data / "2_CalcExecAcc.json")}
    assert scored == {name: expected for name, _, _, expected in CASES}
    assert orjson.loads((data / "2_CalcExecAcc.json").read_bytes())[5]["pred_error"]


async def test_the_sql_before_repair_is_scored_on_its_own(tmp_path: Path) -> None:
    """Gold, prediction and the SQL before RepairSql run side by side; each keeps its place."""
    data = music_festival(tmp_path)
    wrong = "SELECT name, age FROM singer WHERE age > 40"
    rows = [
        {"db_id": "music_festival", "query": ORDERED, "pred_sql": ORDERED},
        {
            "db_id": "music_festival",
            "query": ORDERED,
            "pred_sql": ORDERED,
            "pred_sql_before_repair": wrong,
        },
        {
            "db_id": "music_festival",
            "query": ORDERED,
            "pred_sql": wrong,
            "pred_sql_before_repair": ORDERED,
        },
    ]
    write_rows(data / "1_input.json", rows)
    await Pipeline([CalcExecAcc()], RunOptions(progress=False)).run(data / "1_input.json")
    scored = [
        (row["exec_acc"], row["exec_acc_before_repair"], row["exec_acc_original_before_repair"])
        for row in load(data / "2_CalcExecAcc.json")
    ]
    assert scored == [(1, 1, 1), (1, 0, 0), (0, 1, 1)]
