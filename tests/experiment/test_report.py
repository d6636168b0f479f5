"""Tests for run-log summaries, comparisons, rich rendering and the offline HTML reports."""

from __future__ import annotations

import copy
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from masksql_pipe.errors import InputError
from masksql_pipe.experiment.html import comparison_html, run_html
from masksql_pipe.experiment.report import (
    compare,
    format_run,
    render_comparison,
    render_summary,
    summarize,
)


def case(
    index: int,
    case_id: str,
    passed: bool | None,
    toks: int,
    latency: float,
    *,
    error: dict[str, Any] | None = None,
    result: Any = None,
) -> dict[str, Any]:
    """One case of a run log, as the runtime writes it."""
    return {
        "index": index,
        "id": case_id,
        "status": "error" if error else "complete",
        "passed": None if error else passed,
        "error": error,
        "total_toks": toks,
        "total_latency": latency,
        "result": result,
    }


def stage(
    index: int, name: str, rows: int, errors: int, duration: float, **stats: int
) -> dict[str, Any]:
    full = {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0, "cache_hits": 0, **stats}
    return {
        "index": index,
        "name": name,
        "file": f"{index}_{name}.json",
        "status": "ran",
        "rows": rows,
        "errors": errors,
        "duration": duration,
        "stats": full,
    }


def run_a() -> dict[str, Any]:
    """Five cases: 2 passed, 1 failed, 1 not judged, 1 error; 500 tokens, 5.0 s latency."""
    return {
        "id": "20261122-021500-ab12cd",
        "created": "2026-11-22T02:15:00+00:00",
        "finished": "2026-11-22T02:15:09+00:00",
        "git_commit": "abc1234",
        "pipeline": "simple",
        "data_dir": "/abs/path/to/data",
        "argv": ["--data", "x", "infer.model.name=perfect", "infer.model.api_key=sk-ARGVSECRET"],
        "config": {
            "infer": {
                "model": {
                    "name": "perfect",
                    "api_key": "sk-CONFIGSECRET",
                    "base_url": "https://api.example.com/v1",
                    "settings": {"max_tokens": 800},
                }
            },
            "prepare": {"template": "<Prompt: Template file>", "template_text": "Hi <there>"},
        },
        "stages": [
            stage(2, "prepare", 5, 0, 0.25),
            stage(
                3,
                "infer",
                5,
                1,
                3.5,
                prompt_tokens=300,
                completion_tokens=200,
                calls=5,
                cache_hits=1,
            ),
            stage(4, "extract", 4, 0, 0.125),
        ],
        "cases": [
            case(0, "c1", True, 100, 1.0, result={"answer": 42}),
            case(1, "c2", False, 200, 2.0, result={"answer": 41}),
            case(2, "c3", None, 50, 0.5),
            case(
                3,
                "c4",
                None,
                30,
                0.25,
                error={
                    "stage": "infer",
                    "type": "ModelError",
                    "message": "rate limited [bold]<b>&</b>",
                    "traceback": "Traceback ...",
                },
            ),
            case(4, "c5", True, 120, 1.25),
        ],
        "totals": {"cases": 5},
    }


def run_b() -> dict[str, Any]:
    """The same cases after a change, plus c6: 4 passed of 6, 420 tokens, 4.1 s latency."""
    run = run_a()
    run["id"] = "20261122-031500-ef34gh"
    run["config"]["infer"]["model"]["name"] = "echo"
    run["cases"] = [
        case(0, "c1", True, 90, 0.9),
        case(1, "c2", True, 210, 2.0),
        case(2, "c3", False, 50, 0.5),
        case(3, "c4", True, 40, 0.5),
        case(4, "c5", None, 20, 0.1, error={"stage": "extract", "type": "ValueError"}),
        case(5, "c6", True, 10, 0.1),
    ]
    return run


# --- summarize ------------------------------------------------------------------------------


