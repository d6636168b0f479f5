"""Figure sections of a run as HTML: rates drawn as inline SVG interval bars, values as a table.

A pipeline describes its figures as plain data (`ExperimentPipeline.run_figures`), kept in the
run log under `figures`:

    [{"title": "...", "rates": [{"label", "rate", "low", "high", "count", "rows"}],
      "values": [{"label", "value"}]}]

Nothing here knows what the figures mean; the page stays one file with no scripts.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from masksql_pipe.experiment.stats import pct

BAR_WIDTH = 320
ROW_HEIGHT = 22
LABEL_WIDTH = 230
TEXT_WIDTH = 240


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _x(value: float) -> float:
    return LABEL_WIDTH + max(0.0, min(1.0, value)) * BAR_WIDTH


def rate_chart(rates: Iterable[dict[str, Any]]) -> str:
    """One SVG: a bar per rate (0 to 100%), its 95% interval as a whisker, the figures beside."""
    items = list(rates)
    height = ROW_HEIGHT * len(items) + 20
    width = LABEL_WIDTH + BAR_WIDTH + TEXT_WIDTH
    parts = [
        f'<svg class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img">'
    ]
    for tick in (0.0, 0.5, 1.0):
        x = _x(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 16}" stroke="#d0d7de"/>'
            f'<text x="{x:.1f}" y="{height - 4}" font-size="10" text-anchor="middle" '
            f'fill="#656d76">{int(tick * 100)}%</text>'
        )
    for i, item in enumerate(items):
        y = i * ROW_HEIGHT + 4
        mid = y + 7
        rate, low, high = (_number(item.get(k)) for k in ("rate", "low", "high"))
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{mid + 4}" font-size="12" text-anchor="end">'
            f"{_e(item.get('label', ''))}</text>"
        )
        if rate is not None:
            parts.append(
                f'<rect class="bar" x="{LABEL_WIDTH}" y="{y}" width="{_x(rate) - LABEL_WIDTH:.1f}" '
                f'height="14" fill="#0969da" fill-opacity="0.35"/>'
            )
        if low is not None and high is not None:
            parts.append(
                f'<line class="ci" x1="{_x(low):.1f}" y1="{mid}" x2="{_x(high):.1f}" y2="{mid}" '
                f'stroke="#1f2328" stroke-width="2"/>'
                f'<line x1="{_x(low):.1f}" y1="{mid - 5}" x2="{_x(low):.1f}" y2="{mid + 5}" '
                f'stroke="#1f2328"/>'
                f'<line x1="{_x(high):.1f}" y1="{mid - 5}" x2="{_x(high):.1f}" y2="{mid + 5}" '
                f'stroke="#1f2328"/>'
            )
        counts = ""
        if item.get("rows") is not None:
            counts = f" ({_e(item.get('count'))}/{_e(item.get('rows'))})"
        interval = (
            f" [{pct(low, fraction=True)}, {pct(high, fraction=True)}]" if low is not None else ""
        )
        parts.append(
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{mid + 4}" font-size="12">'
            f"{pct(rate, fraction=True)}{interval}{counts}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def figures_html(sections: Any) -> str:
    """The `figures` of a run log as HTML sections ('' when there are none or they are not a
    list of sections)."""
    if not isinstance(sections, list):
        return ""
    out: list[str] = []
    for section in sections:
        if not isinstance(section, dict):
            continue
        title = _e(section.get("title", ""))
        out.append(f'<section class="figures"><h2>{title}</h2>')
        rates = [r for r in section.get("rates") or [] if isinstance(r, dict)]
        if rates:
            out.append(rate_chart(rates))
        values = [v for v in section.get("values") or [] if isinstance(v, dict)]
        if values:
            out.append("<table><tbody>")
            for value in values:
                out.append(
                    f"<tr><td>{_e(value.get('label', ''))}</td>"
                    f'<td class="num">{_e(value.get("value", ""))}</td></tr>'
                )
            out.append("</tbody></table>")
        note = section.get("note")
        if note:
            out.append(f'<p class="muted">{_e(note)}</p>')
        out.append("</section>")
    return "".join(out)
