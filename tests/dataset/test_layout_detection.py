"""Dataset layouts: BIRD folders detected and copied to 1_input.json; evidence masked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from masksql_pipe.errors import ConfigError, InputError
from stages.dataset.evidence import mask_evidence
from stages.dataset.layout import LAYOUTS, detect_layout, prepare_input
from stages.sql.masking import unmask_sql
from stages.sql.schema import load_schema
from stages.sql.symbols import SymbolTable

ROOT = Path(__file__).resolve().parents[2]
BIRD = ROOT / "data" / "bird"


@pytest.fixture
def bird(tmp_path: Path) -> Path:
    folder = tmp_path / "bird"
    shutil.copytree(BIRD, folder, ignore=shutil.ignore_patterns("1_input.json", ".masksql_pipe"))
    return folder


def test_detects_each_layout(bird: Path):
    assert detect_layout(bird).name == "bird"
    assert detect_layout(ROOT / "data").name == "spider"
    assert detect_layout(ROOT / "data", "bird") is LAYOUTS["bird"]
    with pytest.raises(ConfigError, match="'dataset'"):
        detect_layout(bird, "wikisql")


def test_bird_input_is_a_copy_with_the_gold_under_query(bird: Path):
    source = json.loads((bird / "dev.json").read_text())
    path = prepare_input(bird, LAYOUTS["bird"])
    assert path == bird / "1_input.json"
    rows = json.loads(path.read_text())
    assert len(rows) == len(source)
    for original, row in zip(source, rows, strict=True):
        assert {k: row[k] for k in original} == original  # every field kept as is
        assert row["query"] == original["SQL"]
    # a second call keeps the file (and a hand edit of it) while dev.json is unchanged
    rows[0]["question"] = "edited by hand"
    path.write_text(json.dumps(rows))
    prepare_input(bird, LAYOUTS["bird"])
    assert json.loads(path.read_text())[0]["question"] == "edited by hand"
    # a changed dev.json is copied again
    source[0]["question"] = "How many customers are there?"
    (bird / "dev.json").write_text(json.dumps(source))
    prepare_input(bird, LAYOUTS["bird"])
    assert json.loads(path.read_text())[0]["question"] == "How many customers are there?"


def test_bad_bird_rows_name_file_and_row(bird: Path):
    (bird / "dev.json").write_text(json.dumps([{"db_id": "x", "question": "q"}]))
    with pytest.raises(InputError, match=r"dev\.json: row 0 has no 'SQL' field"):
        prepare_input(bird, LAYOUTS["bird"])
    assert not (bird / "1_input.json").exists()


def test_evidence_masked_with_the_rows_symbols():
    schema = load_schema(BIRD / "dev_tables.json", "fuel_cards")
    kept = schema.filter({"customers": ["CustomerID", "Currency"], "gas stations": ["Country"]})
    symbols = SymbolTable.from_schema(kept)
    assert (symbols.table_symbol("gas stations"), symbols.column_symbol("Currency")) == (
        "T2",
        "C2",
    )
    symbols.add_value("EUR", "customers.Currency", "EUR")  # found in the question: V1
    evidence = (
        "ratio = count(Currency = 'EUR') / count(Currency = 'CZK'); highest discount "
        'refers to MAX(`Discount (%)`) in "gas stations" above 2.5'
    )
    masked = mask_evidence(evidence, {}, schema, symbols)
    for secret in ("Currency", "EUR", "CZK", "gas stations", "2.5"):
        assert secret not in masked
    # the same symbols for the same names and values; fresh value symbols for new literals
    assert "count(C2 = V1) / count(C2 = V2)" in masked
    assert symbols.value("V2").value == "CZK"
    assert masked.endswith("MAX(`Discount (%)`) in T2 above V3")  # dropped: the guard's
    assert symbols.value("V3").value == 2.5
    assert symbols.column_symbol("Discount (%)") is None
    # a model's SQL over these symbols unmasks to the real names and literals
    sql = unmask_sql("SELECT count(*) FROM T1 WHERE C2 = V2 OR C2 = V1", symbols)
    assert sql == "SELECT count(*) FROM customers WHERE Currency = 'CZK' OR Currency = 'EUR'"
