"""Judge audit statistics checked against independent implementations: scikit-learn's
``cohen_kappa_score``, ``confusion_matrix`` and ``precision_recall_fscore_support``,
``scipy.stats.kendalltau`` and the PPI authors' ``ppi_py``; and a seeded coverage simulation."""

from __future__ import annotations

import numpy as np
import pytest
from ppi_py import ppi_mean_ci, ppi_mean_pointestimate
from scipy.stats import kendalltau
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from medharm_stats.judging import (
    BiasRecord,
    assisted_rate,
    audit_plan,
    audit_sample_size,
    judge_audit,
    judge_bias,
    kendall_tau_b,
    ppi_mean,
    ranking_flips,
    stratified_allocation,
)

BEHAVIOURS = ["full_refusal", "refusal_redirect", "cautious_answer", "full_compliance"]


def _noisy_pairs(seed: int, n: int, categories: list, flip: float) -> list[tuple[int, object, object]]:
    rng = np.random.default_rng(seed)
    gold = rng.choice(
        len(categories),
        size=n,
        p=np.linspace(1, 2, len(categories)) / np.linspace(1, 2, len(categories)).sum(),
    )
    judge = np.where(rng.random(n) < flip, rng.integers(0, len(categories), n), gold)
    return [(i, categories[g], categories[j]) for i, (g, j) in enumerate(zip(gold, judge, strict=True))]


def test_nominal_audit_matches_scikit_learn() -> None:
    pairs = _noisy_pairs(1, 400, BEHAVIOURS, 0.35)
    audit = judge_audit(pairs, categories=BEHAVIOURS, parse_failures=12)
    gold = [g for _, g, _ in pairs]
    judge = [j for _, _, j in pairs]
    assert audit.n == 400
    assert [list(r) for r in audit.confusion] == sk_confusion_matrix(gold, judge, labels=BEHAVIOURS).tolist()
    assert audit.kappa.value == pytest.approx(cohen_kappa_score(gold, judge), abs=1e-12)
    assert audit.kappa_weighting == "none"
    assert audit.accuracy.value == pytest.approx(np.mean(np.array(gold) == np.array(judge)))
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, judge, labels=BEHAVIOURS, zero_division=0
    )
    for k, value in enumerate(BEHAVIOURS):
        figures = audit.class_figures(value)
        assert figures is not None
        assert figures.precision.value == pytest.approx(precision[k])
        assert figures.recall.value == pytest.approx(recall[k])
        assert figures.f1.value == pytest.approx(f1[k])
        assert figures.support == support[k]
        assert figures.f1.ci_low < f1[k] < figures.f1.ci_high
    assert audit.parse_failures == 12
    assert audit.parse_failure_rate.value == pytest.approx(12 / 412)
    assert audit.kappa.ci_low < audit.kappa.value < audit.kappa.ci_high
    assert audit.ac1.value is not None
    assert audit.ac1.ci_low < audit.ac1.value < audit.ac1.ci_high


def test_ordinal_audit_uses_linear_weights_as_scikit_learn() -> None:
    points = [0, 1, 2, 3]
    pairs = _noisy_pairs(2, 300, points, 0.5)
    audit = judge_audit(pairs, categories=points, ordered=True)
    gold = [g for _, g, _ in pairs]
    judge = [j for _, _, j in pairs]
    assert audit.kappa_weighting == "linear"
    assert audit.kappa.value == pytest.approx(cohen_kappa_score(gold, judge, weights="linear"), abs=1e-12)
    assert audit.kappa.value != pytest.approx(cohen_kappa_score(gold, judge), abs=1e-3)


def test_binary_audit_of_a_judge_that_never_says_unsafe() -> None:
    """A judge that always answers 'safe' agrees on most items yet recalls no unsafe response."""
    pairs = [(i, i < 20, False) for i in range(100)]
    audit = judge_audit(pairs, categories=[False, True])
    assert audit.accuracy.value == pytest.approx(0.8)
    unsafe = audit.class_figures(True)
    assert unsafe is not None
    assert unsafe.recall.value == 0.0
    assert unsafe.support == 20
    assert unsafe.precision.value is None  # never predicted
    assert audit.kappa.value == pytest.approx(0.0)


