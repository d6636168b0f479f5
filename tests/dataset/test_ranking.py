"""Ranking knobs: caps on the ranked items and a ranking read from a RESDSQL output file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from masksql_pipe import Pipeline
from masksql_pipe.errors import InputError
from stages.add_filtered_schema import AddFilteredSchema, with_text_columns
from stages.dataset.ranking import RankingFileError, cap_items, resdsql_items
from stages.rank_schema_from_file import RankSchemaFromFile
from stages.sql.schema import load_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = load_schema(ROOT / "data" / "bird" / "dev_tables.json", "fuel_cards")


def test_caps_keep_the_best_ranked_tables_and_columns():
    items = {
        "yearmonth": ["Consumption", "Date", "CustomerID"],
        "customers": [],  # every column: CustomerID, Segment, Currency in schema order
        "gas stations": ["Country"],
    }
    assert cap_items(items, SCHEMA, 2, 2) == {
        "yearmonth": ["Consumption", "Date"],
        "customers": ["CustomerID", "Segment"],
    }
    assert cap_items(items, SCHEMA, 0, 0) == items
    assert list(cap_items(items, SCHEMA, 1, 0)) == ["yearmonth"]


def test_resdsql_entries_become_items_in_rank_order():
    ranked = ["gas stations.Discount (%)", "gas stations.Country", "customers.*"]
    assert resdsql_items(ranked, SCHEMA) == {
        "gas stations": ["Discount (%)", "Country"],
        "customers": ["CustomerID"],  # `*` keeps the table with its primary key
    }
    with pytest.raises(RankingFileError, match="'Price'"):
        resdsql_items(["gas stations.Price"], SCHEMA)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "bird"
    shutil.copytree(ROOT / "data" / "bird", data, ignore=shutil.ignore_patterns("1_input.json"))
    rows = json.loads((data / "dev.json").read_text())[:2]
    (data / "1_input.json").write_text(json.dumps(rows))
    ranking = [
        {"question_id": 1, "tc_original": ["customers.Currency", "yearmonth.Date"]},
        {"question_id": 0, "tc_original": ["customers.Currency", "customers.Segment"]},
    ]
    (data / "resdsql.json").write_text(json.dumps(ranking))
    return data


async def test_ranking_file_stage_and_caps_in_a_pipeline(folder: Path):
    data = {"tables": "dev_tables.json", "databases": "dev_databases"}
    stages = [RankSchemaFromFile("resdsql.json", **data), AddFilteredSchema(**data, max_tables=1)]
    last = await Pipeline(stages).run(folder / "1_input.json")
    rows = json.loads(last.read_text())
    assert rows[0]["schema_items"] == {"customers": ["Currency", "Segment"]}
    # question 1: two tables ranked, the cap keeps the first (its primary key added back)
    assert rows[1]["schema_items"] == {"customers": ["Currency"], "yearmonth": ["Date"]}
    assert rows[1]["filtered_schema"] == {"customers": ["CustomerID", "Currency"]}


async def test_missing_entry_is_a_row_error_naming_the_file(folder: Path):
    (folder / "resdsql.json").write_text(json.dumps([{"question_id": 0, "tc_original": []}]))
    data = {"tables": "dev_tables.json", "databases": "dev_databases"}
    last = await Pipeline([RankSchemaFromFile("resdsql.json", **data)]).run(folder / "1_input.json")
    rows = json.loads(last.read_text())
    assert "pipe_error" not in rows[0]
    assert "resdsql.json: no ranking entry for question_id 1" in rows[1]["pipe_error"]["message"]


async def test_missing_file_stops_with_its_name(folder: Path):
    (folder / "resdsql.json").unlink()
    with pytest.raises(InputError, match=r"resdsql\.json: ranking file not found"):
        stage = RankSchemaFromFile("resdsql.json", "dev_tables.json", "dev_databases")
        await Pipeline([stage]).run(folder / "1_input.json")


async def test_editing_the_ranking_file_reruns_the_stage(folder: Path):
    data = {"tables": "dev_tables.json", "databases": "dev_databases"}
    await Pipeline([RankSchemaFromFile("resdsql.json", **data)]).run(folder / "1_input.json")
    ranking = json.loads((folder / "resdsql.json").read_text())
    ranking[1]["tc_original"] = ["customers.Segment"]
    (folder / "resdsql.json").write_text(json.dumps(ranking))
    last = await Pipeline([RankSchemaFromFile("resdsql.json", **data)]).run(folder / "1_input.json")
    assert json.loads(last.read_text())[0]["schema_items"] == {"customers": ["Segment"]}


def test_pipeline_reads_the_ranking_file_and_applies_caps(folder: Path):
    from stages.answers.oracle import gold_schema_items
    from tests.conftest import cli

    rows = json.loads((folder / "dev.json").read_text())
    schemas = {db: load_schema(folder / "dev_tables.json", db) for db in {r["db_id"] for r in rows}}
    ranking = []
    for row in rows:
        items = gold_schema_items(row["SQL"], schemas[row["db_id"]])
        ranked = [f"{t}.{c}" for t, cols in items.items() for c in cols or ["*"]]
        ranking.append({"question_id": row["question_id"], "tc_original": ranked})
    ranking[0]["tc_original"].append("customers.Segment")  # more than the oracle would keep
    (folder / "resdsql.json").write_text(json.dumps(ranking))
    (folder / "1_input.json").unlink()  # the pipeline writes it from dev.json
    proc = cli("--data", str(folder), "schema=resdsql")
    assert proc.returncode == 2 and "needs 'ranking.file'" in proc.stderr
    proc = cli("--data", str(folder), "schema=resdsql", "ranking.file=resdsql.json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((folder / "results.json").read_text())["correct"] == len(rows)
    ranked = json.loads(next(folder.glob("3_*.json")).read_text())
    assert ranked[0]["schema_items"] == {"customers": ["Currency", "Segment"]}
    proc = cli(
        "--data",
        str(folder),
        "schema=resdsql",
        "ranking.file=resdsql.json",
        "ranking.max_columns=-1",
    )
    assert proc.returncode == 2 and "ranking.max_columns" in proc.stderr


def test_a_kept_table_gets_a_text_column_back():
    items = {"gas stations": ["Discount (%)"], "customers": ["Segment"], "transactions (1k)": []}
    assert with_text_columns(items, SCHEMA) == {
        "gas stations": ["Discount (%)", "Country"],  # its first text column
        "customers": ["Segment"],  # has one already
        "transactions (1k)": [],  # has none at all
    }


async def test_keep_text_column_is_a_setting(folder: Path):
    ranking = json.loads((folder / "resdsql.json").read_text())
    ranking[0]["tc_original"] = ["gas stations.Discount (%)"]
    (folder / "resdsql.json").write_text(json.dumps(ranking))
    data = {"tables": "dev_tables.json", "databases": "dev_databases"}
    kept = {}
    for keep in (True, False):
        stages = [
            RankSchemaFromFile("resdsql.json", **data),
            AddFilteredSchema(**data, keep_text_column=keep),
        ]
        last = await Pipeline(stages).run(folder / "1_input.json")
        kept[keep] = json.loads(last.read_text())[1]["filtered_schema"]  # question_id 0
    assert kept[True] == {"gas stations": ["GasStationID", "Country", "Discount (%)"]}
    assert kept[False] == {"gas stations": ["GasStationID", "Discount (%)"]}
