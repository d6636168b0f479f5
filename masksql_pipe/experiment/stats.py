"""Uncertainty for pass/fail outcomes: bootstrap intervals, the exact McNemar test, and a
paired bootstrap interval for the difference of two runs over the same cases.

Pure functions over lists of 0/1 outcomes; seeded, so a report gives the same interval twice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb, sqrt
from statistics import NormalDist

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20240601


def pct(value: float | None, *, digits: int = 1, fraction: bool = False) -> str:
    """The one percentage format of reports: `12.5%` from a percentage, or from a fraction
    with ``fraction=True``; `n/a` where there is nothing to measure (None)."""
    if value is None:
        return "n/a"
    return f"{100 * value if fraction else value:.{digits}f}%"


@dataclass(frozen=True)
class Interval:
    """A point estimate with a (low, high) confidence interval."""

    estimate: float | None
    low: float | None
    high: float | None
    level: float = 0.95

    def to_dict(self) -> dict[str, float | None]:
        """Plain JSON data (rounded to 6 places)."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 6)

        return {
            "estimate": r(self.estimate),
            "low": r(self.low),
            "high": r(self.high),
            "level": self.level,
        }


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile of an already sorted list (q in [0, 1])."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def bootstrap_proportion(
    outcomes: Sequence[int | bool],
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Percentile bootstrap interval for the share of true outcomes.

    When every outcome agrees (0/n or n/n) every resample does too and the bootstrap collapses
    to a point, which would claim certainty; the exact Clopper-Pearson bound is given instead.
    """
    values = [1 if o else 0 for o in outcomes]
    n = len(values)
    if n == 0:
        return Interval(None, None, None, level)
    hits = sum(values)
    if hits in (0, n):
        bound = ((1 - level) / 2) ** (1 / n)  # exact: P(all n agree | rate) = rate**n
        if hits:
            return Interval(1.0, bound, 1.0, level)
        return Interval(0.0, 0.0, 1 - bound, level)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    alpha = (1 - level) / 2
    return Interval(
        sum(values) / n, _percentile(means, alpha), _percentile(means, 1 - alpha), level
    )


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test on paired pass/fail outcomes."""

    only_a: int  # cases run A passed and run B failed
    only_b: int  # cases run B passed and run A failed
    p_value: float

    def to_dict(self) -> dict[str, float | int]:
        """Plain JSON data."""
        return {"only_a": self.only_a, "only_b": self.only_b, "p_value": round(self.p_value, 6)}


def mcnemar_exact(a: Sequence[int | bool], b: Sequence[int | bool]) -> McNemar:
    """Two-sided exact McNemar: the discordant pairs under H0 are Binomial(n, 1/2).

    p = min(1, 2 * P(X <= min(only_a, only_b))) with n = only_a + only_b; 1 when n = 0.
    """
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    n = only_a + only_b
    if n == 0:
        return McNemar(only_a, only_b, 1.0)
    k = min(only_a, only_b)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return McNemar(only_a, only_b, min(1.0, 2 * tail))


def wilson_interval(successes: int, n: int, *, level: float = 0.95) -> Interval:
    """Wilson score interval for successes/n: sound for small n and for 0/n or n/n, where a
    normal-approximation (or bootstrap) interval collapses."""
    if n <= 0:
        return Interval(None, None, None, level)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else centre - half
    high = 1.0 if successes == n else centre + half
    return Interval(p, low, high, level)


def paired_bootstrap_difference(
    a: Sequence[int | bool],
    b: Sequence[int | bool],
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Interval for mean(b) - mean(a), resampling cases (pairs kept together)."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes need equal lengths, got {len(a)} and {len(b)}")
    diffs = [(1 if y else 0) - (1 if x else 0) for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    if n == 0:
        return Interval(None, None, None, level)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    alpha = (1 - level) / 2
    return Interval(sum(diffs) / n, _percentile(means, alpha), _percentile(means, 1 - alpha), level)
