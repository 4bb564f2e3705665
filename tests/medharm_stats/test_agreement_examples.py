"""Agreement coefficients against published worked examples; each test cites where its figures come from."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from medharm_stats import (
    RatingTable,
    cohen_kappa,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    percent_agreement,
)

N = None


def table_from_contingency(counts: list[list[int]], categories: list[object] | None = None) -> RatingTable:
    """Two raters: ``counts[a][b]`` items rated ``a`` by the first and ``b`` by the second."""
    rows = [[a, b] for a, line in enumerate(counts) for b, count in enumerate(line) for _ in range(count)]
    return RatingTable.from_matrix(rows, categories=categories or list(range(len(counts))))


def table_from_distribution(distribution: list[list[int]]) -> RatingTable:
    """Fleiss layout: ``distribution[item][category]`` raters put the item in the category."""
    rows = [[k for k, count in enumerate(line) for _ in range(count)] for line in distribution]
    return RatingTable.from_matrix(rows, categories=list(range(len(distribution[0]))))


# Cohen's example table, in proportions of N = 200 items, with Cohen's disagreement weights, as
# reproduced in the R psych package's cohen.kappa() examples ("data matrix taken from Cohen";
# "cohen reports .492 and .348"). The weighted figure places it in Cohen (1968), "Weighted
# kappa", Psychol. Bull. 70:213-220. p_o = .70 and p_c = .41 are derived here from the table.
COHEN_PROPORTIONS = [[0.44, 0.07, 0.09], [0.05, 0.20, 0.05], [0.01, 0.03, 0.06]]
COHEN_COUNTS = [[round(p * 200) for p in row] for row in COHEN_PROPORTIONS]
# Cohen's disagreement weights v for that example (same source); agreement weight = 1 - v / 6.
COHEN_DISAGREEMENT = np.array([[0, 1, 3], [1, 0, 6], [3, 6, 0]])


def test_cohen_unweighted_kappa_reproduces_cohens_example():
    result = cohen_kappa(table_from_contingency(COHEN_COUNTS))

    assert result.value == pytest.approx(0.492, abs=5e-4)
    assert result.details["observed_agreement"] == pytest.approx(0.70)
    assert result.details["chance_agreement"] == pytest.approx(0.41)


def test_cohen_weighted_kappa_with_cohens_own_weights_is_348():
    table = table_from_contingency(COHEN_COUNTS)

    result = cohen_kappa(table, weighting=1 - COHEN_DISAGREEMENT / 6)

    assert result.value == pytest.approx(0.348, abs=5e-4)


# SAS PROC FREQ printout for a 3x3 agreement table, reproduced with its figures in statsmodels'
# own test suite (statsmodels/stats/tests/test_inter_rater.py, TestUnweightedCohens and
# TestWeightedCohens): simple kappa .4842, ASE .1380, 95% CL .2137-.7547; weighted kappa with
# Cicchetti-Allison (linear) weights .4701, ASE .1457, 95% CL .1845-.7558.
SAS_TABLE = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]


def test_cohen_kappa_and_its_asymptotic_interval_match_the_sas_printout():
    result = cohen_kappa(table_from_contingency(SAS_TABLE))

    assert result.value == pytest.approx(0.4842, abs=5e-5)
    assert result.details["se"] == pytest.approx(0.1380, abs=5e-5)
    assert (result.ci_low, result.ci_high) == (
        pytest.approx(0.2137, abs=5e-5),
        pytest.approx(0.7547, abs=5e-5),
    )


def test_linear_weighted_kappa_and_its_interval_match_the_sas_printout():
    result = cohen_kappa(table_from_contingency(SAS_TABLE), weighting="linear")

    assert result.value == pytest.approx(0.4701, abs=5e-5)
    assert result.details["se"] == pytest.approx(0.1457, abs=5e-5)
    assert (result.ci_low, result.ci_high) == (
        pytest.approx(0.1845, abs=5e-5),
        pytest.approx(0.7558, abs=5e-5),
    )


@pytest.mark.parametrize("weighting", ["linear", "quadratic"])
def test_weighted_kappa_on_cohens_table_equals_scikit_learn(weighting):
    table = table_from_contingency(COHEN_COUNTS)
    first, second = table.codes[:, 0], table.codes[:, 1]

    expected = cohen_kappa_score(first, second, labels=[0, 1, 2], weights=weighting)

    assert cohen_kappa(table, weighting=weighting).value == pytest.approx(expected, abs=1e-12)


# Gwet's irrCAC vignette "Calculating Chance-corrected Agreement Coefficients" (R package irrCAC
# 1.0, K. L. Gwet), data cont3x3abstractors: 100 pregnant women classified by two abstractors.
ABSTRACTORS = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]


def test_abstractors_example_from_gwets_irrcac_vignette():
    table = table_from_contingency(ABSTRACTORS)

    kappa = cohen_kappa(table)
    assert kappa.value == pytest.approx(0.7964094, abs=5e-8)
    assert kappa.details["se"] == pytest.approx(0.05891072, abs=5e-9)
    assert gwet_ac1(table).value == pytest.approx(0.8493305, abs=5e-8)
    assert krippendorff_alpha(table).value == pytest.approx(0.7972585, abs=5e-8)
    assert percent_agreement(table).value == pytest.approx(0.89)


# Fleiss (1971), Psychological Bulletin 76(5): 30 patients x 6 psychiatrists, 5 diagnoses. The
# raw ratings are the R irr package's `diagnoses` data set; irr's kappam.fleiss() reports
# kappa 0.4302445 and z 17.65183 (z uses the Fleiss, Nee & Landis 1979 standard error under
# kappa = 0), as quoted in statsmodels' test_inter_rater.py.
FLEISS_1971 = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip


def test_fleiss_kappa_reproduces_fleiss_1971():
    result = fleiss_kappa(RatingTable.from_matrix(FLEISS_1971))

    assert result.value == pytest.approx(0.4302445, abs=5e-8)
    assert round(result.value, 3) == 0.430
    assert result.details["z_null"] == pytest.approx(17.65183, abs=5e-6)


# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories, kappa 0.210
# (also statsmodels' test_fleiss_kappa).
WIKIPEDIA_FLEISS = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip


def test_fleiss_kappa_reproduces_the_wikipedia_example():
    result = fleiss_kappa(table_from_distribution(WIKIPEDIA_FLEISS))

    assert round(result.value, 3) == 0.210
    assert result.details["observed_agreement"] == pytest.approx(0.378, abs=5e-4)
    assert result.details["chance_agreement"] == pytest.approx(0.213, abs=5e-4)


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", Annenberg School for
# Communication, section C: 4 observers x 12 units with missing values; alpha nominal .743,
# ordinal .815, interval .849, ratio .797. Rows are observers A-D.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]


def krippendorff_table() -> RatingTable:
    return RatingTable.from_matrix([list(unit) for unit in zip(*KRIPPENDORFF_2011, strict=True)])


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_krippendorff_alpha_reproduces_krippendorff_2011(level, published):
    result = krippendorff_alpha(krippendorff_table(), level=level)

    assert round(result.value, 3) == published
    # Unit 12 has a single value and is not pairable: 11 units, 40 pairable values.
    assert result.n_items == 11
    assert result.details["pairable_values"] == 40


# The same 4 x 12 data is irrCAC's cac.raw4raters (Gwet 2014, Handbook of Inter-Rater
# Reliability, 4th ed., p. 120). Figures from the irrCAC package's tests (Python port,
# afergadis/irrCAC test/unit/irrCAC/raw/test_gwet.py and test_fleiss.py), 3 decimals:
# AC1 .775 (pa .818, pe .190, se .143, 95% CI .461 to 1); generalised Fleiss kappa .761
# (pe .239, CI .424 to 1); AC2 linear .859 (se .117, CI .600 to 1); AC2 quadratic .914
# (se .104, CI .685 to 1).


def test_gwet_ac1_reproduces_gwets_handbook_example():
    result = gwet_ac1(krippendorff_table())

    assert round(result.value, 3) == 0.775
    assert round(result.details["observed_agreement"], 3) == 0.818
    assert round(result.details["chance_agreement"], 3) == 0.190
    assert round(result.details["se"], 3) == 0.143
    assert (round(result.ci_low, 3), result.ci_high) == (0.461, 1.0)


@pytest.mark.parametrize(
    ("weighting", "value", "se", "ci_low"),
    [("linear", 0.859, 0.117, 0.600), ("quadratic", 0.914, 0.104, 0.685)],
)
def test_gwet_ac2_reproduces_gwets_handbook_example(weighting, value, se, ci_low):
    result = gwet_ac1(krippendorff_table(), weighting=weighting)

    assert round(result.value, 3) == value
    assert round(result.details["se"], 3) == se
    assert round(result.ci_low, 3) == ci_low


def test_fleiss_kappa_with_missing_ratings_is_gwets_generalisation():
    result = fleiss_kappa(krippendorff_table())

    assert round(result.value, 3) == 0.761
    assert round(result.details["chance_agreement"], 3) == 0.239
    assert round(result.ci_low, 3) == 0.424
    # The Fleiss-Nee-Landis null SE assumes the same number of ratings on every item.
    assert result.details["se_null"] is None
