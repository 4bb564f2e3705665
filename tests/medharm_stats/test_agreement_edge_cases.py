"""The decided edge cases (docs/statistics.md): each gives a value or a stated reason, never NaN."""

import pytest

from medharm_stats import (
    RatingsError,
    RatingTable,
    cohen_kappa,
    field_agreement,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    percent_agreement,
)
from medharm_stats.agreement import (
    FEW_CATEGORIES,
    NO_MULTIPLE,
    NO_OVERLAP,
    NO_RATINGS,
    ONE_CATEGORY,
    ONE_ITEM_CI,
    ONE_RATER,
    UNORDERED,
)

N = None


def test_all_ratings_in_one_category_leaves_kappa_and_alpha_undefined_but_not_ac1():
    table = RatingTable.from_matrix([["safe", "safe", "safe"]] * 8, categories=["safe", "unsafe"])

    summary = field_agreement(table)

    assert summary.fleiss_kappa.as_dict() == {"value": None, "reason": ONE_CATEGORY}
    assert summary.krippendorff_alpha.as_dict() == {"value": None, "reason": ONE_CATEGORY}
    assert all(pair.cohen_kappa.reason == ONE_CATEGORY for pair in summary.cohen_pairs)
    # AC1's chance agreement is 0 here: agreement on a declared 2-category scale is perfect.
    assert summary.gwet_ac1.as_dict() == {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    assert summary.percent_agreement.value == 1.0


def test_ac1_needs_two_known_categories():
    table = RatingTable.from_matrix([["safe", "safe"]] * 5)

    assert gwet_ac1(table).reason == FEW_CATEGORIES


def test_a_single_item_gives_values_where_defined_but_no_variance_interval():
    table = RatingTable.from_matrix([[0, 1, 1]], categories=[0, 1])

    ac1 = gwet_ac1(table)
    kappa = fleiss_kappa(table)
    agreement = percent_agreement(table)

    # pi = (1/3, 2/3): AC1 chance = 2 * (1/3)(2/3) / (2 - 1) = 4/9, observed 1/3.
    assert ac1.value == pytest.approx((1 / 3 - 4 / 9) / (1 - 4 / 9))
    assert (ac1.ci_low, ac1.ci_high, ac1.ci_reason) == (None, None, ONE_ITEM_CI)
    assert kappa.value == pytest.approx(-0.5)  # pi = (1/3, 2/3), p_e = 5/9, p_a = 1/3
    assert kappa.ci_reason == ONE_ITEM_CI
    assert krippendorff_alpha(table).ci_reason == ONE_ITEM_CI
    assert agreement.as_dict() == {"value": pytest.approx(1 / 3), "ci_low": None, "ci_high": None}


def test_a_pair_without_shared_items_is_not_computable_while_the_others_are():
    table = RatingTable.from_matrix(
        [[0, 0, N], [1, 1, N], [N, 1, 1], [N, 0, 0], [0, N, 1]], categories=[0, 1], rater_ids=["a", "b", "c"]
    )

    summary = field_agreement(table)

    by_pair = {pair.raters: pair for pair in summary.cohen_pairs}
    assert by_pair[("a", "c")].n_items == 1
    assert by_pair[("a", "b")].cohen_kappa.value == 1.0
    table_without_overlap = RatingTable.from_matrix([[0, N], [1, N], [N, 1], [N, 0]], categories=[0, 1])
    assert cohen_kappa(table_without_overlap).as_dict() == {"value": None, "reason": NO_OVERLAP}
    assert krippendorff_alpha(table_without_overlap).reason == NO_MULTIPLE
    assert percent_agreement(table_without_overlap).reason == NO_MULTIPLE


def test_unequal_numbers_of_raters_per_item_use_gwets_fleiss_generalisation():
    equal = RatingTable.from_matrix([[0, 0, 1], [1, 1, 1], [0, 0, 0], [0, 1, 1]], categories=[0, 1])
    unequal = RatingTable.from_matrix([[0, 0, 1], [1, 1, N], [0, 0, 0], [0, N, 1]], categories=[0, 1])

    assert fleiss_kappa(equal).details["se_null"] is not None
    result = fleiss_kappa(unequal)
    # pi from per-item shares: (2/3 + 0 + 1 + 1/2)/4 = 13/24 for category 0; p_a over 4 items.
    pi = 13 / 24
    chance = pi**2 + (1 - pi) ** 2
    observed = (1 / 3 + 1 + 1 + 0) / 4
    assert result.value == pytest.approx((observed - chance) / (1 - chance))
    assert result.details["se_null"] is None


@pytest.mark.parametrize(
    "rows", [[[0, N], [1, N], [0, N]], [[N, N], [N, N]]], ids=["one rater", "no ratings"]
)
def test_fewer_than_two_raters_or_no_ratings_say_so_for_every_coefficient(rows):
    table = RatingTable.from_matrix(rows, categories=[0, 1])
    expected = ONE_RATER if table.n_items else NO_RATINGS

    summary = field_agreement(table)

    for estimate in (
        summary.percent_agreement,
        summary.fleiss_kappa,
        summary.krippendorff_alpha,
        summary.gwet_ac1,
    ):
        assert estimate.as_dict() == {"value": None, "reason": expected}
    assert summary.cohen is None
    assert "cohen_kappa" not in summary.as_dict()


def test_order_dependent_coefficients_refuse_three_or_more_unordered_categories():
    rows = [["red", "red"], ["blue", "green"], ["green", "green"], ["blue", "blue"]]
    unordered = RatingTable.from_matrix(rows)
    declared = RatingTable.from_matrix(rows, categories=["red", "green", "blue"])

    assert unordered.ordered is False
    assert cohen_kappa(unordered, weighting="linear").reason == UNORDERED
    assert krippendorff_alpha(unordered, level="ordinal").reason == UNORDERED
    assert gwet_ac1(unordered, weighting="quadratic").reason == UNORDERED
    assert cohen_kappa(unordered).value == cohen_kappa(declared).value
    assert cohen_kappa(declared, weighting="linear").value is not None


def test_two_unordered_categories_give_weighted_statistics_equal_to_unweighted():
    table = RatingTable.from_matrix([["yes", "no"], ["no", "no"], ["yes", "yes"], ["no", "no"]])

    assert cohen_kappa(table, weighting="quadratic").value == pytest.approx(cohen_kappa(table).value)
    assert krippendorff_alpha(table, level="interval").value == pytest.approx(krippendorff_alpha(table).value)


def test_category_order_rules():
    numeric = RatingTable.from_records(
        [("q1", "a", "10"), ("q1", "b", 2), ("q2", "a", 2.0), ("q2", "b", " 1 ")]
    )
    labels = RatingTable.from_records([("q1", "a", "unsafe"), ("q1", "b", "safe"), ("q2", "a", "safe")])

    assert (numeric.categories, numeric.ordered) == ((1, 2, 10), True)
    assert numeric.codes.tolist() == [[2, 1], [1, 0]]
    assert (labels.categories, labels.ordered) == (("unsafe", "safe"), False)
    assert labels.n_items == 2
    assert labels.n_raters == 2


def test_interval_alpha_uses_numeric_category_values_and_positions_otherwise():
    rows = [[1, 2], [2, 2], [5, 5], [1, 1], [2, 5]]
    spaced = krippendorff_alpha(RatingTable.from_matrix(rows), level="interval")
    positions = krippendorff_alpha(
        RatingTable.from_matrix([[str(v) + "x" for v in row] for row in rows], categories=["1x", "2x", "5x"]),
        level="interval",
    )

    as_positions = [[{1: 0, 2: 1, 5: 2}[v] for v in row] for row in rows]
    assert positions.value == pytest.approx(
        krippendorff_alpha(RatingTable.from_matrix(as_positions), level="interval").value, abs=1e-12
    )
    assert spaced.value != pytest.approx(positions.value, abs=1e-3)


def test_bad_ratings_are_refused():
    with pytest.raises(RatingsError, match="rated item 'q1' more than once"):
        RatingTable.from_records([("q1", "a", 1), ("q1", "a", 2)])
    with pytest.raises(RatingsError, match="not among the declared categories"):
        RatingTable.from_records([("q1", "a", "maybe")], categories=["yes", "no"])
    with pytest.raises(RatingsError, match="listed twice"):
        RatingTable.from_records([("q1", "a", "yes")], categories=["yes", "yes"])
