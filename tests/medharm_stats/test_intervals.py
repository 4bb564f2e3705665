"""Intervals: Wilson and Clopper-Pearson for proportions, and how agreement intervals are built."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from medharm_stats import (
    RatingTable,
    clopper_pearson_interval,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    percent_agreement,
    wilson_interval,
)
from medharm_stats.result import Estimate, NotFiniteError

# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of seven
# methods", Statistics in Medicine 17:857-872, Table II: method 3 (Wilson score, no continuity
# correction) and method 5 (Clopper-Pearson "exact"), 4 decimals.
NEWCOMBE = [
    # successes, total, Wilson low, Wilson high, exact low, exact high
    (81, 263, 0.2553, 0.3662, 0.2527, 0.3676),
    (15, 148, 0.0624, 0.1605, 0.0578, 0.1617),
    (0, 20, 0.0, 0.1611, 0.0, 0.1684),
    (1, 29, 0.0061, 0.1718, 0.0009, 0.1776),
]


@pytest.mark.parametrize(("successes", "total", "low", "high", "_exact_low", "_exact_high"), NEWCOMBE)
def test_wilson_interval_reproduces_newcombe_1998(successes, total, low, high, _exact_low, _exact_high):
    result = wilson_interval(successes, total)

    assert result.value == successes / total
    assert (round(result.ci_low, 4), round(result.ci_high, 4)) == (low, high)


@pytest.mark.parametrize(("successes", "total", "_low", "_high", "low", "high"), NEWCOMBE)
def test_clopper_pearson_interval_reproduces_newcombe_1998(successes, total, _low, _high, low, high):
    result = clopper_pearson_interval(successes, total)

    assert (round(result.ci_low, 4), round(result.ci_high, 4)) == (low, high)


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_proportion_intervals_equal_statsmodels(counts):
    successes, total = counts

    wilson = wilson_interval(successes, total)
    exact = clopper_pearson_interval(successes, total)

    expected_wilson = proportion_confint(successes, total, alpha=0.05, method="wilson")
    expected_exact = proportion_confint(successes, total, alpha=0.05, method="beta")
    assert (wilson.ci_low, wilson.ci_high) == pytest.approx(expected_wilson, abs=1e-10)
    assert (exact.ci_low, exact.ci_high) == pytest.approx(
        tuple(0.0 if math.isnan(x) else x for x in expected_exact), abs=1e-10
    )


def test_a_proportion_of_nothing_is_not_computable_and_bad_counts_are_refused():
    assert wilson_interval(0, 0).as_dict() == {"value": None, "reason": "not computable: no observations"}
    assert clopper_pearson_interval(0, 0).value is None
    with pytest.raises(ValueError, match="successes <= total"):
        wilson_interval(5, 4)


def test_confidence_level_changes_the_width():
    narrow = wilson_interval(30, 100, confidence=0.80)
    wide = wilson_interval(30, 100, confidence=0.99)

    assert wide.ci_low < narrow.ci_low < 0.30 < narrow.ci_high < wide.ci_high


def test_estimate_refuses_nan_and_half_intervals():
    with pytest.raises(NotFiniteError):
        Estimate(value=float("nan"))
    with pytest.raises(ValueError, match="both ends"):
        Estimate(value=0.5, ci_low=0.1)
    with pytest.raises(ValueError, match="reason"):
        Estimate(value=None)


def two_raters(pairs: list[tuple[int, int]]) -> RatingTable:
    return RatingTable.from_matrix([list(pair) for pair in pairs], categories=[0, 1, 2])


def test_percent_agreement_between_two_raters_is_a_wilson_interval_on_agreeing_items():
    table = two_raters([(0, 0)] * 17 + [(1, 1)] * 2 + [(0, 1)])

    result = percent_agreement(table)

    expected = wilson_interval(19, 20)
    assert (result.value, result.ci_low, result.ci_high) == (0.95, expected.ci_low, expected.ci_high)
    assert result.interval == "Wilson score"


def test_percent_agreement_with_three_ratings_uses_the_per_item_variance():
    # Items agree fully (1), or 1 pair of 3 agrees (1/3): mean 7/9.
    table = RatingTable.from_matrix([[0, 0, 0]] * 6 + [[0, 0, 1]] * 3, categories=[0, 1])
    per_item = np.array([1.0] * 6 + [1 / 3] * 3)

    result = percent_agreement(table)

    se = per_item.std(ddof=1) / 3
    assert result.value == pytest.approx(7 / 9)
    assert result.details["se"] == pytest.approx(se)
    assert result.ci_low == pytest.approx(7 / 9 - 2.306004135 * se, abs=1e-8)  # t(0.975, 8 df)
    assert result.ci_high == pytest.approx(min(1.0, 7 / 9 + 2.306004135 * se), abs=1e-8)


def test_cohen_interval_is_normal_and_clipped_at_one():
    table = two_raters([(0, 0)] * 9 + [(1, 1)] * 9 + [(2, 2)] * 9 + [(0, 1)])

    result = cohen_kappa(table)

    z = 1.959963984540054
    assert result.ci_low == pytest.approx(result.value - z * result.details["se"])
    assert result.value + z * result.details["se"] > 1
    assert result.ci_high == 1.0


def test_gwet_intervals_use_t_with_n_minus_one_degrees_of_freedom():
    table = RatingTable.from_matrix(
        [[0, 0, 0], [1, 1, 1], [0, 0, 1], [1, 1, 0], [0, 0, 0]], categories=[0, 1]
    )

    for result in (gwet_ac1(table), fleiss_kappa(table)):
        half = 2.776445105 * result.details["se"]  # t(0.975, 4 df)
        assert result.ci_low == pytest.approx(max(-1.0, result.value - half), abs=1e-8)
        assert result.ci_high == pytest.approx(min(1.0, result.value + half), abs=1e-8)


def moderate_table(seed: int = 11) -> RatingTable:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, size=120)
    codes = np.where(rng.random((120, 3)) < 0.75, truth[:, None], rng.integers(0, 3, size=(120, 3)))
    return RatingTable.from_codes(codes, [0, 1, 2])


def test_alpha_bootstrap_is_reproducible_with_its_seed_and_moves_with_another():
    table = moderate_table()

    first = krippendorff_alpha(table, seed=5)
    again = krippendorff_alpha(moderate_table(), seed=5)
    other = krippendorff_alpha(table, seed=6)

    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)
    assert first.ci_low < first.value < first.ci_high
    assert first.details["resamples"] == 1000
    assert first.details["resamples_kept"] == 1000
    assert first.interval == "percentile bootstrap over items (1000 resamples, seed 5)"


def test_bootstrap_interval_is_offered_for_kappa_and_ac1_too():
    table = moderate_table()
    for statistic in (fleiss_kappa, gwet_ac1):
        asymptotic = statistic(table)
        bootstrap = statistic(table, interval="bootstrap", seed=1)
        assert bootstrap.value == asymptotic.value
        assert bootstrap.interval.startswith("percentile bootstrap")
        # Both estimate the same sampling spread: the widths agree to within a third.
        assert bootstrap.ci_high - bootstrap.ci_low == pytest.approx(
            asymptotic.ci_high - asymptotic.ci_low, rel=0.33
        )


def test_bootstrap_drops_resamples_in_which_alpha_is_undefined():
    # 2 of 30 items disagree; the other 28 all say 0. A resample without the 2 has one category.
    table = RatingTable.from_matrix([[0, 0]] * 28 + [[0, 1]] * 2, categories=[0, 1])

    result = krippendorff_alpha(table, resamples=400, seed=2)

    kept = result.details["resamples_kept"]
    # P(neither disagreeing item drawn) = (28/30)^30 = 0.126: about 50 of 400 dropped.
    assert 20 < 400 - kept < 90
    assert result.ci_low is not None


@pytest.mark.parametrize("confidence", [0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 0.999])
def test_quantiles_are_the_ones_scipy_stats_gives(confidence):
    """The quantiles come from ``scipy.special`` (no ``scipy.stats`` import on a process's first
    figure); they must be exactly the numbers ``scipy.stats`` gives."""
    from scipy import stats

    from medharm_stats.agreement import _t_quantile
    from medharm_stats.proportions import normal_quantile

    normal_quantile.cache_clear()
    _t_quantile.cache_clear()
    assert normal_quantile(confidence) == float(stats.norm.ppf(1 - (1 - confidence) / 2))
    for df in (1, 2, 3, 7, 30, 121, 10_000):
        assert _t_quantile(confidence, df) == float(stats.t.ppf(1 - (1 - confidence) / 2, df))
