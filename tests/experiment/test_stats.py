"""Statistics: exact McNemar against the binomial formula, bootstrap intervals on known rates."""

from __future__ import annotations

import random

import pytest

from masksql_pipe.experiment.stats import (
    bootstrap_proportion,
    mcnemar_exact,
    paired_bootstrap_difference,
    pct,
    wilson_interval,
)


def test_mcnemar_matches_the_binomial_formula_by_hand():
    # 10 cases: 2 both pass, 6 only A passes, 1 only B passes, 1 both fail
    a = [1, 1] + [1] * 6 + [0] + [0]
    b = [1, 1] + [0] * 6 + [1] + [0]
    result = mcnemar_exact(a, b)
    assert (result.only_a, result.only_b) == (6, 1)
    # n = 7 discordant, k = 1: P(X <= 1) = (C(7,0) + C(7,1)) / 2^7 = 8 / 128; two-sided x2
    assert result.p_value == pytest.approx(2 * 8 / 128)
    assert result.p_value == pytest.approx(0.125)


def test_mcnemar_symmetric_and_capped_at_one():
    a = [1, 0, 1, 0]
    b = [0, 1, 0, 1]  # 2 and 2 discordant: 2 * P(X <= 2 | n=4) = 2 * 11/16 > 1 -> 1
    assert mcnemar_exact(a, b).p_value == 1.0
    assert mcnemar_exact(b, a).only_a == 2
    assert mcnemar_exact([1, 1], [1, 1]).p_value == 1.0  # no discordant pair
    with pytest.raises(ValueError):
        mcnemar_exact([1], [1, 0])


def test_mcnemar_strong_difference_is_significant():
    # 12 flips one way, none the other: p = 2 / 2^12
    a = [1] * 12
    b = [0] * 12
    assert mcnemar_exact(a, b).p_value == pytest.approx(2 / 4096)


def test_bootstrap_interval_covers_the_true_rate():
    rng = random.Random(7)
    true_rate = 0.3
    sample = [1 if rng.random() < true_rate else 0 for _ in range(400)]
    interval = bootstrap_proportion(sample)
    assert interval.estimate == sum(sample) / 400
    assert interval.low is not None and interval.high is not None
    assert interval.low < true_rate < interval.high
    # the normal-approximation half width is about 1.96 * sqrt(.3 * .7 / 400) = 0.045
    assert 0.03 < (interval.high - interval.low) / 2 < 0.06


def test_bootstrap_is_deterministic_and_degenerate_cases():
    sample = [1, 0, 1, 1, 0]
    assert bootstrap_proportion(sample) == bootstrap_proportion(sample)
    assert bootstrap_proportion([1, 1, 1]).low == pytest.approx(0.025 ** (1 / 3))  # exact bound
    assert bootstrap_proportion([]).estimate is None


def test_paired_difference_interval():
    a = [1] * 50 + [0] * 50
    b = [1] * 50 + [1] * 30 + [0] * 20  # B gains 30 cases of 100
    interval = paired_bootstrap_difference(a, b)
    assert interval.estimate == pytest.approx(0.3)
    assert interval.low is not None and interval.high is not None
    assert 0.0 < interval.low < 0.3 < interval.high
    same = paired_bootstrap_difference(a, a)
    assert (same.low, same.high) == (0.0, 0.0)


def test_a_unanimous_sample_gets_the_exact_bound_not_a_point() -> None:
    # 33 of 33: the true rate r is excluded at 95% when r**33 < 0.025, i.e. r < 0.025**(1/33)
    whole = bootstrap_proportion([1] * 33)
    assert whole.estimate == 1.0 and whole.high == 1.0
    assert abs(whole.low - 0.025 ** (1 / 33)) < 1e-12
    assert 0.89 < whole.low < 0.90
    none = bootstrap_proportion([0] * 11)
    assert none.estimate == 0.0 and none.low == 0.0
    assert abs(none.high - (1 - 0.025 ** (1 / 11))) < 1e-12


def test_wilson_interval_matches_textbook_values() -> None:
    # Wilson 95%: 5/10 -> 0.2366-0.7634; 0/10 -> 0-0.2775 (z = 1.95996; Newcombe 1998 formula)
    half = wilson_interval(5, 10)
    assert (half.low, half.high) == (
        pytest.approx(0.23659, abs=1e-5),
        pytest.approx(0.76341, abs=1e-5),
    )
    none = wilson_interval(0, 10)
    assert none.low == 0.0 and none.high == pytest.approx(0.27753, abs=1e-5)
    assert wilson_interval(10, 10).high == 1.0
    assert wilson_interval(0, 0).estimate is None
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_pct_is_the_one_percentage_format() -> None:
    """Percent or fraction in, one decimal unless told, `n/a` for nothing measured."""
    assert pct(None) == "n/a"
    assert pct(None, digits=2, fraction=True) == "n/a"
    assert pct(12.25) == "12.2%"
    assert pct(80) == "80.0%"
    assert pct(0.125, fraction=True) == "12.5%"
    assert pct(0.125, digits=2, fraction=True) == "12.50%"
    assert pct(0, fraction=True) == "0.0%"
