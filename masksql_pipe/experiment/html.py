"""Self-contained HTML reports of a run log and of two runs side by side, viewable offline.

One page per report: inline CSS, no scripts, no external URLs; every piece of run text escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

from masksql_pipe.experiment.charts import figures_html
from masksql_pipe.experiment.config import redact, to_jsonable
from masksql_pipe.experiment.config_diff import config_differences
from masksql_pipe.experiment.report import (
    Comparison,
    StageRow,
    Summary,
    compare,
    dollars,
    percent,
    summarize,
)
from masksql_pipe.experiment.significance import paired_test
from masksql_pipe.experiment.stats import pct

__all__ = ["comparison_html", "run_html"]

_CSS = """
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa;
        --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --bar: #0969da; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       margin: 0 auto; padding: 24px; max-width: 1200px; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 10px; overflow: auto;
      font-size: 12px; white-space: pre-wrap; word-break: break-word; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left;
         vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tfoot td { font-weight: 600; background: var(--bg); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.card .value { font-size: 22px; font-weight: 600; }
.card .label { color: var(--muted); font-size: 12px; }
.bar { background: var(--bg); border: 1px solid var(--line); height: 12px; width: 100%;
       min-width: 80px; }
.bar span { display: block; height: 100%; background: var(--bar); }
.bar.err span { background: var(--bad); }
.passed, .improved { color: var(--ok); font-weight: 600; }
.failed, .regressed, .error { color: var(--bad); font-weight: 600; }
.unjudged, .missing, .changed { color: var(--warn); }
.muted { color: var(--muted); }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.side > div { min-width: 0; }
.scroll { overflow-x: auto; max-width: 100%; }
""".strip()


class _Html(str):
    """Text that is already HTML (built here from escaped parts); never escaped again."""

    __slots__ = ()


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value: Any) -> str:
    return value if isinstance(value, _Html) else _e(value)


def _num(value: float, digits: int = 0) -> _Html:
    return _Html(f"{value:,.{digits}f}")


def _signed(value: float | None, digits: int = 0, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:+,.{digits}f}{unit}"


def _span(cls: str, text: Any) -> _Html:
    return _Html(f'<span class="{_e(cls)}">{_e(text)}</span>')


def _bar(share: float | None, error: bool = False) -> _Html:
    width = 0.0 if share is None else max(0.0, min(100.0, share))
    cls = "bar err" if error else "bar"
    return _Html(f'<div class="{cls}"><span style="width: {width:.1f}%"></span></div>')


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    numeric: Iterable[int] = (),
    foot: Sequence[Any] | None = None,
) -> str:
    """An HTML table; cells are escaped unless they are _Html; ``numeric`` columns align right."""
    right = set(numeric)

    def row(cells: Sequence[Any], tag: str) -> str:
        parts = []
        for i, cell in enumerate(cells):
            cls = ' class="num"' if i in right else ""
            parts.append(f"<{tag}{cls}>{_cell(cell)}</{tag}>")
        return "<tr>" + "".join(parts) + "</tr>"

    # the scroll box keeps a wide table inside its column (side-by-side comparisons)
    out = ['<div class="scroll">', "<table>", "<thead>", row(headers, "th"), "</thead>", "<tbody>"]
    out += [row(cells, "td") for cells in rows]
    out.append("</tbody>")
    if foot is not None:
        out += ["<tfoot>", row(foot, "td"), "</tfoot>"]
    out += ["</table>", "</div>"]
    return "\n".join(out)


def _page(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>\n{_CSS}\n</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def _compact(value: Any, limit: int = 200) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Sections


def _meta(run: dict[str, Any], summary: Summary) -> str:
    argv = redact(run.get("argv") or [])
    items: list[tuple[str, Any]] = [
        ("pipeline", summary.pipeline),
        ("created", summary.created),
        ("finished", summary.finished),
        ("wall time", None if summary.duration is None else f"{summary.duration:.2f} s"),
        ("git commit", run.get("git_commit")),
        ("data", run.get("data_dir")),
        ("arguments", " ".join(str(arg) for arg in argv) if argv else None),
        ("interrupted", run.get("interrupted")),
    ]
    rows = [
        f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in items if value is not None
    ]
    return '<dl class="meta">\n' + "\n".join(rows) + "\n</dl>"


def _cards(summary: Summary) -> str:
    cards = [
        (pct(summary.accuracy), f"accuracy: {summary.passed} passed of {summary.total} cases"),
        (
            pct(summary.passed_of_complete),
            f"passed of complete: {summary.passed} / {summary.complete}",
        ),
        (
            f"{summary.passed} / {summary.complete} / {summary.total}",
            "passed / complete / total",
        ),
        (f"{summary.error:,}", f"errors ({pct(summary.error_pct)})"),
        (f"{summary.failed:,}", f"failed ({pct(summary.failed_pct)})"),
        (f"{summary.unjudged:,}", "complete, not judged"),
        (f"{summary.total_toks:,}", "tokens (sum over cases)"),
        (f"{summary.total_latency:.2f} s", "latency (sum over cases)"),
    ]
    if summary.cost is not None:
        cards.append((f"${summary.cost:.4f}", "cost of this run's model calls"))
    parts = [
        f'<div class="card"><div class="value">{_e(value)}</div>'
        f'<div class="label">{_e(label)}</div></div>'
        for value, label in cards
    ]
    return '<div class="cards">\n' + "\n".join(parts) + "\n</div>"


def _funnel(stages: list[StageRow]) -> str:
    if not stages:
        return '<p class="muted">No stages recorded.</p>'
    most = max((stage.rows for stage in stages), default=0)
    rows = [
        [
            _num(stage.index),
            stage.name,
            stage.status,
            _num(stage.rows),
            _bar(percent(stage.rows, most)),
            _num(stage.errors),
            _bar(percent(stage.errors, stage.rows), error=True),
            pct(percent(stage.errors, stage.rows)),
        ]
        for stage in stages
    ]
    return _table(
        ["#", "stage", "status", "rows in", "", "rows with errors", "", "error share"],
        rows,
        numeric=(0, 3, 5, 7),
    )


def _costs(stages: list[StageRow]) -> str:
    if not stages:
        return '<p class="muted">No stages recorded.</p>'
    rows = [
        [
            stage.name,
            _num(stage.duration, 2),
            _num(stage.prompt_tokens),
            _num(stage.completion_tokens),
            _num(stage.tokens),
            _num(stage.calls),
            _num(stage.cache_hits),
        ]
        for stage in stages
    ]
    foot = [
        "all stages",
        _num(sum(stage.duration for stage in stages), 2),
        _num(sum(stage.prompt_tokens for stage in stages)),
        _num(sum(stage.completion_tokens for stage in stages)),
        _num(sum(stage.tokens for stage in stages)),
        _num(sum(stage.calls for stage in stages)),
        _num(sum(stage.cache_hits for stage in stages)),
    ]
    headers = ["stage", "seconds", "prompt tokens", "completion tokens", "tokens", "calls"]
    headers.append("cache hits")
    if any(stage.cost is not None for stage in stages):  # no price, no cost column
        for row, stage in zip(rows, stages, strict=True):
            row.append(dollars(stage.cost))
        foot.append(dollars(_spent(stages)))
        headers.append("cost $")
    return _table(headers, rows, numeric=range(1, len(headers)), foot=foot)


def _spent(stages: list[StageRow]) -> float | None:
    """Dollars of the stages that ran (None when none had a priced model)."""
    if all(stage.cost is None for stage in stages):
        return None
    return sum(stage.cost for stage in stages if stage.cost is not None and not stage.reused)


def _cases(summary: Summary) -> str:
    if not summary.cases:
        return '<p class="muted">No cases.</p>'
    rows = []
    for case in summary.cases:
        error = ""
        if case.outcome == "error":
            error = f"{case.error_type or 'Error'}: {case.error_message or ''}"
        rows.append(
            [
                _num(case.index),
                case.id,
                _span(case.outcome, case.outcome),
                _num(case.total_toks),
                _num(case.total_latency, 2),
                case.error_stage or "",
                error,
                "" if case.result is None else _compact(case.result),
            ]
        )
    foot = [
        "",
        f"{summary.total} cases",
        f"{summary.passed} passed",
        _num(summary.total_toks),
        _num(summary.total_latency, 2),
        "",
        f"{summary.error} errors",
        "",
    ]
    return _table(
        ["#", "case", "outcome", "tokens", "latency (s)", "error stage", "error", "result"],
        rows,
        numeric=(0, 3, 4),
        foot=foot,
    )


def _figures(summary: Summary) -> list[str]:
    """The figures stages reported (a leak audit, ...), as a section; none: nothing."""
    if not summary.figures:
        return []
    rows = [(label, value, stage) for stage, label, value in summary.figures]
    return [
        '<section id="figures">',
        "<h2>Figures</h2>",
        _table(["figure", "value", "stage"], rows),
        "</section>",
    ]


def _charts(run: dict[str, Any]) -> str:
    """The chart sections stages left in their stats (`charts`; see experiment.charts)."""
    return "".join(
        figures_html((stage.get("stats") or {}).get("charts"))
        for stage in run.get("stages") or []
        if isinstance(stage, dict)
    )


def _config_text(config: Any) -> str:
    return json.dumps(redact(to_jsonable(config)), indent=2, ensure_ascii=False, default=str)


def run_html(run: dict[str, Any]) -> str:
    """A self-contained HTML page for one run log: header, accuracy, stage funnel, costs, cases."""
    summary = summarize(run)
    body = [
        "<header>",
        f"<h1>Run <code>{_e(summary.run_id)}</code></h1>",
        _meta(run, summary),
        "</header>",
        '<section id="accuracy">',
        "<h2>Accuracy</h2>",
        _cards(summary),
        "</section>",
        *_figures(summary),
        _charts(run),
        '<section id="funnel">',
        "<h2>Stage funnel</h2>",
        _funnel(summary.stages),
        "</section>",
        '<section id="costs">',
        "<h2>Tokens and latency per stage</h2>",
        _costs(summary.stages),
        "</section>",
        '<section id="cases">',
        "<h2>Cases</h2>",
        _cases(summary),
        "</section>",
        '<section id="config">',
        "<h2>Configuration</h2>",
        f"<pre>{_e(_config_text(run.get('config', {})))}</pre>",
        "</section>",
    ]
    return _page(f"Run {summary.run_id} ({summary.pipeline})", body)


# ---------------------------------------------------------------------------------------------
# Comparison


def _metrics(cmp: Comparison) -> str:
    a, b = cmp.a, cmp.b
    rows = [
        ["pipeline", a.pipeline, b.pipeline, ""],
        ["created", a.created or "", b.created or "", ""],
        ["cases", _num(a.total), _num(b.total), _signed(b.total - a.total)],
        ["complete", _num(a.complete), _num(b.complete), _signed(b.complete - a.complete)],
        ["passed", _num(a.passed), _num(b.passed), _signed(b.passed - a.passed)],
        ["failed", _num(a.failed), _num(b.failed), _signed(b.failed - a.failed)],
        ["errors", _num(a.error), _num(b.error), _signed(b.error - a.error)],
        ["accuracy", pct(a.accuracy), pct(b.accuracy), _signed(cmp.accuracy_delta, 1, " pts")],
        ["tokens", _num(a.total_toks), _num(b.total_toks), _signed(cmp.toks_delta)],
        [
            "latency (s)",
            _num(a.total_latency, 2),
            _num(b.total_latency, 2),
            _signed(cmp.latency_delta, 2),
        ],
    ]
    if a.cost is not None or b.cost is not None:
        delta = cmp.cost_delta
        rows.append(
            ["cost ($)", dollars(a.cost), dollars(b.cost), "" if delta is None else f"{delta:+.4f}"]
        )
    return _table(["measure", f"A: {a.run_id}", f"B: {b.run_id}", "B - A"], rows, numeric=(1, 2, 3))


def _changes(cmp: Comparison) -> str:
    if not cmp.changed:
        return f'<p class="muted">No shared case changed outcome ({cmp.unchanged} shared).</p>'
    rows = [
        [
            change.id,
            _span(change.before, change.before),
            _span(change.after, change.after),
            _span(change.kind, change.kind),
            _num(change.toks_before),
            _num(change.toks_after),
            _num(change.latency_before, 2),
            _num(change.latency_after, 2),
        ]
        for change in cmp.changed
    ]
    headers = ["case", "A", "B", "kind", "tokens A", "tokens B", "latency A (s)"]
    table = _table([*headers, "latency B (s)"], rows, numeric=range(4, 8))
    note = (
        f"<p>{len(cmp.changed)} changed: {len(cmp.improved)} improved, "
        f"{len(cmp.regressed)} regressed; {cmp.unchanged} shared cases unchanged.</p>"
    )
    return note + "\n" + table


def _only(cmp: Comparison) -> str:
    parts = []
    for label, ids in (("Only in A", cmp.only_in_a), ("Only in B", cmp.only_in_b)):
        if ids:
            parts.append(f"<p>{_e(label)} ({len(ids)}): {_e(', '.join(ids))}</p>")
    return "\n".join(parts)


def _config_diff(config_a: Any, config_b: Any) -> str:
    differences = config_differences(config_a, config_b)
    if not differences:
        return '<p class="muted">The configurations are the same.</p>'
    rows = [[_Html(f"<code>{_e(key)}</code>"), a, b] for key, a, b in differences]
    return _table(["setting", "A", "B"], rows)


def comparison_html(run_a: dict[str, Any], run_b: dict[str, Any]) -> str:
    """A self-contained HTML page comparing two run logs: figures side by side, changed cases."""
    cmp = compare(run_a, run_b)
    a, b = cmp.a, cmp.b
    sides = []
    for label, run, summary in (("A", run_a, a), ("B", run_b, b)):
        sides += [
            "<div>",
            f"<h2>{label}: <code>{_e(summary.run_id)}</code></h2>",
            _meta(run, summary),
            "<h3>Stage funnel</h3>",
            _funnel(summary.stages),
            "<h3>Tokens and latency per stage</h3>",
            _costs(summary.stages),
            "</div>",
        ]
    body = [
        "<header>",
        f"<h1>Compare <code>{_e(a.run_id)}</code> and <code>{_e(b.run_id)}</code></h1>",
        "</header>",
        '<section id="metrics">',
        "<h2>Figures</h2>",
        _metrics(cmp),
        "</section>",
        '<section id="changed">',
        "<h2>Changed cases</h2>",
        f'<p id="paired-test">{_e(paired_test(a, b).line())}</p>',
        _changes(cmp),
        _only(cmp),
        "</section>",
        '<section id="runs" class="side">',
        *sides,
        "</section>",
        '<section id="config">',
        "<h2>Configuration differences</h2>",
        _config_diff(run_a.get("config", {}), run_b.get("config", {})),
        "</section>",
    ]
    return _page(f"Compare {a.run_id} and {b.run_id}", body)
