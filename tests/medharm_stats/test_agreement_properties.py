"""Property tests: our coefficients equal scikit-learn, statsmodels and krippendorff on random ratings."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import cohens_kappa as statsmodels_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

from medharm_stats import (
    MISSING,
    RatingTable,
    cohen_kappa,
    field_agreement,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    percent_agreement,
)
from medharm_stats.agreement import NO_MULTIPLE, NO_OVERLAP, NO_RATINGS, ONE_CATEGORY, ONE_RATER

ROOT = Path(__file__).resolve().parents[2]
PROPERTY = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def ratings(draw, *, min_raters=2, max_raters=5, missing=True, max_categories=5, max_items=25):
    """Codes (items x raters, -1 missing) that mix agreement and noise, and the category count."""
    q = draw(st.integers(2, max_categories))
    raters = draw(st.integers(min_raters, max_raters))
    items = draw(st.integers(1, max_items))
    truth = draw(st.lists(st.integers(0, q - 1), min_size=items, max_size=items))
    agree = draw(st.floats(0, 1))
    codes = []
    for value in truth:
        row = []
        for _ in range(raters):
            if missing and draw(st.integers(0, 4)) == 0:
                row.append(MISSING)
            elif draw(st.floats(0, 1)) < agree:
                row.append(value)
            else:
                row.append(draw(st.integers(0, q - 1)))
        codes.append(row)
    return np.array(codes, dtype=np.int32), q


def make_table(codes, q, values=None):
    return RatingTable.from_codes(codes, values if values is not None else list(range(q)))


@PROPERTY
@given(ratings(min_raters=2, max_raters=2), st.sampled_from(["none", "linear", "quadratic"]))
def test_cohen_kappa_equals_scikit_learn(data, weighting):
    codes, q = data
    ours = cohen_kappa(make_table(codes, q), weighting=weighting)
    both = (codes >= 0).all(axis=1)
    if not both.any():
        # No shared item; when a rater has no rating at all, the table has fewer than two raters.
        assert ours.reason in {NO_OVERLAP, NO_RATINGS, ONE_RATER}
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = cohen_kappa_score(
            codes[both, 0],
            codes[both, 1],
            labels=list(range(q)),
            weights=None if weighting == "none" else weighting,
        )
    if np.isnan(expected):
        assert ours.reason == ONE_CATEGORY
    else:
        assert ours.value == pytest.approx(expected, abs=1e-9)


@PROPERTY
@given(
    ratings(min_raters=2, max_raters=2, missing=False, max_items=40),
    st.sampled_from(["none", "linear", "quadratic"]),
)
def test_cohen_kappa_standard_error_equals_statsmodels(data, weighting):
    """statsmodels' var_kappa is the same Fleiss-Cohen-Everitt (1969) large-sample variance."""
    codes, q = data
    table = make_table(codes, q)
    ours = cohen_kappa(table, weighting=weighting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = statsmodels_cohens_kappa(
            table.pair(0, 1), wt=None if weighting == "none" else weighting, return_results=True
        )
    if ours.value is None or len(codes) < 2:
        return
    assert ours.value == pytest.approx(reference.kappa, abs=1e-9)
    assert ours.details["se"] == pytest.approx(np.sqrt(max(reference.var_kappa, 0)), abs=1e-7)


@PROPERTY
@given(ratings(min_raters=2, max_raters=6, missing=False))
def test_fleiss_kappa_equals_statsmodels_on_complete_ratings(data):
    codes, q = data
    table = make_table(codes, q)
    ours = fleiss_kappa(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = statsmodels_fleiss_kappa(table.counts)
    if np.isnan(expected):
        assert ours.reason == ONE_CATEGORY
    else:
        assert ours.value == pytest.approx(expected, abs=1e-9)


@PROPERTY
@given(
    ratings(min_raters=2, max_raters=5), st.sampled_from(["nominal", "ordinal", "interval"]), st.booleans()
)
def test_krippendorff_alpha_equals_the_krippendorff_package_with_missing_values(data, level, uneven):
    codes, q = data
    # Unevenly spaced numeric categories tell the interval metric (values) from positions.
    values = [1, 2, 4, 7, 11][:q] if uneven else list(range(q))
    ours = krippendorff_alpha(make_table(codes, q, values), level=level, resamples=20)
    reliability = np.where(codes.T >= 0, np.array(values, dtype=float)[codes.T], np.nan)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = krippendorff.alpha(
                reliability_data=reliability, level_of_measurement=level, value_domain=values
            )
    except ValueError:  # the package refuses data without a pairable unit
        assert ours.reason in {NO_MULTIPLE, NO_RATINGS, ONE_RATER}
        return
    if np.isnan(expected):
        assert ours.reason == ONE_CATEGORY
    else:
        assert ours.value == pytest.approx(expected, abs=1e-9)


@PROPERTY
@given(ratings(min_raters=2, max_raters=5), st.randoms(use_true_random=False))
def test_multi_rater_coefficients_do_not_depend_on_rater_item_or_nominal_label_order(data, random):
    codes, q = data
    table = make_table(codes, q)
    raters = list(range(codes.shape[1]))
    items = list(range(codes.shape[0]))
    relabel = list(range(q))
    random.shuffle(raters)
    random.shuffle(items)
    random.shuffle(relabel)
    shuffled = np.where(codes >= 0, np.array(relabel)[codes], MISSING)[items][:, raters]
    other = make_table(shuffled, q)

    for statistic in (percent_agreement, fleiss_kappa, gwet_ac1):
        first, second = statistic(table), statistic(other)
        assert first.reason == second.reason
        if first.value is not None:
            assert second.value == pytest.approx(first.value, abs=1e-9)
            assert second.ci_low == pytest.approx(first.ci_low, abs=1e-9)
    first, second = krippendorff_alpha(table, resamples=50), krippendorff_alpha(other, resamples=50)
    assert first.reason == second.reason
    if first.value is not None:
        assert second.value == pytest.approx(first.value, abs=1e-9)


@PROPERTY
@given(ratings(min_raters=1, max_raters=4))
def test_published_shape_never_holds_nan(data):
    codes, q = data
    summary = field_agreement(make_table(codes, q), level="ordinal", resamples=30)

    text = json.dumps(summary.as_dict(), allow_nan=False)

    for key in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1"):
        entry = json.loads(text)[key]
        assert set(entry) in ({"value", "ci_low", "ci_high"}, {"value", "reason"})
        if entry["value"] is not None and entry["ci_low"] is not None:
            assert -1 <= entry["ci_low"] <= entry["ci_high"] <= 1


@PROPERTY
@given(ratings(min_raters=2, max_raters=4))
def test_records_and_matrix_inputs_give_the_same_coefficients(data):
    codes, q = data
    labels = ["none", "low", "mid", "high", "max"][:q]
    matrix = [[labels[c] if c >= 0 else None for c in row] for row in codes]
    records = [
        (f"item-{i}", f"rater-{r}", value) for i, row in enumerate(matrix) for r, value in enumerate(row)
    ]

    from_matrix = RatingTable.from_matrix(matrix, categories=labels)
    from_records = RatingTable.from_records(records, categories=labels)

    assert percent_agreement(from_records).as_dict() == percent_agreement(from_matrix).as_dict()
    assert (
        gwet_ac1(from_records, weighting="quadratic").as_dict()
        == gwet_ac1(from_matrix, weighting="quadratic").as_dict()
    )
    assert krippendorff_alpha(from_records, level="ordinal").as_dict() == (
        krippendorff_alpha(from_matrix, level="ordinal").as_dict()
    )


def test_pattern_bootstrap_matches_a_plain_item_bootstrap():
    """Drawing pattern frequencies from a multinomial is resampling items; compare to the slow way."""
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 4, size=400)
    codes = np.where(rng.random((400, 3)) < 0.7, truth[:, None], rng.integers(0, 4, size=(400, 3)))
    codes[rng.random((400, 3)) < 0.1] = MISSING
    table = make_table(codes, 4)
    ours = krippendorff_alpha(table, level="interval", resamples=2000, seed=3)

    slow = []
    for _ in range(2000):
        sample = codes[rng.integers(0, len(codes), size=len(codes))]
        slow.append(krippendorff_alpha(make_table(sample, 4), level="interval", resamples=1).value)
    low, high = np.percentile(slow, [2.5, 97.5])

    assert ours.ci_low == pytest.approx(low, abs=0.01)
    assert ours.ci_high == pytest.approx(high, abs=0.01)
    assert ours.ci_high - ours.ci_low == pytest.approx(high - low, rel=0.15)


def test_statistics_package_runs_without_django():
    """The statistics are plain Python: importing and using them must not load Django."""
    script = (
        "import sys; import medharm_stats as s; from medharm_stats import long_format; "
        "t = s.RatingTable.from_matrix([[0, 1], [1, 1]]); s.field_agreement(t); "
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    # PYTHONPATH points at the checkout; no DJANGO_SETTINGS_MODULE is set.
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