def test_summarize_totals_and_percentages() -> None:
    summary = summarize(run_a())
    assert summary.run_id == "20261122-021500-ab12cd"
    assert summary.pipeline == "simple"
    assert (summary.total, summary.complete, summary.error) == (5, 4, 1)
    assert (summary.passed, summary.failed, summary.unjudged) == (2, 1, 1)
    assert summary.total_toks == 500
    assert summary.total_latency == pytest.approx(5.0)
    assert summary.accuracy == pytest.approx(40.0)  # 2 of 5
    assert summary.complete_pct == pytest.approx(80.0)  # 4 of 5
    assert summary.error_pct == pytest.approx(20.0)
    assert summary.failed_pct == pytest.approx(20.0)
    assert summary.passed_of_complete == pytest.approx(50.0)  # 2 of 4
    assert summary.duration == pytest.approx(9.0)


def test_summarize_case_and_stage_rows() -> None:
    summary = summarize(run_a())
    assert [(c.id, c.outcome) for c in summary.cases] == [
        ("c1", "passed"),
        ("c2", "failed"),
        ("c3", "unjudged"),
        ("c4", "error"),
        ("c5", "passed"),
    ]
    c4 = summary.cases[3]
    assert (c4.error_stage, c4.error_type) == ("infer", "ModelError")
    assert c4.total_toks == 30
    infer = summary.stages[1]
    assert (infer.name, infer.rows, infer.errors, infer.tokens, infer.calls) == (
        "infer",
        5,
        1,
        500,
        5,
    )


def test_summarize_empty_run_has_no_percentages() -> None:
    summary = summarize({"id": "empty", "cases": []})
    assert summary.total == 0
    assert summary.accuracy is None
    assert summary.passed_of_complete is None
    assert summary.duration is None


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r.pop("cases"), "'cases' is missing"),
        (lambda r: r["cases"][1].update(status="done"), "case 'c2' has status 'done'"),
        (lambda r: r["cases"][2].pop("id"), "case #2 has no 'id'"),
        (lambda r: r["cases"][0].update(total_toks="many"), "case 'c1' total_toks"),
        (lambda r: r["cases"][0].update(passed="yes"), "case 'c1' has passed='yes'"),
        (lambda r: r["stages"][1].update(rows="x"), "stage 'infer' rows"),
    ],
)
def test_bad_run_log_is_one_clear_line(mutate: Any, expected: str) -> None:
    run = run_a()
    mutate(run)
    with pytest.raises(InputError) as info:
        summarize(run)
    message = str(info.value)
    assert expected in message
    assert "20261122-021500-ab12cd" in message
    assert "\n" not in message


# --- compare --------------------------------------------------------------------------------


def test_compare_finds_exactly_the_changed_cases() -> None:
    cmp = compare(run_a(), run_b())
    assert [(c.id, c.before, c.after, c.kind) for c in cmp.changed] == [
        ("c2", "failed", "passed", "improved"),
        ("c3", "unjudged", "failed", "changed"),
        ("c4", "error", "passed", "improved"),
        ("c5", "passed", "error", "regressed"),
    ]
    assert [c.id for c in cmp.improved] == ["c2", "c4"]
    assert [c.id for c in cmp.regressed] == ["c5"]
    assert cmp.unchanged == 1  # c1
    assert cmp.only_in_a == []
    assert cmp.only_in_b == ["c6"]
    c4 = cmp.changed[2]
    assert (c4.toks_before, c4.toks_after) == (30, 40)


def test_compare_accuracy_tokens_and_latency() -> None:
    cmp = compare(run_a(), run_b())
    assert cmp.a.accuracy == pytest.approx(40.0)
    assert cmp.b.accuracy == pytest.approx(400 / 6)
    assert cmp.accuracy_delta == pytest.approx(400 / 6 - 40.0)
    assert (cmp.a.total_toks, cmp.b.total_toks, cmp.toks_delta) == (500, 420, -80)
    assert cmp.b.total_latency == pytest.approx(4.1)
    assert cmp.latency_delta == pytest.approx(-0.9)


