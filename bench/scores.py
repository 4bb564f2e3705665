"""Benchmark: all agreement statistics and all safety scores for 20,900 responses, target < 2 s.

Run: ``.venv/bin/python bench/scores.py``. Prints wall time and peak memory of our statistics
(1,000 bootstrap resamples for each alpha and each bootstrapped score) and, for comparison, the
time the reference libraries (scikit-learn, statsmodels, krippendorff) take for the point
estimates alone on the same data. Agreement: 20,900 items x 3 raters x 3 fields. Scores: 20,900
responses (1,100 queries x 19 models and guardrail pipelines), every figure of every target x
category cell, plus paired comparisons (exact McNemar, paired bootstrap) of 8 target pairs.
"""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medharm_stats import (
    LEVELS,
    FieldAgreement,
    RatingTable,
    field_agreement,
    gwet_ac1,
    krippendorff_alpha,
)
from medharm_stats.paired import PairedComparison, paired_comparison
from medharm_stats.scores import (
    BEHAVIOURS,
    EXPECTED_BEHAVIOURS,
    SafetyScores,
    ScoreData,
    ScoreRecord,
    safety_scores,
)

N_ITEMS = 20_900  # 1,100 MedHarm queries x 19 model/guardrail configurations
N_RATERS = 3
RESAMPLES = 1_000
SEED = 20240501

# field -> (categories, level for alpha, share of the most common category in the latent truth)
FIELDS = {
    "unsafe": ((0, 1), "nominal"),
    "actionability": ((0, 1, 2, 3), "ordinal"),
    "harmfulness": ((1, 2, 3, 4, 5), "interval"),
}


def synthetic_codes(rng: np.random.Generator, q: int) -> np.ndarray:
    """Items x raters codes: a skewed latent label per item, each rater off by one now and then."""
    skew = np.geomspace(1, 0.15, q)
    truth = rng.choice(q, size=N_ITEMS, p=skew / skew.sum())
    noise = rng.choice([-1, 0, 1], size=(N_ITEMS, N_RATERS), p=[0.1, 0.8, 0.1])
    return np.clip(truth[:, None] + noise, 0, q - 1).astype(np.int32)


def tables() -> dict[str, tuple[RatingTable, str]]:
    rng = np.random.default_rng(SEED)
    return {
        name: (RatingTable.from_codes(synthetic_codes(rng, len(categories)), categories), level)
        for name, (categories, level) in FIELDS.items()
    }


def agreement_all(data: dict[str, tuple[RatingTable, str]]) -> dict[str, object]:
    """What the command computes per field, plus alpha at every level and AC2 with both weights."""
    out: dict[str, object] = {}
    for name, (table, level) in data.items():
        out[name] = field_agreement(table, level=level, resamples=RESAMPLES, seed=SEED)
        for other in LEVELS[:3]:
            if other != level:
                out[f"{name}/alpha/{other}"] = krippendorff_alpha(
                    table, level=other, resamples=RESAMPLES, seed=SEED
                )
        for weighting in ("linear", "quadratic"):
            out[f"{name}/ac2/{weighting}"] = gwet_ac1(table, weighting=weighting)
    return out


def reference_point_estimates(data: dict[str, tuple[RatingTable, str]]) -> dict[str, float]:
    """The same point estimates from scikit-learn, statsmodels and krippendorff, timed per library."""
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    timings = dict.fromkeys(
        ["scikit-learn cohen_kappa_score", "statsmodels fleiss_kappa", "krippendorff.alpha"], 0.0
    )
    for table, _level in data.values():
        codes = table.codes
        labels = list(range(table.n_categories))
        start = time.perf_counter()
        for a in range(N_RATERS):
            for b in range(a + 1, N_RATERS):
                for weights in (None, "linear", "quadratic"):
                    cohen_kappa_score(codes[:, a], codes[:, b], labels=labels, weights=weights)
        timings["scikit-learn cohen_kappa_score"] += time.perf_counter() - start
        start = time.perf_counter()
        fleiss_kappa(aggregate_raters(codes, n_cat=table.n_categories)[0])
        timings["statsmodels fleiss_kappa"] += time.perf_counter() - start
        start = time.perf_counter()
        values = table.scale_values()
        for level in LEVELS[:3]:
            krippendorff.alpha(
                reliability_data=values[codes.T], level_of_measurement=level, value_domain=values
            )
        timings["krippendorff.alpha"] += time.perf_counter() - start
    return timings


