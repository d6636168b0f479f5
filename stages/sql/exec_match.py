"""Execution match with Spider test-suite semantics: compare what two queries return, not how.

Rows are compared as multisets, or as lists when the gold query has a top-level ORDER BY;
columns may come in any order (a permutation of the prediction's columns that makes the
results equal counts); floats are rounded; NULLs equal NULLs; a failing prediction scores 0,
and so does any result cut at the row cap.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stages.sql.execution import ExecResult, run_sql
from stages.sql.tokens import Kind, significant, tokenize

FLOAT_DIGITS = 6


def has_top_level_order_by(sql: str) -> bool:
    """Whether `sql` has ORDER BY outside every parenthesis (so row order is part of the answer)."""
    depth = 0
    sig = significant(tokenize(sql))
    for k, t in enumerate(sig):
        if t.kind == Kind.OP and t.text == "(":
            depth += 1
        elif t.kind == Kind.OP and t.text == ")":
            depth = max(0, depth - 1)
        elif (
            depth == 0
            and t.kind == Kind.WORD
            and t.upper == "ORDER"
            and k + 1 < len(sig)
            and sig[k + 1].upper == "BY"
        ):
            return True
    return False


def normalize_value(value: Any) -> Any:
    """A hashable, comparable form: floats rounded (integral floats equal ints), rest as is."""
    if isinstance(value, float):
        if value != value:  # NaN
            return "NaN"
        rounded = round(value, FLOAT_DIGITS)
        return int(rounded) if rounded.is_integer() else rounded
    return value


def _norm_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return [tuple(normalize_value(v) for v in row) for row in rows]


def results_equal(
    gold_rows: Sequence[Sequence[Any]],
    pred_rows: Sequence[Sequence[Any]],
    *,
    order_matters: bool,
    gold_ncols: int | None = None,
    pred_ncols: int | None = None,
) -> bool:
    """Whether two result sets are equal up to a column permutation of the prediction.

    Row counts and column counts must agree (pass `*_ncols` so that empty results with
    different widths differ). Candidate columns are first filtered by their value multisets
    (or value lists when order matters), then assigned by backtracking that checks the rows
    projected on the columns fixed so far and tries identical columns only once, so the
    search stays small.
    """
    gold, pred = _norm_rows(gold_rows), _norm_rows(pred_rows)
    g_n = gold_ncols if gold_ncols is not None else (len(gold[0]) if gold else 0)
    p_n = pred_ncols if pred_ncols is not None else (len(pred[0]) if pred else 0)
    if len(gold) != len(pred):
        return False
    if not gold:
        return g_n == p_n or gold_ncols is None or pred_ncols is None
    if g_n != p_n or any(len(r) != g_n for r in gold) or any(len(r) != p_n for r in pred):
        return False

    def column_key(rows: list[tuple[Any, ...]], j: int) -> Any:
        col = [_sort_key(r[j]) for r in rows]
        return tuple(col) if order_matters else tuple(sorted(col))

    g_keys = [column_key(gold, j) for j in range(g_n)]
    p_keys = [column_key(pred, j) for j in range(p_n)]
    candidates = [[j for j in range(p_n) if p_keys[j] == g_keys[i]] for i in range(g_n)]
    if any(not c for c in candidates):
        return False
    # identical prediction columns are interchangeable: try one of each kind per position
    p_vectors = [tuple(r[j] for r in pred) for j in range(p_n)]
    p_class = [p_vectors.index(v) for v in p_vectors]
    order = sorted(range(g_n), key=lambda i: len(candidates[i]))
    used = [False] * p_n
    assign: dict[int, int] = {}

    def projected_equal() -> bool:
        gi = list(assign)
        g_proj = [tuple(r[i] for i in gi) for r in gold]
        p_proj = [tuple(r[assign[i]] for i in gi) for r in pred]
        return g_proj == p_proj if order_matters else Counter(g_proj) == Counter(p_proj)

    def search(depth: int) -> bool:
        if depth == len(order):
            return True
        i = order[depth]
        tried: set[int] = set()
        for j in candidates[i]:
            if used[j] or p_class[j] in tried:
                continue
            tried.add(p_class[j])
            used[j] = True
            assign[i] = j
            if projected_equal() and search(depth + 1):
                return True
            used[j] = False
            del assign[i]
        return False

    return search(0)


def _sort_key(value: Any) -> tuple[int, Any]:
    """Total order over mixed SQLite values (None < numbers < text < bytes)."""
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, bytes):
        return (3, value)
    return (4, repr(value))


@dataclass
class MatchResult:
    """Execution-match outcome: `score` 1 or 0 and the errors of either side, if any."""

    score: int
    gold_error: str | None = None
    pred_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"score": self.score, "gold_error": self.gold_error, "pred_error": self.pred_error}


def compare_results(gold: ExecResult, pred: ExecResult, *, order_matters: bool) -> MatchResult:
    """Score two execution results (0 when either failed or was cut at the row cap).

    A truncated result is never a match: two results equal in their first rows may differ after.
    """
    if not gold.ok or not pred.ok:
        return MatchResult(0, gold.error, pred.error)
    if gold.truncated or pred.truncated:
        return MatchResult(
            0,
            f"gold result cut at {len(gold.rows)} rows; not scored" if gold.truncated else None,
            f"result cut at {len(pred.rows)} rows; not scored" if pred.truncated else None,
        )
    equal = results_equal(
        gold.rows,
        pred.rows,
        order_matters=order_matters,
        gold_ncols=len(gold.columns),
        pred_ncols=len(pred.columns),
    )
    return MatchResult(int(equal))


def exec_match(
    db_path: str | os.PathLike[str],
    gold_sql: str,
    pred_sql: str,
    *,
    timeout: float = 5.0,
    max_rows: int = 10000,
) -> MatchResult:
    """Run gold and predicted SQL on `db_path` and score execution match (1 or 0)."""
    gold = run_sql(db_path, gold_sql, timeout=timeout, max_rows=max_rows)
    pred = run_sql(db_path, pred_sql, timeout=timeout, max_rows=max_rows)
    return compare_results(gold, pred, order_matters=has_top_level_order_by(gold_sql))
