"""Chart sections: rates drawn as SVG bars with interval whiskers at hand-computed places."""

from __future__ import annotations

import re

from masksql_pipe.experiment.charts import BAR_WIDTH, LABEL_WIDTH, figures_html, rate_chart


def test_bar_and_whisker_positions_by_hand():
    svg = rate_chart(
        [{"label": "EA", "rate": 0.5, "low": 0.25, "high": 0.75, "count": 2, "rows": 4}]
    )
    # the bar starts at the label column and is half the bar width long
    bar = re.search(r'<rect class="bar" x="(\d+)" y="\d+" width="([\d.]+)"', svg)
    assert bar and int(bar.group(1)) == LABEL_WIDTH
    assert float(bar.group(2)) == BAR_WIDTH / 2
    # the whisker runs from 25% to 75% of the bar width
    ci = re.search(r'<line class="ci" x1="([\d.]+)" y1="\d+" x2="([\d.]+)"', svg)
    assert ci and float(ci.group(1)) == LABEL_WIDTH + BAR_WIDTH / 4
    assert float(ci.group(2)) == LABEL_WIDTH + 3 * BAR_WIDTH / 4
    assert "50.0% [25.0%, 75.0%] (2/4)" in svg


def test_sections_escape_text_and_skip_junk():
    page = figures_html(
        [
            {
                "title": "Privacy <b>",
                "rates": [{"label": "x<y", "rate": 1.0}],
                "values": [{"label": "RIS", "value": 0.75}],
            },
            "not a section",
        ]
    )
    assert "<h2>Privacy &lt;b&gt;</h2>" in page and "x&lt;y" in page
    assert "<td>RIS</td>" in page and "0.75" in page
    assert page.count("<svg") == 1
    assert figures_html(None) == "" and figures_html({"a": 1}) == ""
