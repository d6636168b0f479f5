"""Research figures of a MaskSQL run: every EA definition with counts and 95% intervals, the
original MaskSQL's RIS and MCS, and the same figures by difficulty, database and hardness.

Computed from the last file's rows only (a row with an error scores 0 on every EA), so
`summarize` and `report` can recompute them from any finished run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from masksql_pipe.engine.stage import ERROR_KEY
from masksql_pipe.experiment.stats import bootstrap_proportion, pct
from stages.metrics.hardness import HARDNESS_LEVELS, hardness

EA_FIELDS = {
    "test_suite": "exec_acc",
    "original": "exec_acc_original",
    "before_repair": "exec_acc_before_repair",
    "original_before_repair": "exec_acc_original_before_repair",
}
"""EA definitions -> the row field CalcExecAcc writes for each."""

LEAK_FIELD = "leaks"
"""Row field of the leak audit (a list, or a dict with a `count`/`total`): any entry is a leak."""

DIFFICULTY_ORDER = ("simple", "moderate", "challenging")


def outcome(row: dict[str, Any], field: str) -> int | None:
    """1/0 for one EA definition of a row; errors score 0; None when the field is absent."""
    if ERROR_KEY in row:
        return 0
    value = row.get(field)
    if value is None:
        return None
    return 1 if value == 1 else 0


def leaked(row: dict[str, Any]) -> int | None:
    """1 when the leak audit found anything in the row's remote prompts, 0 when it found
    nothing, None when the row was not audited."""
    audit = row.get(LEAK_FIELD)
    if audit is None:
        return None
    if isinstance(audit, dict):
        for key in ("total", "count"):
            if isinstance(audit.get(key), int):
                return int(audit[key] > 0)
        return int(any(audit.values()))
    return int(bool(audit))


def _unaudited(row: dict[str, Any]) -> bool:
    """True when the leak audit could not read every prompt sent for the row."""
    audit = row.get("leak_audit")
    return isinstance(audit, dict) and bool(audit.get("missing") or audit.get("unverified"))


def rate(values: list[int]) -> dict[str, Any]:
    """Count, successes, share and its 95% bootstrap interval."""
    interval = bootstrap_proportion(values).to_dict()
    return {
        "rows": len(values),
        "count": sum(values),
        "rate": interval["estimate"],
        "ci95": [interval["low"], interval["high"]] if values else None,
    }


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """EA (each definition), leak rate, RIS, MCS and the attacker's symbol rate of some rows."""
    out: dict[str, Any] = {"rows": len(rows), "ea": {}}
    for name, field in EA_FIELDS.items():
        values = [v for v in (outcome(r, field) for r in rows) if v is not None]
        if values or name == "test_suite":
            out["ea"][name] = rate(values)
    leaks = [v for v in (leaked(r) for r in rows) if v is not None]
    out["leak"] = rate(leaks) if leaks and not any(map(_unaudited, rows)) else None
    ris = [float(r["ris"]) for r in rows if isinstance(r.get("ris"), int | float)]
    mcs = [r["mcs"] for r in rows if isinstance(r.get("mcs"), dict)]
    reid = [r["reidentification"] for r in rows if isinstance(r.get("reidentification"), dict)]
    symbols = sum(int(x.get("symbols", 0)) for x in reid)
    out["ris"] = {"mean": _mean(ris), "rows": len(ris)}
    out["mcs"] = {
        "mean": _mean([float(m["score"]) for m in mcs]),
        "rows": len(mcs),
        "covered": sum(int(m.get("covered", 0)) for m in mcs),
        "annotated": sum(int(m.get("annotated", 0)) for m in mcs),
    }
    found = sum(int(x.get("reidentified", 0)) for x in reid)
    out["reidentification"] = {
        "rate": round(found / symbols, 6) if symbols else None,
        "reidentified": found,
        "symbols": symbols,
    }
    return out


def row_hardness(row: dict[str, Any]) -> str | None:
    """The Spider hardness of the row's gold SQL."""
    sql = row.get("query")
    return hardness(sql) if isinstance(sql, str) and sql.strip() else None


GROUPINGS: dict[str, tuple[Callable[[dict[str, Any]], Any], tuple[str, ...]]] = {
    "difficulty": (lambda r: r.get("difficulty"), DIFFICULTY_ORDER),
    "hardness": (row_hardness, HARDNESS_LEVELS),
    "db_id": (lambda r: r.get("db_id"), ()),
}
"""Breakdown name -> (key of a row, preferred order of the keys)."""


