"""DetectValues: the small local model lists the literal values a question mentions."""

from __future__ import annotations

from typing import Any

from stages.base import ModelStage
from stages.oracle import gold_values
from stages.replies import parse_list_reply, render_detect_values_reply


class DetectValues(ModelStage):
    """Adds `values`: the question's value words (names, numbers, dates) as written."""

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
        for item in parse_list_reply(output):
            if isinstance(item, dict):
                item = item.get("value", item.get("surface"))
            if item is None or isinstance(item, bool | list | dict):
                continue
            text = str(item).strip()
            if text and text.lower() not in {f.lower() for f in found}:
                found.append(text)
        return found
