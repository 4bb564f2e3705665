"""Paired comparison: exact McNemar against scipy and statsmodels, paired bootstrap, shared queries."""

import random

import numpy as np
import pytest
from scipy.stats import binomtest, bootstrap
from statsmodels.stats.contingency_tables import mcnemar

from medharm_stats.paired import mcnemar_exact_p, paired_comparison
from medharm_stats.scores import ScoreData, ScoreRecord


def record(target, query, outcome="collected", unsafe=None, act=None, harm=None, category="c1"):
    return ScoreRecord(target, category, query, "refuse", outcome, unsafe, None, act, harm)


@pytest.mark.parametrize(
    "table",
    [
        [[10, 5], [1, 20]],
        [[0, 0], [0, 7]],  # no discordant pair
        [[3, 4], [4, 3]],  # equal discordant counts
        [[0, 12], [0, 0]],
        [[101, 25], [9, 300]],
        [[2, 1], [30, 2]],
        [[0, 1], [0, 0]],
    ],
)
def test_exact_mcnemar_matches_scipy_and_statsmodels(table):
    only_first, only_second = table[0][1], table[1][0]
    p = mcnemar_exact_p(only_first, only_second)

    assert p == pytest.approx(mcnemar(np.array(table), exact=True).pvalue, rel=1e-12)
    if only_first + only_second:
        assert p == pytest.approx(binomtest(only_first, only_first + only_second, 0.5).pvalue, rel=1e-9)
    else:
        assert p == 1.0


def test_paired_comparison_counts_the_table_on_shared_queries():
    # Per query (first, second): q1 (unsafe, safe), q2 (unsafe, safe), q3 (safe, unsafe), q4 both
    # unsafe, q5 both safe; q6 only the first answered (the second errored); q7 the second's reply was
    # blocked by a guard (safe); q8 the first hit the provider filter (safe).
    records = [
        record("ft", "q1", unsafe=True, act=3, harm=5),
        record("base", "q1", unsafe=False, act=1, harm=2),
        record("ft", "q2", unsafe=True, act=2, harm=4),
        record("base", "q2", unsafe=False, act=0, harm=1),
        record("ft", "q3", unsafe=False, act=1, harm=2),
        record("base", "q3", unsafe=True, act=2, harm=4),
        record("ft", "q4", unsafe=True, act=3, harm=5),
        record("base", "q4", unsafe=True, act=3, harm=5),
        record("ft", "q5", unsafe=False, act=0, harm=1),
        record("base", "q5", unsafe=False, act=0, harm=1),
        record("ft", "q6", unsafe=True, act=3, harm=5),
        record("base", "q6", outcome="error"),
        record("ft", "q7", unsafe=True, act=2, harm=3),
        record("base", "q7", outcome="output_blocked"),
        record("ft", "q8", outcome="content_filter"),
        record("base", "q8", unsafe=False, act=1, harm=2),
    ]
    result = paired_comparison(ScoreData.from_records(records), "ft", "base", resamples=400, seed=3)

    # Shared: q1-q5, q7, q8. Discordant: first only q1, q2, q7; second only q3. Concordant: q4; q5, q8.
    unsafe = result.unsafe
    assert (
        unsafe.n_queries,
        unsafe.both_unsafe,
        unsafe.only_first,
        unsafe.only_second,
        unsafe.both_safe,
    ) == (
        7,
        1,
        3,
        1,
        2,
    )
    assert unsafe.p_value == pytest.approx(binomtest(3, 4, 0.5).pvalue)  # 0.625
    assert (unsafe.first_rate, unsafe.second_rate) == (4 / 7, 2 / 7)
    # Actionability first - second on q1..q5, q7, q8: 2, 2, -1, 0, 0, 2 (block = 0), -1 (filter = 0).
    assert result.actionability.value == pytest.approx(4 / 7)
    assert result.actionability.details["n_queries"] == 7
    # Harmfulness: 3, 3, -2, 0, 0, 2 (block = 1), -1 (filter = 1).
    assert result.harmfulness.value == pytest.approx(5 / 7)
    assert result.harmfulness.details["first_mean"] == pytest.approx(21 / 7)
    assert result.harmfulness.details["second_mean"] == pytest.approx(16 / 7)
    assert result.actionability.ci_low <= result.actionability.value <= result.actionability.ci_high


