"""Summaries, per-case reports and comparisons of run logs, as data and as rich tables.

The functions read a run log dict (one JSON file per run, written by the runtime) and return
plain dataclasses; the ``render_*``/``format_*`` functions print those to a rich Console.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from masksql_pipe.errors import InputError
from masksql_pipe.experiment.significance import paired_test
from masksql_pipe.experiment.stats import pct
from masksql_pipe.experiment.summary import CaseRow, StageRow, Summary, percent

__all__ = [
    "OUTCOMES",
    "CaseChange",
    "CaseRow",
    "Comparison",
    "StageRow",
    "Summary",
    "compare",
    "dollars",
    "format_run",
    "percent",
    "render_comparison",
    "render_summary",
    "summarize",
]

# The outcome of a case, from best to worst; "missing" marks a case absent from one run.
OUTCOMES = ("passed", "failed", "unjudged", "error")
_OUTCOME_STYLE = {
    "passed": "green",
    "failed": "red",
    "unjudged": "yellow",
    "error": "bold red",
    "missing": "dim",
}


def _signed(value: float, digits: int = 0, unit: str = "") -> str:
    return f"{value:+,.{digits}f}{unit}"


# ---------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class CaseChange:
    """A case, matched by id, whose outcome differs between two runs."""

    id: str
    before: str
    after: str
    toks_before: int
    toks_after: int
    latency_before: float
    latency_after: float

    @property
    def kind(self) -> str:
        """improved (now passes), regressed (passed before) or changed (anything else)."""
        if self.after == "passed":
            return "improved"
        if self.before == "passed":
            return "regressed"
        return "changed"


@dataclass(frozen=True)
class Comparison:
    """Two runs side by side: outcome changes of shared cases, accuracy, tokens and latency."""

    a: Summary
    b: Summary
    changed: list[CaseChange]
    unchanged: int
    only_in_a: list[str]
    only_in_b: list[str]

    @property
    def accuracy_delta(self) -> float | None:
        """Accuracy of b minus accuracy of a, in percentage points."""
        if self.a.accuracy is None or self.b.accuracy is None:
            return None
        return self.b.accuracy - self.a.accuracy

    @property
    def toks_delta(self) -> int:
        return self.b.total_toks - self.a.total_toks

    @property
    def latency_delta(self) -> float:
        return self.b.total_latency - self.a.total_latency

    @property
    def cost_delta(self) -> float | None:
        """Dollars of b minus dollars of a (None unless both runs have a cost)."""
        if self.a.cost is None or self.b.cost is None:
            return None
        return self.b.cost - self.a.cost

    @property
    def improved(self) -> list[CaseChange]:
        return [change for change in self.changed if change.kind == "improved"]

    @property
    def regressed(self) -> list[CaseChange]:
        return [change for change in self.changed if change.kind == "regressed"]


# ---------------------------------------------------------------------------------------------
# Reading a run log


def _run_name(run: Any) -> str:
    return str(run.get("id", "?")) if isinstance(run, dict) else "?"


def _number(run: Any, where: str, value: Any, kind: type, default: Any) -> Any:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"run log {_run_name(run)}: {where} is {value!r}, expected a number")
    return kind(value)


def _case_row(run: dict[str, Any], position: int, case: Any) -> CaseRow:
    if not isinstance(case, dict):
        raise InputError(f"run log {_run_name(run)}: case #{position} is not an object")
    if case.get("id") is None:
        raise InputError(f"run log {_run_name(run)}: case #{position} has no 'id'")
    case_id = str(case["id"])
    where = f"case {case_id!r}"
    status = case.get("status")
    if status not in ("complete", "error"):
        raise InputError(
            f"run log {_run_name(run)}: {where} has status {status!r}, "
            "expected 'complete' or 'error'"
        )
    passed = case.get("passed")
    if passed is not None and not isinstance(passed, bool):
        raise InputError(
            f"run log {_run_name(run)}: {where} has passed={passed!r}, expected true/false/null"
        )
    error = case.get("error") if isinstance(case.get("error"), dict) else {}
    stage_results = case.get("stages") if isinstance(case.get("stages"), dict) else {}
    return CaseRow(
        index=_number(run, f"{where} index", case.get("index"), int, position),
        id=case_id,
        status=status,
        passed=passed,
        total_toks=_number(run, f"{where} total_toks", case.get("total_toks"), int, 0),
        total_latency=_number(run, f"{where} total_latency", case.get("total_latency"), float, 0.0),
        error_stage=None if error.get("stage") is None else str(error["stage"]),
        error_type=None if error.get("type") is None else str(error["type"]),
        error_message=None if error.get("message") is None else str(error["message"]),
        result=case.get("result"),
        stage_results=dict(stage_results),
    )


def _stage_row(run: dict[str, Any], position: int, stage: Any) -> StageRow:
    if not isinstance(stage, dict):
        raise InputError(f"run log {_run_name(run)}: stage #{position} is not an object")
    name = str(stage.get("name", f"#{position}"))
    stats = stage.get("stats") if isinstance(stage.get("stats"), dict) else {}

    def num(key: str, value: Any, kind: type, default: Any) -> Any:
        return _number(run, f"stage {name!r} {key}", value, kind, default)

    return StageRow(
        index=num("index", stage.get("index"), int, position),
        name=name,
        status=str(stage.get("status", "")),
        rows=num("rows", stage.get("rows"), int, 0),
        errors=num("errors", stage.get("errors"), int, 0),
        duration=num("duration", stage.get("duration"), float, 0.0),
        prompt_tokens=num("prompt_tokens", stats.get("prompt_tokens"), int, 0),
        completion_tokens=num("completion_tokens", stats.get("completion_tokens"), int, 0),
        calls=num("calls", stats.get("calls"), int, 0),
        cache_hits=num("cache_hits", stats.get("cache_hits"), int, 0),
        cost=num("cost", stats.get("cost"), float, None),
    )


def summarize(run: dict[str, Any]) -> Summary:
    """Per-case and per-stage rows with totals, computed from the run log's cases and stages."""
    if not isinstance(run, dict):
        raise InputError("run log: expected a JSON object at the top")
    cases = run.get("cases")
    if not isinstance(cases, list):
        raise InputError(f"run log {_run_name(run)}: 'cases' is missing or not a list")
    stages = run.get("stages") or []
    if not isinstance(stages, list):
        raise InputError(f"run log {_run_name(run)}: 'stages' is not a list")
    return Summary(
        run_id=_run_name(run),
        pipeline=str(run.get("pipeline", "?")),
        created=run.get("created"),
        finished=run.get("finished"),
        cases=[_case_row(run, i, case) for i, case in enumerate(cases)],
        stages=[_stage_row(run, i, stage) for i, stage in enumerate(stages)],
        figures=_stage_figures(stages),
    )


