"""Paired significance of two runs over the cases they share: the accuracy difference with an
exact McNemar test and a paired bootstrap interval.

Only cases both runs judged take part (passed, failed or error; an error counts as a failure);
cases one run could not judge, or that only one run has, are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from masksql_pipe.experiment.stats import (
    Interval,
    McNemar,
    mcnemar_exact,
    paired_bootstrap_difference,
)
from masksql_pipe.experiment.summary import Summary

JUDGED = ("passed", "failed", "error")


@dataclass(frozen=True)
class PairedTest:
    """B - A over the shared judged cases."""

    cases: int
    left_out: int
    accuracy_a: float | None
    accuracy_b: float | None
    difference: Interval
    mcnemar: McNemar

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "cases": self.cases,
            "left_out": self.left_out,
            "accuracy_a": self.accuracy_a,
            "accuracy_b": self.accuracy_b,
            "difference": self.difference.to_dict(),
            "mcnemar": self.mcnemar.to_dict(),
        }

    def line(self) -> str:
        """One sentence for a terminal or a page."""
        d = self.difference
        if d.estimate is None or d.low is None or d.high is None:
            return "paired test: no case judged in both runs"
        m = self.mcnemar
        note = f"; {self.left_out} case(s) left out" if self.left_out else ""
        return (
            f"paired over {self.cases} shared case(s): accuracy B - A = "
            f"{100 * d.estimate:+.1f} pts (95% paired bootstrap CI {100 * d.low:+.1f} to "
            f"{100 * d.high:+.1f}); exact McNemar p = {m.p_value:.4g} "
            f"(passed only in A: {m.only_a}, only in B: {m.only_b}){note}"
        )


def paired_test(a: Summary, b: Summary) -> PairedTest:
    """Pair the cases of two runs by id and test the accuracy difference."""
    outcomes_b = {case.id: case.outcome for case in b.cases}
    xs: list[int] = []
    ys: list[int] = []
    for case in a.cases:
        other = outcomes_b.get(case.id)
        if case.outcome in JUDGED and other in JUDGED:
            xs.append(int(case.outcome == "passed"))
            ys.append(int(other == "passed"))
    ids = {case.id for case in a.cases} | set(outcomes_b)
    n = len(xs)
    return PairedTest(
        cases=n,
        left_out=len(ids) - n,
        accuracy_a=round(sum(xs) / n, 6) if n else None,
        accuracy_b=round(sum(ys) / n, 6) if n else None,
        difference=paired_bootstrap_difference(xs, ys),
        mcnemar=mcnemar_exact(xs, ys),
    )