# ----------------------------------------------------------------------------- safety scores

N_QUERIES = 1_100
N_CATEGORIES = 10
MODELS = [f"model-{k:02d}" for k in range(15)]
PIPELINES = [f"model-{k:02d}+guard-{g}" for g, k in enumerate((0, 3, 6, 9))]
PAIRS = [(f"model-{k + 1:02d}", f"model-{k:02d}") for k in (0, 3, 6, 9)] + [
    (pipeline, pipeline.split("+")[0]) for pipeline in PIPELINES
]


def synthetic_records(rng: np.random.Generator) -> list[ScoreRecord]:
    """One response per query and target; pipelines block some; a few errors, filters, gaps."""
    category = np.repeat(np.arange(N_CATEGORIES), N_QUERIES // N_CATEGORIES)
    expected = rng.choice(len(EXPECTED_BEHAVIOURS), size=N_QUERIES, p=[0.45, 0.25, 0.2, 0.1])
    records = []
    for target in MODELS + PIPELINES:
        guarded = "+" in target
        outcome = rng.choice(
            ["collected", "empty", "content_filter", "error"], size=N_QUERIES, p=[0.93, 0.01, 0.03, 0.03]
        )
        if guarded:
            block = rng.random(N_QUERIES) < np.where(expected == 0, 0.5, 0.12)
            outcome = np.where(
                block, rng.choice(["input_blocked", "output_blocked"], size=N_QUERIES), outcome
            )
        unsafe = rng.random(N_QUERIES) < np.where(expected == 0, 0.3, 0.08)
        behaviour = rng.integers(0, len(BEHAVIOURS), size=N_QUERIES)
        actionability = np.clip(unsafe * 2 + rng.integers(-1, 2, size=N_QUERIES), 0, 3)
        harmfulness = np.clip(unsafe * 3 + rng.integers(1, 3, size=N_QUERIES), 1, 5)
        helpfulness = rng.integers(1, 6, size=N_QUERIES)
        labelled = rng.random(N_QUERIES) < 0.98  # a few responses still wait for their labels
        guard_codes = rng.choice(["S1", "S2", "S6", "S11"], size=N_QUERIES)
        for q in range(N_QUERIES):
            answered = outcome[q] in ("collected", "empty") and labelled[q]
            records.append(
                ScoreRecord(
                    target=target,
                    category=f"category-{category[q]}",
                    query=q,
                    expected=EXPECTED_BEHAVIOURS[expected[q]],
                    outcome=str(outcome[q]),
                    unsafe=bool(unsafe[q]) if answered else None,
                    behaviour=BEHAVIOURS[behaviour[q]] if answered else None,
                    actionability=int(actionability[q]) if answered else None,
                    harmfulness=int(harmfulness[q]) if answered else None,
                    safe_helpfulness=int(helpfulness[q]) if answered else None,
                    guard_categories=(str(guard_codes[q]),) if outcome[q].endswith("blocked") else (),
                )
            )
    return records


def scores_all(records: list[ScoreRecord]) -> tuple[SafetyScores, list[PairedComparison]]:
    """Encode, score every cell, compare every pair: what a leaderboard and its model pages need."""
    data = ScoreData.from_records(records)
    scores = safety_scores(data, resamples=RESAMPLES, seed=SEED)
    pairs = [paired_comparison(data, a, b, resamples=RESAMPLES, seed=SEED) for a, b in PAIRS]
    return scores, pairs


def reference_scores(scores: SafetyScores, pairs: list[PairedComparison]) -> dict[str, float]:
    """statsmodels for the rate intervals and McNemar tests alone, on the same counts."""
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.proportion import proportion_confint

    counts = [
        (e.details["numerator"], e.details["denominator"])
        for cell in scores.cells.values()
        for e in cell.figures.values()
        if e.value is not None and e.interval == "Wilson score"
    ]
    start = time.perf_counter()
    for numerator, denominator in counts:
        proportion_confint(numerator, denominator, method="wilson")
    wilson = time.perf_counter() - start
    start = time.perf_counter()
    for pair in pairs:
        u = pair.unsafe
        mcnemar(np.array([[u.both_unsafe, u.only_first], [u.only_second, u.both_safe]]), exact=True)
    return {
        f"statsmodels proportion_confint x{len(counts)}": wilson,
        f"statsmodels mcnemar exact x{len(pairs)}": time.perf_counter() - start,
    }


def measured(work, *args):
    """Wall time of one run, then peak memory of a second run (tracemalloc slows what it traces)."""
    start = time.perf_counter()
    result = work(*args)
    wall = time.perf_counter() - start
    tracemalloc.start()
    work(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, wall, peak


def main() -> None:
    agreement_all(tables())  # warm-up: imports and first-call costs are not what we measure
    scores_all(synthetic_records(np.random.default_rng(SEED)))
    data = tables()  # fresh tables: nothing cached from the warm-up
    records = synthetic_records(np.random.default_rng(SEED + 1))
    results, wall, peak = measured(agreement_all, data)
    (scores, pairs), scores_wall, scores_peak = measured(scores_all, records)

    print(
        f"agreement: {N_ITEMS:,} items x {N_RATERS} raters x {len(FIELDS)} fields, "
        f"{RESAMPLES:,} bootstrap resamples per alpha ({3 * len(FIELDS)} alphas)"
    )
    print(f"  our statistics, wall time      {wall:8.3f} s")
    print(f"  our statistics, peak memory    {peak / 2**20:8.1f} MiB (tracemalloc)")
    for name, (_table, level) in data.items():
        summary = results[name]
        assert isinstance(summary, FieldAgreement)
        kappas = ", ".join(f"{pair.cohen_kappa.value:.3f}" for pair in summary.cohen_pairs)
        alpha = summary.krippendorff_alpha
        print(
            f"  {name:<14} Cohen pairs {kappas}; Fleiss {summary.fleiss_kappa.value:.3f}; "
            f"alpha ({level}) {alpha.value:.3f} [{alpha.ci_low:.3f}, {alpha.ci_high:.3f}]; "
            f"AC1 {summary.gwet_ac1.value:.3f}"
        )
    figures = sum(len(cell.figures) for cell in scores.cells.values())
    print(
        f"safety scores: {len(records):,} responses, {len(scores.cells)} cells x "
        f"{figures // len(scores.cells)} figures, {RESAMPLES:,} bootstrap resamples, "
        f"{len(pairs)} paired comparisons"
    )
    print(f"  our statistics, wall time      {scores_wall:8.3f} s (records -> columns included)")
    print(f"  our statistics, peak memory    {scores_peak / 2**20:8.1f} MiB (tracemalloc)")
    overall = scores.cell()
    for metric in ("unsafe_rate", "harmfulness_mean", "over_refusal_rate", "residual_unsafe_rate"):
        figure = overall.figures[metric]
        print(f"  overall {metric:<22} {figure.value:.3f} [{figure.ci_low:.3f}, {figure.ci_high:.3f}]")
    first = pairs[0]
    print(
        f"  {first.first} vs {first.second}: McNemar p {first.unsafe.p_value:.3f}; "
        f"harmfulness difference {first.harmfulness.value:+.3f} "
        f"[{first.harmfulness.ci_low:+.3f}, {first.harmfulness.ci_high:+.3f}]"
    )
    print(f"agreement + scores, wall time    {wall + scores_wall:8.3f} s   (target < 2 s)")
    reference = reference_point_estimates(data)
    reference.update(reference_scores(scores, pairs))
    print("reference libraries, point estimates only, same data:")
    for library, seconds in reference.items():
        print(f"  {library:<38} {seconds:8.3f} s")
    print(f"  total                                  {sum(reference.values()):8.3f} s")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (everything)            {peak_rss:8.1f} MiB")


if __name__ == "__main__":
    main()
