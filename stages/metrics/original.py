"""The original MaskSQL's metrics, defined as its code computes them, beside our own.

- EA (original): the gold and predicted results as `fetchall()` lists compared with `==`
  (row order always counts, a failed query is `None`, so two failing queries are equal);
  MaskSQL `src/pipe/exec_acc.py` and `src/pipe/exec_conc_sql.py` (the latter before repair).
- RIS (original): 1 - (masked question terms found, case-insensitive, as a substring of the
  attacker's unmasked rewrite of the question) / (masked terms); 1 when nothing was masked.
- MCS (original): the share of annotated link terms that are a substring of some masked term;
  1 when the row has no annotation. Both per row, averaged over rows
  (MaskSQL `src/pipe/results.py`).

Pure functions over plain data: no files, no models.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from stages.sql.execution import ExecResult

_PIECES = re.compile(r"\w+|\s+|[^\w\s]")


def original_exec_match(gold: ExecResult, pred: ExecResult) -> int:
    """1 when the two `fetchall()` lists are equal (None for a failed query), else 0."""
    gold_rows = [tuple(r) for r in gold.rows] if gold.ok else None
    pred_rows = [tuple(r) for r in pred.rows] if pred.ok else None
    return int(gold_rows == pred_rows)


def masked_terms(question: str, symbolic_question: str) -> list[str]:
    """The stretches of `question` that masking replaced, in order (a word-level diff).

    Found by aligning words, spaces and punctuation of both texts: every stretch of the
    question that was replaced (or removed) is a masked term, trimmed of spaces and quotes.
    """
    a = _PIECES.findall(question)
    b = _PIECES.findall(symbolic_question)
    terms: list[str] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if op in ("replace", "delete"):
            term = "".join(a[i1:i2]).strip().strip("'\"`").strip()
            if term:
                terms.append(term)
    return terms


def original_ris(terms: Sequence[str], attack_text: str) -> float:
    """1 - share of masked terms the attacker's rewrite contains (substring, any case)."""
    if not terms:
        return 1.0
    text = attack_text.lower()
    found = sum(1 for t in terms if t.lower() in text)
    return 1 - found / len(terms)


def annotated_terms(row: dict[str, Any]) -> list[str] | None:
    """The row's annotated link terms: keys of `annotated_links` (the original's field) or
    of `gold_links` (a dict or a list of terms); None when the row has neither."""
    for key in ("annotated_links", "gold_links"):
        links = row.get(key)
        if isinstance(links, dict | list):
            return [str(t) for t in links if str(t).strip()]
    return None


def original_mcs(annotated: Sequence[str], terms: Sequence[str]) -> tuple[float, int]:
    """(MCS, covered count): share of annotated terms inside some masked term; 1 without any."""
    lowered = [t.lower() for t in terms]
    covered = sum(1 for a in annotated if any(a.lower() in t for t in lowered))
    if not annotated:
        return 1.0, 0
    return covered / len(annotated), covered
