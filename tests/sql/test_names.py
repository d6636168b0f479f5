"""The one plural rule: the variants a question may write and the stem a name test compares."""

from __future__ import annotations

from stages.sql.names import name_stem, name_variants, singulars


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


def test_name_stem_is_the_first_singular_of_the_normal_form() -> None:
    assert name_stem("Home_Towns") == "home town"
    assert name_stem("  Singer   IDs ") == "singer id"
    assert name_stem("boxes") == "box"
    assert name_stem("glass") == "glass"
    assert name_stem("s") == "s"  # nothing left to be a singular of