def test_empty_audit_names_the_reason() -> None:
    audit = judge_audit([], categories=[False, True], parse_failures=3)
    assert audit.n == 0
    assert audit.kappa.value is None
    assert "no item" in (audit.kappa.reason or "")
    assert audit.parse_failure_rate.value == 1.0


def test_kendall_tau_b_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        x = rng.integers(0, 4, 7).astype(float)
        y = rng.integers(0, 4, 7).astype(float)
        expected = kendalltau(x, y).statistic
        got = kendall_tau_b(x, y)
        if np.isnan(expected):
            assert got is None
        else:
            assert got == pytest.approx(expected, abs=1e-12)


def test_ranking_flips_lists_each_reordered_pair_once() -> None:
    clinician = {"a": 0.6, "b": 0.4, "c": 0.2}
    judge = {"a": 0.36, "b": 0.4, "c": 0.1}
    assert ranking_flips(clinician, judge) == [("a", "b")]
    assert ranking_flips(clinician, clinician) == []


def _bias_records(seed: int) -> list[BiasRecord]:
    """Three models on 200 shared queries; the judge under-calls 'unsafe' for model-b only."""
    rng = np.random.default_rng(seed)
    records = []
    for query in range(200):
        for model, rate in (("model-a", 0.30), ("model-b", 0.35), ("model-c", 0.10)):
            gold = float(rng.random() < rate)
            judge = gold
            if model == "model-b" and gold and rng.random() < 0.6:
                judge = 0.0
            records.append(BiasRecord(model=model, query=query, gold=gold, judge=judge))
    return records


def test_bias_per_model_and_flips() -> None:
    records = _bias_records(3)
    report = judge_bias(records, resamples=500, seed=7)
    by_model = {m.model: m for m in report.models}
    for model, m in by_model.items():
        rows = [r for r in records if r.model == model]
        expected = np.mean([r.judge - r.gold for r in rows])
        assert m.bias.value == pytest.approx(expected)
        assert m.n == 200
    assert by_model["model-a"].bias.value == 0.0
    assert by_model["model-b"].bias.ci_high < -0.1  # the bias is caught with its interval
    assert by_model["model-b"].clinician_rate.value > by_model["model-a"].clinician_rate.value
    assert report.ranking.flips == (("model-b", "model-a"),)
    assert report.ranking.judge_order == ("model-a", "model-b", "model-c")
    clinician = [by_model[m].clinician_rate.value for m in sorted(by_model)]
    judge = [by_model[m].judge_rate.value for m in sorted(by_model)]
    assert report.ranking.tau.value == pytest.approx(kendalltau(clinician, judge).statistic)
    # Paired: the same resamples of queries for every model, so the result is reproducible.
    again = judge_bias(records, resamples=500, seed=7)
    assert again.models[1].bias.ci_low == report.models[1].bias.ci_low


def test_ppi_and_ppi_plus_match_ppi_py() -> None:
    rng = np.random.default_rng(11)
    truth = rng.random(3000) < 0.3
    judge = np.where(rng.random(3000) < 0.15, ~truth, truth).astype(float)
    judge[truth & (rng.random(3000) < 0.3)] = 0.0  # and biased towards 'safe'
    y, yhat, unlabelled = truth[:300].astype(float), judge[:300], judge[300:]
    for lam in (1.0, None):
        ours = ppi_mean(y, yhat, unlabelled, lam=lam)
        low, high = ppi_mean_ci(y, yhat, unlabelled, alpha=0.05, lam=lam)
        point = ppi_mean_pointestimate(y, yhat, unlabelled, lam=lam)
        assert ours.value == pytest.approx(float(np.squeeze(point)), abs=1e-12)
        assert ours.ci_low == pytest.approx(float(np.squeeze(low)), abs=1e-12)
        assert ours.ci_high == pytest.approx(float(np.squeeze(high)), abs=1e-12)
    classical = ppi_mean(y, yhat, unlabelled, lam=0.0)
    low, high = ppi_mean_ci(y, yhat, unlabelled, alpha=0.05, lam=0)
    assert classical.ci_low == pytest.approx(float(np.squeeze(low)), abs=1e-12)
    assert 0 < ppi_mean(y, yhat, unlabelled).details["lambda"] <= 1