def _stage_figures(stages: list[Any]) -> list[tuple[str, str, str]]:
    """The `figures` ({label: value}) that stages put in their stats, in stage order."""
    found = []
    for stage in stages:
        stats = stage.get("stats") if isinstance(stage, dict) else None
        figures = stats.get("figures") if isinstance(stats, dict) else None
        if isinstance(figures, dict):
            name = str(stage.get("name", "?"))
            found += [(name, str(label), str(value)) for label, value in figures.items()]
    return found


def _by_id(summary: Summary) -> dict[str, CaseRow]:
    rows: dict[str, CaseRow] = {}
    for row in summary.cases:
        if row.id in rows:
            raise InputError(f"run log {summary.run_id}: case id {row.id!r} appears twice")
        rows[row.id] = row
    return rows


def compare(run_a: dict[str, Any], run_b: dict[str, Any]) -> Comparison:
    """Match the cases of two runs by id and list those whose outcome changed from a to b."""
    a, b = summarize(run_a), summarize(run_b)
    rows_a, rows_b = _by_id(a), _by_id(b)
    changed: list[CaseChange] = []
    unchanged = 0
    for case_id, before in rows_a.items():
        after = rows_b.get(case_id)
        if after is None:
            continue
        if before.outcome == after.outcome:
            unchanged += 1
            continue
        changed.append(
            CaseChange(
                id=case_id,
                before=before.outcome,
                after=after.outcome,
                toks_before=before.total_toks,
                toks_after=after.total_toks,
                latency_before=before.total_latency,
                latency_after=after.total_latency,
            )
        )
    return Comparison(
        a=a,
        b=b,
        changed=changed,
        unchanged=unchanged,
        only_in_a=[case_id for case_id in rows_a if case_id not in rows_b],
        only_in_b=[case_id for case_id in rows_b if case_id not in rows_a],
    )


