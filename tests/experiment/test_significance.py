"""Paired significance in compare: exact McNemar and a paired interval over shared cases."""

from __future__ import annotations

from math import comb

import pytest
from rich.console import Console

from masksql_pipe.experiment.html import comparison_html
from masksql_pipe.experiment.report import compare, render_comparison, summarize
from masksql_pipe.experiment.significance import paired_test


def _run(run_id: str, outcomes: dict[str, str]) -> dict:
    cases = []
    for i, (case_id, outcome) in enumerate(outcomes.items()):
        error = {"stage": "S", "type": "E", "message": "m"} if outcome == "error" else None
        cases.append(
            {
                "index": i,
                "id": case_id,
                "status": "error" if error else "complete",
                "passed": None if error or outcome == "unjudged" else outcome == "passed",
                "error": error,
                "total_toks": 0,
                "total_latency": 0.0,
            }
        )
    return {"id": run_id, "pipeline": "masksql", "config": {}, "cases": cases, "stages": []}


# 9 shared cases: A passes q1..q7, B passes q1 and q8, q9; q10 only in A; q11 unjudged in B
A = {f"q{i}": "passed" for i in range(1, 8)} | {"q8": "failed", "q9": "error"}
A |= {"q10": "passed", "q11": "passed"}
B = {"q1": "passed"} | {f"q{i}": "failed" for i in range(2, 8)} | {"q8": "passed"}
B |= {"q9": "passed", "q11": "unjudged"}


def test_paired_test_by_hand():
    test = paired_test(summarize(_run("a", A)), summarize(_run("b", B)))
    assert test.cases == 9  # q1..q9
    assert test.left_out == 2  # q10 (only in A) and q11 (unjudged in B)
    # discordant: only A passes q2..q7 = 6; only B passes q8, q9 = 2
    assert (test.mcnemar.only_a, test.mcnemar.only_b) == (6, 2)
    # two-sided exact: 2 * P(X <= 2), X ~ Binomial(8, 1/2) = 2 * (1 + 8 + 28) / 256
    assert test.mcnemar.p_value == pytest.approx(2 * (comb(8, 0) + comb(8, 1) + comb(8, 2)) / 256)
    # accuracy A 7/9, B 3/9: B - A = -4/9
    assert test.difference.estimate == pytest.approx(-4 / 9)
    assert test.difference.low < -4 / 9 < test.difference.high


def test_compare_prints_and_shows_the_test():
    cmp = compare(_run("a", A), _run("b", B))
    console = Console(record=True, width=200)
    render_comparison(cmp, console)
    text = console.export_text()
    assert "exact McNemar p = 0.2891" in text  # 74/256
    assert "passed only in A: 6, only in B: 2" in text
    assert "2 case(s) left out" in text
    page = comparison_html(_run("a", A), _run("b", B))
    assert 'id="paired-test"' in page and "p = 0.2891" in page