def breakdown(
    rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any], order: tuple[str, ...]
) -> dict[str, Any]:
    """`figures` per group of rows with the same key (rows without a key are left out)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        value = key(row)
        if value is not None and str(value).strip():
            groups.setdefault(str(value), []).append(row)
    ranked = sorted(groups, key=lambda g: (order.index(g) if g in order else len(order), g))
    return {g: figures(groups[g]) for g in ranked}


def research_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole-run figures and every breakdown that has at least one keyed row."""
    result = figures(rows)
    result["by"] = {}
    for name, (key, order) in GROUPINGS.items():
        groups = breakdown(rows, key, order)
        if groups:
            result["by"][name] = groups
    return result


def _rate_text(figure: dict[str, Any] | None) -> str:
    """`50.00% (2/4; 95% CI 10.00%-90.00%)`."""
    if not figure or not figure.get("rows"):
        return "n/a"
    ci = figure.get("ci95") or [None, None]
    rate, low, high = (pct(x, digits=2, fraction=True) for x in (figure["rate"], ci[0], ci[1]))
    return f"{rate} ({figure['count']}/{figure['rows']}; 95% CI {low}-{high})"


EA_LABELS = {
    "test_suite": "EA, test-suite (ours)",
    "original": "EA, as MaskSQL computes it",
    "before_repair": "EA before repair (test-suite)",
    "original_before_repair": "EA before repair (MaskSQL)",
}


def research_rows(research: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) lines for the results table: each EA with its interval, RIS, MCS and
    EA by difficulty and hardness."""
    lines = [(EA_LABELS[k], _rate_text(v)) for k, v in research["ea"].items() if k in EA_LABELS]
    ris, mcs = research["ris"], research["mcs"]
    if ris["rows"]:
        lines.append(
            ("RIS (MaskSQL; 1 = nothing re-identified)", f"{ris['mean']:.4f} ({ris['rows']} rows)")
        )
    if mcs["rows"]:
        lines.append(
            (
                "MCS (MaskSQL mask coverage)",
                f"{mcs['mean']:.4f} ({mcs['annotated']} annotated terms)",
            )
        )
    for name in ("difficulty", "hardness"):
        for group, fig in research["by"].get(name, {}).items():
            lines.append((f"EA {name} {group}", _rate_text(fig["ea"]["test_suite"])))
    return lines


def _rate_item(label: str, figure: dict[str, Any] | None) -> dict[str, Any] | None:
    if not figure or not figure.get("rows"):
        return None
    low, high = figure.get("ci95") or (None, None)
    return {
        "label": label,
        "rate": figure["rate"],
        "low": low,
        "high": high,
        "count": figure["count"],
        "rows": figure["rows"],
    }


def figure_sections(research: dict[str, Any], leak_audit: dict[str, Any]) -> list[dict[str, Any]]:
    """The research figures as report sections (masksql_pipe.experiment.charts draws them):
    EA by definition, privacy, and EA by difficulty, hardness and database."""
    ea = [_rate_item(EA_LABELS[k], v) for k, v in research["ea"].items() if k in EA_LABELS]
    sections: list[dict[str, Any]] = [
        {
            "title": "Execution accuracy (95% bootstrap intervals)",
            "rates": [r for r in ea if r],
        }
    ]
    leak = _rate_item("rows with a leak (audit)", research.get("leak"))
    values = []
    if leak_audit.get("incomplete"):
        values.append({"label": "rows with a leak (audit)", "value": "unknown"})
        values.append({"label": "leak audit", "value": leak_audit["incomplete"]})
    if leak_audit.get("audited_rows"):
        for kind, count in leak_audit.get("by_kind", {}).items():
            values.append({"label": f"leaks of kind {kind}", "value": count})
    ris, mcs, reid = research["ris"], research["mcs"], research["reidentification"]
    if ris["rows"]:
        values.append({"label": "RIS (MaskSQL; 1 = nothing re-identified)", "value": ris["mean"]})
    if mcs["rows"]:
        values.append({"label": "MCS (MaskSQL mask coverage)", "value": mcs["mean"]})
    if reid["symbols"]:
        values.append(
            {
                "label": "re-identification (attacker-model estimate)",
                "value": f"{reid['reidentified']}/{reid['symbols']} symbols",
            }
        )
    sections.append(
        {
            "title": "Privacy",
            "rates": [leak] if leak else [],
            "values": values,
            "note": "The leak audit scans the prompts as sent; RIS and MCS are defined as in "
            "MaskSQL's src/pipe/results.py; re-identification is what an attacker model guessed.",
        }
    )
    titles = {
        "difficulty": "EA by difficulty",
        "hardness": "EA by SQL hardness",
        "db_id": "EA by database",
    }
    for name, groups in research["by"].items():
        rates = [_rate_item(group, fig["ea"]["test_suite"]) for group, fig in groups.items()]
        sections.append(
            {"title": titles.get(name, f"EA by {name}"), "rates": [r for r in rates if r]}
        )
    return sections