# ---------------------------------------------------------------------------------------------
# Rendering


def dollars(value: float | None) -> str:
    """Dollars with 4 decimals; "-" where there is no price (never a made-up figure)."""
    return "-" if value is None else f"{value:.4f}"


def _outcome_text(outcome: str) -> Text:
    return Text(outcome, style=_OUTCOME_STYLE.get(outcome, ""))


def _compact(value: Any, limit: int = 300) -> str:
    """One-line JSON of a value, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut(text: str, limit: int) -> str:
    """Text on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _stage_table(summary: Summary, title: str = "Stages") -> Table:
    table = Table(title=title)
    for column in ("#", "stage", "status", "rows", "errors", "seconds", "tokens", "calls"):
        table.add_column(column, justify="left" if column in ("stage", "status") else "right")
    table.add_column("cache hits", justify="right")
    priced = any(stage.cost is not None for stage in summary.stages)
    if priced:
        table.add_column("cost $", justify="right")
    for stage in summary.stages:
        cost = [] if not priced else [dollars(stage.cost)]
        table.add_row(
            str(stage.index),
            Text(stage.name),
            Text(stage.status),
            f"{stage.rows:,}",
            Text(f"{stage.errors:,}", style="red" if stage.errors else ""),
            f"{stage.duration:.2f}",
            f"{stage.tokens:,}",
            f"{stage.calls:,}",
            f"{stage.cache_hits:,}",
            *cost,
        )
    return table