def test_compare_identical_runs_changes_nothing() -> None:
    cmp = compare(run_a(), run_a())
    assert cmp.changed == []
    assert cmp.unchanged == 5
    assert cmp.accuracy_delta == 0


def test_compare_reports_cases_only_in_a_and_duplicate_ids() -> None:
    short = run_a()
    short["cases"] = short["cases"][:2]
    cmp = compare(run_a(), short)
    assert cmp.only_in_a == ["c3", "c4", "c5"]
    assert cmp.changed == []
    twice = run_a()
    twice["cases"].append(case(5, "c1", True, 1, 0.1))
    with pytest.raises(InputError, match="case id 'c1' appears twice"):
        compare(run_a(), twice)


# --- rich rendering -------------------------------------------------------------------------


def console() -> Console:
    return Console(record=True, width=200, color_system=None)


def test_render_summary_prints_the_figures() -> None:
    out = console()
    render_summary(run_a(), out)
    text = out.export_text()
    assert "40.0%" in text  # accuracy, 2 of 5
    assert "80.0%" in text  # complete, 4 of 5
    assert "500" in text  # tokens
    assert "5.00" in text  # latency
    # User text with rich markup is printed literally, not interpreted.
    assert "rate limited [bold]<b>&</b>" in text
    for name in ("prepare", "infer", "extract", "c1", "c5"):
        assert name in text


def test_format_run_shows_outcome_error_and_results() -> None:
    out = console()
    format_run(run_a(), out)
    text = out.export_text()
    assert "error in stage infer: ModelError: rate limited [bold]<b>&</b>" in text
    assert 'result: {"answer": 42}' in text
    assert "2 passed, 1 failed, 1 not judged, 1 errors of 5 cases; accuracy 40.0%" in text


def test_render_comparison_prints_deltas_and_changes() -> None:
    out = console()
    render_comparison(compare(run_a(), run_b()), out)
    text = out.export_text()
    assert "+26.7 pts" in text  # 66.67% - 40.0%
    assert "-80" in text
    assert "regressed" in text and "improved" in text
    assert "1 case(s) only in B: c6" in text


