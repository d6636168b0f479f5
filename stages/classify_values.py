"""ClassifyValues: the small local model sorts the question's values into privacy categories.

Used by the `category` privacy policy (setting `privacy.policy`), as in the original MaskSQL:
only values of sensitive categories (a person's name, a location, an occupation) are masked.
A value the model calls "other" stays in the question as written: its V# symbol is taken out
of the row's symbol table and it is listed in `kept_values`, which the privacy guard lets
through (stages.privacy.guard `allowed_values`). Schema names are masked whatever the policy.
"""

from __future__ import annotations

import re
from typing import Any

from stages.answers.replies import parse_object_reply, render_json_reply
from stages.base import ModelStage
from stages.dataset.spider import require
from stages.privacy.stage import KEPT_VALUES_KEY
from stages.privacy.text import normalize
from stages.sql.symbols import SymbolTable

SENSITIVE = ("person", "location", "occupation")
"""Categories whose values are masked under the `category` policy."""

CATEGORIES = (*SENSITIVE, "other")

UNKNOWN = "unknown"
"""A value the model did not classify (or gave another word for): masked, to be safe."""

NAME_WORDS = frozenset(
    ["name", "names", "first", "last", "surname", "nickname", "full", "given", "family", "middle"]
)
"""The words of a column that holds names (name, first_name, ...)."""

_LOCATION = frozenset(
    [
        "city",
        "country",
        "location",
        "address",
        "state",
        "town",
        "hometown",
        "region",
        "place",
        "nationality",
        "citizenship",
        "county",
        "street",
        "district",
        "stadium",
        "venue",
    ]
)
_OCCUPATION = frozenset(["job", "occupation", "profession", "position", "role"])


def _words(name: str) -> set[str]:
    return set(re.findall(r"[a-z]+", name.replace("_", " ").lower()))


def category_from_column(column: str | None) -> str:
    """The oracle's rule, from the linked "table.column": a column naming a place is a location,
    one naming a job an occupation; a name column (name, first_name...) holds persons, or
    places when its table is one (stadium.name); anything else is "other"."""
    if not column:
        return UNKNOWN
    table, _, name = column.rpartition(".")
    words = _words(name)
    if words & _LOCATION:
        return "location"
    if words & _OCCUPATION:
        return "occupation"
    if words and words <= NAME_WORDS:
        return "location" if _words(table) & _LOCATION else "person"
    return "other"


def drop_values(symbols: SymbolTable, kept: set[str]) -> SymbolTable:
    """A copy of `symbols` without the value entries whose every surface is in `kept`
    (normalized); the remaining values are renumbered V1, V2, ... in their order."""
    out = SymbolTable.from_dict({**symbols.to_dict(), "values": {}})
    for entry in symbols.values.values():
        surfaces = [normalize(s) for s in entry.surfaces] or [normalize(str(entry.value))]
        if all(s in kept for s in surfaces):
            continue
        for surface in entry.surfaces or [None]:
            out.add_value(entry.value, entry.column, surface, entry.also)
    return out


class ClassifyValues(ModelStage):
    """Adds `value_categories` ({value: category}), `masked_values` and `kept_values`.

    A question with no values calls no model. The symbols of kept values leave `symbols`.
    """

    answer_schema = {"type": "object", "additionalProperties": {"type": "string"}}

    template_name = "classify_values"
    prop = "value_categories"

    def _values(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        links = row.get("value_links") or {}
        return [{"surface": str(v), "column": links.get(v)} for v in row["values"]]

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return self.render(question=row["question"], values=self._values(row))

    def _oracle(self, row: dict[str, Any]) -> str:
        decided = {v["surface"]: category_from_column(v["column"]) for v in self._values(row)}
        return render_json_reply(decided)

    def _process_output(self, row: dict[str, Any], output: str) -> dict[str, str]:
        reply = {normalize(str(k)): v for k, v in parse_object_reply(output).items()}
        categories: dict[str, str] = {}
        for surface in row["values"]:
            said = str(reply.get(normalize(surface)) or "").strip().lower()
            categories[surface] = said if said in CATEGORIES else UNKNOWN
        return categories

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        values = require(row, "values", "DetectValues")
        if values:
            await super()._process_row(row)
        else:
            row[self.prop_name] = {}
        categories = row[self.prop_name]
        kept = [v for v, c in categories.items() if c == "other"]
        row["masked_values"] = [v for v in categories if v not in kept]
        row[KEPT_VALUES_KEY] = kept
        symbols = SymbolTable.from_dict(row["symbols"])
        row["symbols"] = drop_values(symbols, {normalize(v) for v in kept}).to_dict()
        return row
