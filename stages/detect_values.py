"""DetectValues: the small local model lists the literal values a question mentions."""

from __future__ import annotations

from typing import Any

from stages.answers.oracle import gold_values
from stages.answers.replies import parse_list_reply, render_detect_values_reply
from stages.base import ModelStage
from stages.privacy.guard import name_forms
from stages.privacy.text import find_whole


class DetectValues(ModelStage):
    """Adds `values`: the question's value words (names, numbers, dates) as written.

    A value the question does not contain (case-insensitive, quotes and whitespace
    normalised, whole words) is dropped and listed in `values_dropped`: a small model may
    answer `"singer.name"` or `10` for a question holding neither. So is a value that spells
    a table or column name ("singers"): it names the schema, and is masked as such.
    """

    answer_schema = {"type": "array", "items": {"type": "string"}}

    template_name = "detect_values"
    prop = "values"

    def _get_prompt(self, row: dict[str, Any]) -> str:
        return self.render(
            question=row["question"], schema=self.kept_schema(row).to_text(types=True)
        )

    def _oracle(self, row: dict[str, Any]) -> str:
        values = gold_values(row["question"], row["query"], self.full_schema(row))
        return render_detect_values_reply(values)

    def _process_output(self, row: dict[str, Any], output: str) -> list[str]:
        found: list[str] = []
        dropped: list[str] = []
        names = name_forms(self.full_schema(row)).items
        for item in parse_list_reply(output):
            if isinstance(item, dict):
                item = item.get("value", item.get("surface"))
            if item is None or isinstance(item, bool | list | dict):
                continue
            text = str(item).strip()
            if not text or text.lower() in {f.lower() for f in found}:
                continue
            if find_whole(row["question"], text) and text.lower() not in names:
                found.append(text)
            else:
                dropped.append(text)
        row["values_dropped"] = dropped
        return found
