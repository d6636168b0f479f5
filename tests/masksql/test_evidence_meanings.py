"""Evidence that says what a database value means masks that meaning as the value, in the
question and in the evidence (a BIRD-layout folder run through the CLI, the oracle model)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from stages.dataset.evidence import value_meanings
from tests.conftest import cli
from tests.masksql.test_bird import llm_prompts

ROOT = Path(__file__).resolve().parents[2]
MEANING = "small and medium enterprises"
PLACE = "Alameda County"


@pytest.fixture
def bird(tmp_path: Path) -> Path:
    folder = tmp_path / "bird"
    shutil.copytree(
        ROOT / "data" / "bird", folder, ignore=shutil.ignore_patterns("1_input.json", ".*")
    )
    rows = json.loads((folder / "dev.json").read_text())
    rows = [r for r in rows if "'SME'" in r["evidence"] or "'Alameda'" in r["evidence"]]
    for row in rows:
        if "'SME'" in row["evidence"]:
            row["question"] = row["question"].replace("SME segment", f"{MEANING} segment")
            row["evidence"] = (
                f"'SME' represents for '{MEANING}'; in 2013 refers to Date LIKE '2013%'"
            )
        else:
            row["evidence"] = f"'{PLACE}' refers to `County Name` = 'Alameda'"
    (folder / "dev.json").write_text(json.dumps(rows))
    return folder


def test_a_meaning_tied_to_a_value_gets_the_value_symbol_everywhere(bird: Path) -> None:
    proc = cli("--data", str(bird))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(sorted(bird.glob("*_Results.json"))[0].read_text())
    assert len(rows) == 2
    for row, phrase in zip(rows, (MEANING, PLACE), strict=True):
        question, evidence = row["symbolic_question"], row["symbolic_evidence"]
        assert phrase.lower() not in (question + evidence).lower(), (question, evidence)
        # the meaning and the value share one symbol, and the question uses it
        said = re.match(r"(V\d+) (?:represents for|refers to `C\d+` =) (V\d+)", evidence)
        assert said and said[1] == said[2], evidence
        assert re.search(rf"\b{said[1]}\b", question), question
    for index, texts in llm_prompts(bird).items():
        joined = "\n".join(texts).lower()
        assert MEANING not in joined and PLACE.lower() not in joined, index


@pytest.mark.parametrize(
    ("evidence", "pairs"),
    [
        (
            "'POPLATEK PO OBRATU' represents for 'issuance after transaction'",
            [("POPLATEK PO OBRATU", "issuance after transaction")],
        ),
        (
            "'weekly issuance' refers to frequency = 'POPLATEK TYDNE'",
            [("POPLATEK TYDNE", "weekly issuance")],
        ),
        ("'OWNER' means owner of the account; age > 20", [("OWNER", "owner of the account")]),
        ("'M' stands for \"male\"", [("M", "male")]),
        ("pay in euro refers to Currency = 'EUR'", []),  # no quoted meaning: left as it was
        ("highest discount refers to MAX(Discount)", []),
    ],
)
def test_phrasings_that_tie_a_meaning_to_a_value(evidence: str, pairs: list) -> None:
    assert value_meanings(evidence) == pairs
