"""One normal form for the guard and the leak audit: a name or value written with combining
accents (NFD), compatibility forms (full-width letters, ligatures), invisible characters
(zero-width space and joiners, word joiner, BOM, soft hyphen) or a Cyrillic look-alike inside a
Latin word is found, masked, and the text sent is the normalised one. Real SQLite files."""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import orjson
import pytest

from stages.privacy.audit import audit_text
from stages.privacy.guard import GuardBlocked, GuardPolicy, RowGuard
from stages.privacy.value_index import ValueIndex
from stages.sql.schema import parse_schema
from stages.sql.symbols import SymbolTable
from tests.conftest import load, write_rows
from tests.masksql.test_pipeline import copy_data
from tests.privacy.test_privacy_end_to_end import empty_small_model, run_with

NFD = "Who is the Bu\u0308rgermeister of Mu\u0308nchen?"

SCHEMA = {
    "db_id": "towns",
    "table_names_original": ["Städte"],
    "table_names": ["städte"],
    "column_names_original": [[-1, "*"], [0, "Name"], [0, "Bürgermeister"], [0, "Land"]],
    "column_names": [[-1, "*"], [0, "name"], [0, "bürgermeister"], [0, "land"]],
    "column_types": ["text", "text", "text", "text"],
    "primary_keys": [1],
    "foreign_keys": [],
}


@pytest.fixture
def towns(tmp_path: Path) -> tuple[object, ValueIndex]:
    """A real SQLite file; one cell is stored decomposed (NFD) on purpose."""
    db = tmp_path / "towns.sqlite"
    with sqlite3.connect(db) as con:
        con.execute('CREATE TABLE "Städte" (Name TEXT, "Bürgermeister" TEXT, Land TEXT)')
        con.executemany(
            "INSERT INTO Städte VALUES (?, ?, ?)",
            [
                ("München", "Dieter Reiter", "Bayern"),
                ("Ko\u0308ln", "Henriette Reker", "France"),
                ("Fiji Town", "Nobody", "Finland"),
                ("Bonn", "Katja Dörner", "Rhein\u00adland"),  # a soft hyphen in the cell
            ],
        )
    return parse_schema(SCHEMA, "tables.json"), ValueIndex.for_database(db, tmp_path / "index")


def guard(towns) -> RowGuard:
    schema, index = towns
    kept = {"Städte": ["Name"]}
    return RowGuard(schema, kept, SymbolTable.from_schema(schema.filter(kept)), index)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (NFD, "Who is the C2 of V1?"),  # combining umlauts, name and value
        ("Which Cafe\u0301 is in Mu\u0308nchen?", "Which Café is in V1?"),  # what is sent: NFC
        ("Towns in Rheinland", "Towns in V1"),  # the cell has a soft hyphen
        ("Mayor of Ko\u0308ln?", "Mayor of V1?"),  # NFD both in text and in the cell
        ("Mayor of Köln?", "Mayor of V1?"),  # NFC text, NFD cell
        ("Singers from Fr\u200bance", "Singers from V1"),  # zero-width space
        ("Mayor of Mün\u200dchen", "Mayor of V1"),  # zero-width joiner
        ("Mayor of Mün\u200cchen", "Mayor of V1"),  # zero-width non-joiner
        ("Mayor of Mün\u2060chen", "Mayor of V1"),  # word joiner
        ("Mayor of \ufeffMünchen", "Mayor of V1"),  # BOM
        ("Mayor of Mün\u00adchen", "Mayor of V1"),  # soft hyphen
        ("\uff2d\uff41\uff59\uff4f\uff52 of \uff22\uff41\uff59\uff45\uff52\uff4e", "Mayor of V1"),
        ("Who runs \ufb01ji Town?", "Who runs V1?"),  # the fi ligature
        ("Singers from Fr\u0430nce", "Singers from V1"),  # Cyrillic a inside a Latin word
        ("The BÜRGERMEISTER of München", "The C2 of V1"),  # case folding of names
        ("The Bu\u0308rgerm\u0435ister of Köln", "The C2 of V1"),  # Cyrillic e in a name
    ],
)
def test_guard_masks_every_spelling_and_sends_the_normal_form(towns, text, expected) -> None:
    masked = guard(towns).mask(text)
    assert masked == unicodedata.normalize("NFKC", expected)
    assert not any(unicodedata.category(ch) == "Cf" or ch == "\u00ad" for ch in masked)


