"""AddInferenceAttack: a model sees what the remote side saw and guesses the names behind symbols.

The prompt is only the symbolic question and symbolic schema. The per-row re-identification
rate is the fraction of symbols whose guess equals the real name or value (ignoring case).
The offline oracle attacker knows nothing beyond the masked text, so it answers `{}`.
"""

from __future__ import annotations

from typing import Any

from stages.answers.replies import parse_object_reply
from stages.base import LlmStage
from stages.sql.symbols import SymbolTable


def real_forms(symbols: SymbolTable) -> dict[str, set[str]]:
    """For each symbol, the lower-cased texts that count as re-identifying it."""
    forms: dict[str, set[str]] = {}
    for sym, name in symbols.tables.items():
        forms[sym] = {name.lower()}
    for sym, name in symbols.columns.items():
        forms[sym] = {name.lower()}
    for sym, entry in symbols.values.items():
        forms[sym] = {str(entry.value).strip().lower()} | {s.lower() for s in entry.surfaces}
    return forms


def reidentification(guesses: dict[str, Any], symbols: SymbolTable) -> dict[str, Any]:
    """How many symbols the guesses re-identify: counts, rate and which ones."""
    forms = real_forms(symbols)
    upper = {str(k).strip().upper(): v for k, v in guesses.items()}
    hits = [
        sym
        for sym, texts in forms.items()
        if sym in upper
        and upper[sym] is not None
        and not isinstance(upper[sym], dict | list)
        and str(upper[sym]).strip().lower() in texts
    ]
    total = len(forms)
    return {
        "symbols": total,
        "reidentified": len(hits),
        "rate": round(len(hits) / total, 6) if total else 0.0,
        "reidentified_symbols": hits,
    }


class AddInferenceAttack(LlmStage):
    """Adds `attack_guesses` (symbol -> guess) and `reidentification` (the privacy score)."""

    template_name = "inference_attack"
    prop = "attack_guesses"
    answer_schema = {"type": "object", "additionalProperties": {"type": "string"}}

    def _prompt_parts(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"question": row["symbolic_question"], "schema": row["symbolic_schema"]}

    def _oracle(self, row: dict[str, Any]) -> str:
        return "{}"  # the attacker knows nothing beyond the masked text

    def _process_output(self, row: dict[str, Any], output: str) -> dict[str, Any]:
        return {str(k): v for k, v in parse_object_reply(output).items()}

    async def _process_row(self, row: dict[str, Any]) -> dict[str, Any]:
        row.pop(self.prop_name, None)  # a rerun replaces the guesses instead of merging them
        await super()._process_row(row)
        row["reidentification"] = reidentification(row[self.prop_name], self.symbols(row))
        return row
