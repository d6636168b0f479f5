"""One run's summary as data: per-case rows, per-stage rows and the totals a report shows.

Below both the reports and the significance tests, which read it and import nothing else of
each other's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

REUSED_STATUSES = ("up to date", "edited by hand")
"""Stage statuses of a run that took the stage's file as it was."""


def percent(part: float, whole: float) -> float | None:
    """``part`` as a percentage of ``whole``; None when whole is zero (nothing to measure)."""
    return None if not whole else 100.0 * part / whole


@dataclass(frozen=True)
class CaseRow:
    """One case of a run: its outcome, cost and, for an error, where it failed."""

    index: int
    id: str
    status: str
    passed: bool | None
    total_toks: int
    total_latency: float
    error_stage: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    result: Any = None
    stage_results: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        """passed / failed / unjudged (complete, no verdict) / error."""
        if self.status == "error":
            return "error"
        if self.passed is None:
            return "unjudged"
        return "passed" if self.passed else "failed"


@dataclass(frozen=True)
class StageRow:
    """One stage of a run: how it was brought up to date, rows, errors, time and model usage."""

    index: int
    name: str
    status: str
    rows: int
    errors: int
    duration: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cache_hits: int = 0
    cost: float | None = None
    """Dollars the stage's model calls cost when it ran (None: no priced model)."""

    @property
    def reused(self) -> bool:
        """True when the run took the stage's file as it was (it cost nothing this time)."""
        return self.status in REUSED_STATUSES

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Summary:
    """Per-case rows, per-stage rows and totals of one run log."""

    run_id: str
    pipeline: str
    created: str | None
    finished: str | None
    cases: list[CaseRow]
    stages: list[StageRow]
    figures: list[tuple[str, str, str]] = field(default_factory=list)
    """(stage, label, value) a stage reported in its stats' `figures` (e.g. a leak audit)."""

    @property
    def total(self) -> int:
        return len(self.cases)

    def _count(self, outcome: str) -> int:
        return sum(1 for case in self.cases if case.outcome == outcome)

    @property
    def complete(self) -> int:
        return sum(1 for case in self.cases if case.status == "complete")

    @property
    def error(self) -> int:
        return self._count("error")

    @property
    def passed(self) -> int:
        return self._count("passed")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def unjudged(self) -> int:
        return self._count("unjudged")

    @property
    def total_toks(self) -> int:
        return sum(case.total_toks for case in self.cases)

    @property
    def total_latency(self) -> float:
        return sum(case.total_latency for case in self.cases)

    @property
    def cost(self) -> float | None:
        """Dollars this run spent on priced model calls (stages it reused cost nothing); None
        when no stage ran a priced model, so a run without prices shows tokens only."""
        priced = [s.cost for s in self.stages if s.cost is not None]
        if not priced:
            return None
        return sum(s.cost for s in self.stages if s.cost is not None and not s.reused)

    @property
    def judged(self) -> bool:
        """Whether the pipeline judged any case (``case_passed`` gave a verdict): without one,
        passed and accuracy are not measured, not 0."""
        return self.passed + self.failed > 0

    @property
    def complete_pct(self) -> float | None:
        return percent(self.complete, self.total)

    @property
    def error_pct(self) -> float | None:
        return percent(self.error, self.total)

    @property
    def accuracy(self) -> float | None:
        """Passed cases as a percentage of all cases (errors count against)."""
        return percent(self.passed, self.total)

    @property
    def failed_pct(self) -> float | None:
        return percent(self.failed, self.total)

    @property
    def passed_of_complete(self) -> float | None:
        """Passed cases as a percentage of the cases that completed."""
        return percent(self.passed, self.complete)

    def totals(self) -> dict[str, Any]:
        """The run log's ``totals`` object (same keys), so the runtime and reports agree."""
        return {
            "cases": self.total,
            "complete": self.complete,
            "error": self.error,
            "passed": self.passed,
            "failed": self.failed,
            "total_toks": self.total_toks,
            "total_latency": round(self.total_latency, 6),
            **({} if self.cost is None else {"cost": round(self.cost, 8)}),
        }

    @property
    def duration(self) -> float | None:
        """Wall-clock seconds from created to finished, when both are valid timestamps."""
        try:
            start = datetime.fromisoformat(str(self.created))
            end = datetime.fromisoformat(str(self.finished))
            return (end - start).total_seconds()
        except (TypeError, ValueError):
            return None
