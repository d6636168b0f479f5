"""SQL hardness classes of the Spider evaluator (easy, medium, hard, extra), over our tokenizer.

The Spider evaluator classifies a gold query by counting three kinds of components of its
outermost SELECT: clauses that add structure (WHERE, GROUP BY, ORDER BY, LIMIT, extra joined
tables, OR, LIKE), nested queries (subqueries in conditions and a following UNION/INTERSECT/
EXCEPT) and "others" (several aggregates, select columns, conditions or group-by columns).
This module counts the same things from tokens, without Spider's parser, so any SQLite query
gets a class. Two quirks of the evaluator's code are kept on purpose so the classes agree with
published Spider figures: in WHERE only NOT conditions count towards the aggregate count, and
in HAVING the AND/OR connectors count towards it (its aggregates do not).
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.sql.tokens import Kind, Token, significant, tokenize

AGGREGATES = frozenset({"COUNT", "SUM", "AVG", "MIN", "MAX"})
SET_OPS = frozenset({"UNION", "INTERSECT", "EXCEPT"})
HARDNESS_LEVELS = ("easy", "medium", "hard", "extra")


@dataclass(frozen=True)
class Components:
    """The evaluator's three counts for one query."""

    structure: int  # Spider's count_component1
    nested: int  # count_component2
    others: int  # count_others


def _is_op(t: Token, text: str) -> bool:
    return t.kind == Kind.OP and t.text == text


def _word(t: Token) -> str:
    return t.upper if t.kind == Kind.WORD else ""


def _top_level(sig: list[Token]) -> list[int]:
    """Depth (parentheses) of each significant token; a '(' has the outer depth."""
    depths, depth = [], 0
    for t in sig:
        if _is_op(t, ")"):
            depth = max(0, depth - 1)
        depths.append(depth)
        if _is_op(t, "("):
            depth += 1
    return depths


def _clauses(sig: list[Token], depths: list[int]) -> dict[str, list[int]]:
    """Indices of the tokens of each top-level clause of one SELECT (keyword tokens excluded)."""
    clauses: dict[str, list[int]] = {}
    current: str | None = None
    k = 0
    while k < len(sig):
        word = _word(sig[k]) if depths[k] == 0 else ""
        nxt = _word(sig[k + 1]) if k + 1 < len(sig) else ""
        if word in ("GROUP", "ORDER") and nxt == "BY":
            current = word
            clauses.setdefault(current, [])
            k += 2
            continue
        if word in ("SELECT", "FROM", "WHERE", "HAVING", "LIMIT"):
            current = word
            clauses.setdefault(current, [])
            k += 1
            continue
        if current is not None:
            clauses[current].append(k)
        k += 1
    return clauses


def _outside_subqueries(sig: list[Token], indices: list[int]) -> tuple[list[int], int]:
    """The clause's tokens that are not inside a parenthesised SELECT, and how many such
    subqueries start directly in it."""
    kept: list[int] = []
    subqueries = 0
    skip_depth = 0
    for n, k in enumerate(indices):
        t = sig[k]
        if skip_depth:
            if _is_op(t, "("):
                skip_depth += 1
            elif _is_op(t, ")"):
                skip_depth -= 1
            continue
        nxt = sig[indices[n + 1]] if n + 1 < len(indices) else None
        if _is_op(t, "(") and nxt is not None and _word(nxt) in ("SELECT", "WITH"):
            subqueries += 1
            skip_depth = 1
            continue
        kept.append(k)
    return kept, subqueries


def _aggregates(sig: list[Token], indices: list[int]) -> int:
    return sum(
        1
        for n, k in enumerate(indices)
        if _word(sig[k]) in AGGREGATES and n + 1 < len(indices) and _is_op(sig[indices[n + 1]], "(")
    )