def test_what_mixed_script_folding_does_not_catch(towns) -> None:
    """Documented limit: a word written wholly in another script's look-alikes (every letter
    of the word below is Cyrillic) is that script's word; only a word mixing Latin letters with
    look-alikes is read as Latin."""
    whole = "\u0412\u0430\u0443\u0435\u0440\u043d"  # Вауерн: no Latin letter at all
    assert guard(towns).mask(f"Mayor of {whole}") == f"Mayor of {whole}"


def test_value_index_stores_the_normal_form(towns) -> None:
    _, index = towns
    assert index.lookup(["köln"]) and index.lookup(["münchen"]) and index.lookup(["rheinland"])
    assert not index.lookup(["ko\u0308ln"])  # the decomposed cell is not stored as written


@pytest.mark.parametrize(
    "prompt",
    [NFD, "Mayor of Mün\u200bchen", "Mayor of Mün\u00adchen", "Mayor of Mu\u0308nchen\ufeff"],
)
def test_audit_finds_leaks_in_any_spelling(towns, prompt) -> None:
    schema, index = towns
    leaks = audit_text(prompt, schema, index, prompt, "SELECT 1")
    values = {
        unicodedata.normalize("NFC", leak["text"]) for leak in leaks if leak["kind"] == "value"
    }
    assert values == {"München"}


def test_audit_finds_names_in_any_spelling(towns) -> None:
    schema, index = towns
    leaks = audit_text("the Bu\u0308rger\u200bmeister please", schema, index, "", "SELECT 1")
    assert [leak["kind"] for leak in leaks] == ["name"]


def test_llm_prompts_carry_no_spelling_of_a_value_and_the_audit_sees_the_unmasked_ones(
    tmp_path: Path,
) -> None:
    """The whole run, real CLI and loopback server; the small model finds nothing, so the guard
    alone masks the NFD and zero-width questions. Unmasked, the audit reports them."""
    rows = [
        {"db_id": "deutsche_staedte", "question": NFD, "query": "SELECT 1"},
        {"db_id": "music_festival", "question": "Singers from Fr\u200bance?", "query": "SELECT 1"},
    ]
    for name, masked in (("masked", "true"), ("plain", "false")):
        folder = copy_data(tmp_path / name)
        write_rows(folder / "1_input.json", rows)
        proc, _ = run_with(folder, empty_small_model, f"privacy.mask={masked}")
        assert proc.returncode == 0, proc.stderr
        prompts = [
            "\n".join(m["content"] for m in json_line["messages"] if m["role"] == "user")
            for log in (folder / ".masksql_pipe" / "prompts").glob("*_GenerateSymbolicSql.jsonl")
            for json_line in map(orjson.loads, log.read_text().splitlines())
        ]
        assert len(prompts) >= 2  # one per row, retries aside
        sent = unicodedata.normalize("NFC", "\n".join(prompts).replace("\u200b", "")).lower()
        audit = load(folder / "results.json")["privacy"]["leak_audit"]
        if masked == "true":
            assert "\u200b" not in "".join(prompts)
            assert "münchen" not in sent and "france" not in sent and "bürgermeister" not in sent
            assert audit["rows_with_leaks"] == 0
        else:
            assert "münchen" in sent and "france" in sent  # the baseline sends them as asked
            (last,) = folder.glob("*_Results.json")
            leaked = [
                {unicodedata.normalize("NFC", x["text"]).lower() for x in r["leaks"]}
                for r in load(last)
            ]
            assert "münchen" in leaked[0] and "france" in leaked[1]


def test_block_mode_sends_the_normal_form_and_blocks_hidden_values(towns) -> None:
    schema, index = towns
    kept = {"Städte": ["Name"]}
    blocking = RowGuard(
        schema, kept, SymbolTable.from_schema(schema.filter(kept)), index, GuardPolicy("block")
    )
    assert blocking.enforce("How many T1 ar\u200be the\ufb01rst?", "question") == (
        "How many T1 are thefirst?"
    )
    with pytest.raises(GuardBlocked):
        blocking.enforce("Mayor of Mün\u00adchen", "question")