def test_simulation_ppi_covers_while_the_biased_judge_does_not() -> None:
    """A judge that misses 30% of unsafe responses: over 400 seeded draws the PPI interval holds
    the true rate about 95% of the time; the judge-only interval almost never does."""
    rng = np.random.default_rng(2026)
    true_rate, n, big_n, draws = 0.30, 200, 4000, 400
    covered_ppi = covered_plus = covered_judge = 0
    ratios = []
    for _ in range(draws):
        truth = rng.random(n + big_n) < true_rate
        judge = truth & (rng.random(n + big_n) >= 0.3)
        judge |= ~truth & (rng.random(n + big_n) < 0.03)
        result = assisted_rate("m", truth[:n].astype(float), judge[:n].astype(float), judge[n:].astype(float))
        covered_ppi += result.ppi.ci_low <= true_rate <= result.ppi.ci_high
        covered_plus += result.ppi_plus.ci_low <= true_rate <= result.ppi_plus.ci_high
        covered_judge += result.judge_only.ci_low <= true_rate <= result.judge_only.ci_high
        ratios.append(result.width_ratio)
    assert 0.92 <= covered_ppi / draws <= 0.98
    assert 0.92 <= covered_plus / draws <= 0.98
    assert covered_judge / draws < 0.05
    assert np.mean(ratios) < 0.9  # the judge-assisted interval is narrower than clinician-only


def test_sample_size_reaches_the_half_width() -> None:
    # 1.96^2 * 0.2 / 0.05^2 = 307.3 -> 308 items per model; 307.3 / (1 + 306.3/100) -> 76 of 100.
    assert audit_sample_size(half_width=0.05, disagreement=0.2) == 308
    assert audit_sample_size(half_width=0.05, disagreement=0.2, population=100) == 76
    with pytest.raises(ValueError, match="half_width"):
        audit_sample_size(half_width=0)
    # A simulated audit of that size gives intervals of about that half-width.
    rng = np.random.default_rng(4)
    widths = []
    for _ in range(50):
        d = np.where(rng.random(308) < 0.2, rng.choice([-1.0, 1.0], 308), 0.0)
        widths.append(1.96 * d.std() / np.sqrt(308))
    assert np.mean(widths) == pytest.approx(0.05, abs=0.004)


def test_stratified_allocation_is_proportional_and_capped() -> None:
    alloc = stratified_allocation({"a": 600, "b": 300, "c": 100, "d": 0}, 100)
    assert alloc == {"a": 60, "b": 30, "c": 10, "d": 0}
    small = stratified_allocation({"a": 1000, "b": 2}, 10)
    assert small["b"] >= 1
    assert sum(small.values()) == 10
    assert stratified_allocation({"a": 3, "b": 2}, 50) == {"a": 3, "b": 2}


def test_audit_plan_per_model_and_hours() -> None:
    strata = {
        ("m1", "tox", "unsafe"): 200, ("m1", "tox", "safe"): 800,
        ("m2", "tox", "unsafe"): 50, ("m2", "tox", "safe"): 50,
    }  # fmt: skip
    plan = audit_plan(strata, half_width=0.05, labels_per_item=2, minutes_per_label=1.5)
    assert plan.per_model["m1"] == audit_sample_size(half_width=0.05, population=1000)
    assert plan.per_model["m2"] == audit_sample_size(half_width=0.05, population=100)
    assert plan.per_stratum[("m1", "tox", "unsafe")] * 4 == pytest.approx(
        plan.per_stratum[("m1", "tox", "safe")], abs=4
    )
    assert plan.clinician_hours == pytest.approx(plan.items * 2 * 1.5 / 60)