def _connectors(sig: list[Token], indices: list[int]) -> tuple[int, int]:
    """(AND connectors, OR connectors) of a condition; the AND of BETWEEN x AND y is no
    connector."""
    ands = ors = 0
    pending_between = 0
    for k in indices:
        word = _word(sig[k])
        if word == "BETWEEN":
            pending_between += 1
        elif word == "AND":
            if pending_between:
                pending_between -= 1
            else:
                ands += 1
        elif word == "OR":
            ors += 1
    return ands, ors


def _nots(sig: list[Token], indices: list[int]) -> int:
    """NOT conditions (`NOT IN`, `NOT LIKE`, ...); the NOT of `IS NOT` is part of its operator."""
    count = 0
    for n, k in enumerate(indices):
        if _word(sig[k]) == "NOT" and not (n > 0 and _word(sig[indices[n - 1]]) == "IS"):
            count += 1
    return count


def _commas(sig: list[Token], indices: list[int], depths: list[int]) -> int:
    return sum(1 for k in indices if depths[k] == 0 and _is_op(sig[k], ","))


def components(sql: str) -> Components:
    """Count the evaluator's components of the outermost SELECT of `sql`."""
    sig = [t for t in significant(tokenize(sql)) if not _is_op(t, ";")]
    depths = _top_level(sig)
    nested = 0
    for k, t in enumerate(sig):
        if depths[k] == 0 and _word(t) in SET_OPS:
            nested = 1  # the rest of the query is one nested query, whatever follows it
            sig, depths = sig[:k], depths[:k]
            break
    clauses = _clauses(sig, depths)
    structure = sum(1 for name in ("WHERE", "GROUP", "ORDER", "LIMIT") if name in clauses)
    from_tokens = clauses.get("FROM", [])
    structure += sum(
        1
        for k in from_tokens
        if depths[k] == 0 and (_word(sig[k]) == "JOIN" or _is_op(sig[k], ","))
    )
    agg_count = 0
    where_conditions = 0
    for name in ("FROM", "WHERE", "HAVING"):
        indices = clauses.get(name, [])
        if name == "FROM":  # only join conditions; a subquery as a table is no nesting
            start = next((n for n, k in enumerate(indices) if _word(sig[k]) == "ON"), None)
            indices = indices[start:] if start is not None else []
        kept, subqueries = _outside_subqueries(sig, indices)
        nested += subqueries
        ands, ors = _connectors(sig, kept)
        structure += ors + sum(1 for k in kept if _word(sig[k]) == "LIKE")
        if name == "WHERE":
            where_conditions = 1 + ands + ors if name in clauses else 0
            agg_count += _nots(sig, kept)
        if name == "HAVING":
            agg_count += ands + ors + _nots(sig, kept)
    for name in ("SELECT", "GROUP", "ORDER"):
        kept, _ = _outside_subqueries(sig, clauses.get(name, []))
        agg_count += _aggregates(sig, kept)
    select_columns = 1 + _commas(sig, clauses.get("SELECT", []), depths)
    group_columns = 1 + _commas(sig, clauses.get("GROUP", []), depths) if "GROUP" in clauses else 0
    others = sum(
        (agg_count > 1, select_columns > 1, where_conditions > 1, group_columns > 1),
    )
    return Components(structure, nested, others)


def classify(parts: Components) -> str:
    """The Spider class for given component counts (the evaluator's decision rules)."""
    c1, c2, other = parts.structure, parts.nested, parts.others
    if c1 <= 1 and other == 0 and c2 == 0:
        return "easy"
    if (other <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and other < 2 and c2 == 0):
        return "medium"
    if (
        (other > 2 and c1 <= 2 and c2 == 0)
        or (2 < c1 <= 3 and other <= 2 and c2 == 0)
        or (c1 <= 1 and other == 0 and c2 <= 1)
    ):
        return "hard"
    return "extra"


def hardness(sql: str) -> str:
    """`easy`, `medium`, `hard` or `extra` for a SQL query, as the Spider evaluator grades it."""
    return classify(components(sql))
