"""The one plural rule: the variants a question may write and the forms a name test compares."""

from __future__ import annotations

import pytest

from stages.sql.names import name_forms, name_variants, singulars
from stages.sql.schema import Column, Schema, Table


def test_name_variants() -> None:
    assert set(name_variants("country")) == {"country", "countries"}
    assert set(name_variants("singer_id")) == {"singer_id", "singer id", "singer_ids", "singer ids"}
    assert "classes" in name_variants("class")
    assert "course" in name_variants("courses")


def test_singulars_likeliest_first() -> None:
    assert singulars("Countries") == ["Country"]
    assert singulars("classes") == ["class", "classe"]
    assert singulars("singers") == ["singer"]
    assert singulars("address") == []
    assert singulars("city") == []


def test_name_forms_are_the_normal_form_and_its_singulars() -> None:
    assert name_forms("Home_Towns") == {"home towns", "home town"}
    assert name_forms("  Singer   IDs ") == {"singer ids", "singer id"}
    assert name_forms("boxes") == {"boxes", "boxe", "box"}
    assert name_forms("glass") == {"glass"}
    assert name_forms("s") == {"s"}  # nothing left to be a singular of


@pytest.mark.parametrize(
    ("name", "phrase"),
    [("course", "Courses"), ("courses", "course"), ("box", "BOXES"), ("city", "cities")],
)
def test_a_plural_is_the_name_of_its_singular_either_way(name: str, phrase: str) -> None:
    schema = Schema("s", [Table(name, [Column(name, "id", "int")])])
    assert schema.is_name(phrase)
    assert not schema.is_name("cour")