def _totals_table(summary: Summary) -> Table:
    table = Table(title=f"Run {summary.run_id} ({summary.pipeline})", show_header=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("share", justify="right")
    table.add_row("cases", f"{summary.total:,}", "")
    table.add_row("complete", f"{summary.complete:,}", pct(summary.complete_pct))
    table.add_row("errors", f"{summary.error:,}", pct(summary.error_pct))
    if summary.judged:
        table.add_row("passed", f"{summary.passed:,}", pct(summary.accuracy))
        table.add_row("failed", f"{summary.failed:,}", pct(summary.failed_pct))
        table.add_row("not judged", f"{summary.unjudged:,}", "")
        table.add_row("passed / complete", "", pct(summary.passed_of_complete))
    else:  # the pipeline judges no case: nothing passed or failed, it was not measured
        table.add_row("passed", "n/a", "n/a")
        table.add_row("failed", "n/a", "n/a")
        table.add_row("passed / complete", "", "n/a")
    table.add_row("tokens", f"{summary.total_toks:,}", "")
    table.add_row("latency (s)", f"{summary.total_latency:.2f}", "")
    if summary.cost is not None:
        table.add_row("cost ($)", dollars(summary.cost), "")
    if summary.duration is not None:
        table.add_row("wall time (s)", f"{summary.duration:.2f}", "")
    return table


def render_summary(run: dict[str, Any], console: Console) -> Summary:
    """Print a run's stage table, case table and totals; returns the Summary it printed."""
    summary = summarize(run)
    if summary.figures:
        figures = Table(title="Figures")
        for column in ("figure", "value", "stage"):
            figures.add_column(column)
        for stage, label, value in summary.figures:
            figures.add_row(Text(label), Text(value), Text(stage))
        console.print(figures)
    if summary.stages:
        console.print(_stage_table(summary))
    cases = Table(title="Cases")
    cases.add_column("#", justify="right")
    cases.add_column("case")
    cases.add_column("outcome")
    cases.add_column("tokens", justify="right")
    cases.add_column("latency (s)", justify="right")
    cases.add_column("error")
    for case in summary.cases:
        error = ""
        if case.outcome == "error":
            error = f"{case.error_stage or '?'}: {case.error_type or 'Error'}: "
            error += case.error_message or ""
        cases.add_row(
            str(case.index),
            Text(case.id),
            _outcome_text(case.outcome),
            f"{case.total_toks:,}",
            f"{case.total_latency:.2f}",
            Text(_cut(error, 120)),
        )
    console.print(cases)
    console.print(_totals_table(summary))
    return summary


def format_run(run: dict[str, Any], console: Console) -> None:
    """Print a readable report of every case: outcome, error (stage, message), key results."""
    summary = summarize(run)
    console.print(Text(f"Run {summary.run_id} ({summary.pipeline})", style="bold"))
    for case in summary.cases:
        console.print()
        line = Text(f"[{case.index}] ")
        line.append(case.id, style="bold")
        line.append("  ")
        line.append_text(_outcome_text(case.outcome))
        line.append(f"  {case.total_toks:,} tokens  {case.total_latency:.2f} s", style="dim")
        console.print(line)
        if case.outcome == "error":
            console.print(
                Text(
                    f"  error in stage {case.error_stage or '?'}: "
                    f"{case.error_type or 'Error'}: {case.error_message or ''}",
                    style="red",
                )
            )
        for name, value in case.stage_results.items():
            console.print(Text(f"  {name}: {_compact(value)}"))
        if case.result is not None:
            console.print(Text(f"  result: {_compact(case.result)}"))
    console.print()
    if not summary.judged:
        console.print(
            Text(
                f"{summary.complete} complete, {summary.error} errors of {summary.total} cases; "
                "passed and accuracy n/a (the pipeline judges no case)"
            )
        )
        return
    console.print(
        Text(
            f"{summary.passed} passed, {summary.failed} failed, {summary.unjudged} not judged, "
            f"{summary.error} errors of {summary.total} cases; accuracy {pct(summary.accuracy)}"
        )
    )


def render_comparison(cmp: Comparison, console: Console) -> None:
    """Print two runs' figures side by side with deltas, then the cases whose outcome changed."""
    a, b = cmp.a, cmp.b
    table = Table(title="Comparison")
    table.add_column("measure")
    table.add_column(Text(f"A {a.run_id}"), justify="right")
    table.add_column(Text(f"B {b.run_id}"), justify="right")
    table.add_column("B - A", justify="right")
    table.add_row("pipeline", Text(a.pipeline), Text(b.pipeline), "")
    table.add_row("cases", f"{a.total:,}", f"{b.total:,}", _signed(b.total - a.total))
    table.add_row("passed", f"{a.passed:,}", f"{b.passed:,}", _signed(b.passed - a.passed))
    table.add_row("failed", f"{a.failed:,}", f"{b.failed:,}", _signed(b.failed - a.failed))
    table.add_row("errors", f"{a.error:,}", f"{b.error:,}", _signed(b.error - a.error))
    delta = cmp.accuracy_delta
    table.add_row(
        "accuracy",
        pct(a.accuracy),
        pct(b.accuracy),
        "n/a" if delta is None else _signed(delta, 1, " pts"),
    )
    table.add_row("tokens", f"{a.total_toks:,}", f"{b.total_toks:,}", _signed(cmp.toks_delta))
    table.add_row(
        "latency (s)",
        f"{a.total_latency:.2f}",
        f"{b.total_latency:.2f}",
        _signed(cmp.latency_delta, 2),
    )
    if a.cost is not None or b.cost is not None:
        delta_cost = cmp.cost_delta
        table.add_row(
            "cost ($)",
            dollars(a.cost),
            dollars(b.cost),
            "n/a" if delta_cost is None else f"{delta_cost:+.4f}",
        )
    console.print(table)
    console.print(Text(paired_test(a, b).line()))
    if cmp.changed:
        changes = Table(title=f"Changed cases ({len(cmp.changed)})")
        changes.add_column("case")
        changes.add_column("A")
        changes.add_column("B")
        changes.add_column("kind")
        changes.add_column("tokens A -> B", justify="right")
        for change in cmp.changed:
            changes.add_row(
                Text(change.id),
                _outcome_text(change.before),
                _outcome_text(change.after),
                change.kind,
                f"{change.toks_before:,} -> {change.toks_after:,}",
            )
        console.print(changes)
    else:
        console.print(f"No shared case changed outcome ({cmp.unchanged} shared cases).")
    for label, ids in (("only in A", cmp.only_in_a), ("only in B", cmp.only_in_b)):
        if ids:
            console.print(Text(f"{len(ids)} case(s) {label}: {', '.join(ids)}"))