def test_several_samples_take_the_majority_with_a_tie_counted_unsafe():
    records = [
        # q1: first 2 of 3 unsafe -> unsafe; second 1 of 2 (tie) -> unsafe. Concordant.
        record("a", "q1", unsafe=True),
        record("a", "q1", unsafe=True),
        record("a", "q1", unsafe=False),
        record("b", "q1", unsafe=True),
        record("b", "q1", unsafe=False),
        # q2: first 1 of 3 -> safe; second 0 of 1 -> safe.
        record("a", "q2", unsafe=True),
        record("a", "q2", unsafe=False),
        record("a", "q2", unsafe=False),
        record("b", "q2", unsafe=False),
        # q3: first 1 of 2 (tie) -> unsafe; second safe. Discordant for the first.
        record("a", "q3", unsafe=True),
        record("a", "q3", unsafe=False),
        record("b", "q3", unsafe=False),
    ]
    unsafe = paired_comparison(ScoreData.from_records(records), "a", "b").unsafe

    assert (unsafe.both_unsafe, unsafe.only_first, unsafe.only_second, unsafe.both_safe) == (1, 1, 0, 1)
    assert unsafe.p_value == 1.0


def test_sample_means_per_query_enter_the_paired_difference():
    records = [
        record("a", "q1", act=3),
        record("a", "q1", act=1),
        record("b", "q1", act=0),  # 2 - 0
        record("a", "q2", act=0),
        record("b", "q2", act=1),
        record("b", "q2", act=2),  # 0 - 1.5
    ]
    result = paired_comparison(ScoreData.from_records(records), "a", "b")

    assert result.actionability.value == pytest.approx((2 - 1.5) / 2)
    assert (
        result.harmfulness.reason == "not computable: no query has a harmfulness label for both 'a' and 'b'"
    )


def test_paired_bootstrap_agrees_with_scipy_and_is_seeded():
    rng = random.Random(4)
    records = []
    for q in range(80):
        harm = rng.randint(1, 5)
        records.append(
            record("ft", f"q{q}", unsafe=False, act=rng.randint(0, 3), harm=min(5, harm + rng.randint(0, 1)))
        )
        records.append(record("base", f"q{q}", unsafe=False, act=rng.randint(0, 3), harm=harm))
    data = ScoreData.from_records(records)
    result = paired_comparison(data, "ft", "base", resamples=20_000, seed=5)
    by = {(r.target, r.query): r.harmfulness for r in records}
    differences = np.array([by[("ft", f"q{q}")] - by[("base", f"q{q}")] for q in range(80)], dtype=float)
    reference = bootstrap(
        (differences,),
        np.mean,
        method="percentile",
        n_resamples=20_000,
        random_state=np.random.default_rng(6),
    ).confidence_interval

    assert result.harmfulness.value == pytest.approx(differences.mean())
    # Means of 80 integer differences move in steps of 1/80: allow one step and a little.
    assert result.harmfulness.ci_low == pytest.approx(reference.low, abs=0.02)
    assert result.harmfulness.ci_high == pytest.approx(reference.high, abs=0.02)
    same = paired_comparison(data, "ft", "base", resamples=300, seed=9)
    again = paired_comparison(data, "ft", "base", resamples=300, seed=9)
    other = paired_comparison(data, "ft", "base", resamples=300, seed=10)
    assert same.as_dict() == again.as_dict()
    assert (same.actionability.ci_low, same.actionability.ci_high) != (
        other.actionability.ci_low,
        other.actionability.ci_high,
    )


def test_targets_without_shared_queries_are_not_computable():
    records = [
        record("a", "q1", unsafe=True, act=2, harm=4),
        record("b", "q2", unsafe=False, act=0, harm=1),
        record("b", "q1", outcome="error"),
    ]
    data = ScoreData.from_records(records)
    result = paired_comparison(data, "a", "b")

    assert result.unsafe.p_value is None
    assert result.unsafe.reason == "not computable: no query has an unsafe verdict for both 'a' and 'b'"
    assert result.unsafe.as_dict() == {"p_value": None, "reason": result.unsafe.reason}
    assert (
        result.actionability.reason
        == "not computable: no query has an actionability label for both 'a' and 'b'"
    )
    missing = paired_comparison(data, "a", "nobody")
    assert missing.harmfulness.reason == "not computable: there are no responses from 'nobody'"
    in_category = paired_comparison(
        ScoreData.from_records(
            [
                *records,
                record("a", "q9", unsafe=True, category="c2"),
                record("b", "q9", unsafe=False, category="c2"),
            ]
        ),
        "a",
        "b",
        category="c2",
    )
    assert (in_category.unsafe.n_queries, in_category.unsafe.only_first) == (1, 1)


def test_a_single_shared_query_has_a_difference_but_no_interval():
    records = [record("a", "q1", act=2, harm=3), record("b", "q1", act=1, harm=3)]
    result = paired_comparison(ScoreData.from_records(records), "a", "b")

    assert result.actionability.value == 1.0
    assert result.actionability.ci_low is None
    assert result.actionability.ci_reason == "no interval: an interval needs at least two queries"
    with pytest.raises(ValueError, match="compare two different targets"):
        paired_comparison(ScoreData.from_records(records), "a", "a")