# --- HTML -----------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class Walker(HTMLParser):
    """Checks that every non-void tag is closed in order; collects text, links and tables."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []
        self.section: str | None = None
        self.tables: dict[str, list[list[str]]] = {}
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "data") and value:
                self.urls.append(value)
            if name == "style" and value and "url(" in value:
                self.urls.append(value)
            if tag == "section" and name == "id":
                self.section = value
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "tr":
            self._row = []
        if tag in ("td", "th"):
            self._cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.tables.setdefault(self.section or "", []).append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def walk(page: str) -> Walker:
    walker = Walker()
    walker.feed(page)
    walker.close()
    assert walker.problems == []
    assert walker.stack == [], f"unclosed tags: {walker.stack}"
    return walker


def assert_offline(page: str, walker: Walker) -> None:
    assert walker.urls == []
    assert "script" not in walker.tags
    assert "link" not in walker.tags
    for attr in ("src=", "href="):
        assert attr not in page
    assert "@import" not in page


def test_run_html_is_well_formed_offline_and_has_the_figures(tmp_path: Path) -> None:
    page = run_html(run_a())
    (tmp_path / "run.html").write_text(page, encoding="utf-8")  # a real file, as the CLI writes
    walker = walk((tmp_path / "run.html").read_text(encoding="utf-8"))
    assert_offline(page, walker)
    assert page.startswith("<!DOCTYPE html>")
    text = "".join(walker.text)
    assert "20261122-021500-ab12cd" in text
    assert "simple" in text
    assert "abc1234" in text
    assert "40.0%" in text  # accuracy: 2 passed of 5
    assert "2 / 4 / 5" in text  # passed / complete / total
    assert "50.0%" in text  # passed of complete
    # Per-case table: one row per case plus the header and the footer with the totals.
    cases = walker.tables["cases"]
    assert [row[1] for row in cases[1:-1]] == ["c1", "c2", "c3", "c4", "c5"]
    assert [row[2] for row in cases[1:-1]] == ["passed", "failed", "unjudged", "error", "passed"]
    assert cases[-1][3] == "500"  # token total
    assert cases[-1][4] == "5.00"  # latency total
    # Stage funnel: rows in and rows with errors per stage.
    funnel = walker.tables["funnel"]
    assert [(row[1], row[3], row[5]) for row in funnel[1:]] == [
        ("prepare", "5", "0"),
        ("infer", "5", "1"),
        ("extract", "4", "0"),
    ]
    assert funnel[2][7] == "20.0%"
    costs = walker.tables["costs"]
    assert costs[-1] == ["all stages", "3.88", "300", "200", "500", "5", "1"]


def test_run_html_escapes_user_text_and_hides_secrets() -> None:
    run = run_a()
    run["cases"][0]["id"] = "<script>alert(1)</script>"
    page = run_html(run)
    walker = walk(page)
    assert_offline(page, walker)
    assert "<script>" not in page
    text = "".join(walker.text)
    assert "<script>alert(1)</script>" in text  # shown as text
    assert "rate limited [bold]<b>&</b>" in text
    assert "Hi <there>" in text
    assert "https://api.example.com/v1" in text  # a config value, shown as text only
    assert "CONFIGSECRET" not in page
    assert "ARGVSECRET" not in page
    assert "infer.model.api_key=***" in text


def test_comparison_html_is_well_formed_and_lists_changed_cases() -> None:
    page = comparison_html(run_a(), run_b())
    walker = walk(page)
    assert_offline(page, walker)
    text = "".join(walker.text)
    assert "20261122-021500-ab12cd" in text and "20261122-031500-ef34gh" in text
    changed = walker.tables["changed"]
    assert [(row[0], row[1], row[2], row[3]) for row in changed[1:]] == [
        ("c2", "failed", "passed", "improved"),
        ("c3", "unjudged", "failed", "changed"),
        ("c4", "error", "passed", "improved"),
        ("c5", "passed", "error", "regressed"),
    ]
    metrics = {row[0]: row[1:] for row in walker.tables["metrics"]}
    assert metrics["accuracy"] == ["40.0%", "66.7%", "+26.7 pts"]
    assert metrics["tokens"] == ["500", "420", "-80"]
    assert "Only in B (1): c6" in text
    config = {row[0]: row[1:] for row in walker.tables["config"][1:]}
    assert config == {"infer.model.name": ['"perfect"', '"echo"']}
    assert "CONFIGSECRET" not in page


def test_comparison_html_of_a_run_with_itself_has_no_changes() -> None:
    page = comparison_html(run_a(), copy.deepcopy(run_a()))
    walker = walk(page)
    text = "".join(walker.text)
    assert "No shared case changed outcome (5 shared)." in text
    assert "The configurations are the same." in text
    assert "changed" not in walker.tables


def test_html_of_empty_run_is_well_formed() -> None:
    page = run_html({"id": "e", "pipeline": "simple", "cases": [], "stages": []})
    walker = walk(page)
    assert_offline(page, walker)
    assert "No cases." in "".join(walker.text)
    assert "interrupted" not in "".join(walker.text)
    stopped = run_html({"id": "s", "cases": [], "interrupted": "interrupted in stage 3_infer"})
    assert "interrupted in stage 3_infer" in "".join(walk(stopped).text)
    json.dumps(page)  # plain text, serializable


def test_totals_match_the_run_log_schema_example() -> None:
    # The example of the run log schema, with its totals worked out by its author.
    example = {
        "id": "20261122-021500-ab12cd",
        "pipeline": "simple",
        "cases": [
            case(0, "q1", True, 120, 0.8, result={"answer": 42}),
            case(1, "q2", None, 60, 0.3, error={"stage": "extract", "type": "ValueError"}),
        ],
        "totals": {
            "cases": 2,
            "complete": 1,
            "error": 1,
            "passed": 1,
            "failed": 0,
            "total_toks": 180,
            "total_latency": 1.1,
        },
    }
    assert summarize(example).totals() == example["totals"]
