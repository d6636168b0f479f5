"""AddQuestionAttack: the original MaskSQL's attack. A model sees the masked question and
schema and writes the question back in plain words; RIS and MCS are scored from that text.

The offline oracle attacker knows nothing beyond the masked text, so it returns it unchanged.
In the unmasked baseline there is nothing to attack: the stage asks no model and scores nothing.
"""

from __future__ import annotations

from typing import Any

from stages.base import LlmStage
from stages.metrics.original import annotated_terms, masked_terms, original_mcs, original_ris


class AddQuestionAttack(LlmStage):
    """Adds `attack_rewrite` (the attacker's unmasked question), `masked_terms` (the question
    stretches masking replaced), `ris` and, when the row has annotated links, `mcs`."""

    template_name = "question_attack"
    prop = "attack_rewrite"

    def _prompt_parts(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"question": row["symbolic_question"], "schema": row["symbolic_schema"]}

    def _oracle(self, row: dict[str, Any]) -> str:
        return str(row["symbolic_question"])

    def _process_output(self, row: dict[str, Any], output: str) -> str:
        return output.strip()

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        if not self.masked:  # the unmasked baseline hides nothing: no attack, no RIS or MCS
            return row
        await super()._process_row(row)
        terms = masked_terms(str(row["question"]), str(row["symbolic_question"]))
        row["masked_terms"] = terms
        row["ris"] = round(original_ris(terms, str(row[self.prop_name])), 6)
        annotated = annotated_terms(row)
        if annotated is not None:
            score, covered = original_mcs(annotated, terms)
            row["mcs"] = {"score": round(score, 6), "covered": covered, "annotated": len(annotated)}
        return row
