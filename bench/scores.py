"""Benchmark: every agreement statistic for 20,900 responses x 3 labels per field, target < 2 s.

Run: ``.venv/bin/python bench/scores.py``. Prints wall time and peak memory of our statistics
(1,000 bootstrap resamples for each alpha) and, for comparison, the time the reference libraries
(scikit-learn, statsmodels, krippendorff) take for the point estimates alone on the same data.
The safety-score part of the benchmark arrives with the scores module.
"""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluations.statistics import (
    LEVELS,
    FieldAgreement,
    RatingTable,
    field_agreement,
    gwet_ac1,
    krippendorff_alpha,
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


def main() -> None:
    agreement_all(tables())  # warm-up: imports and first-call costs are not what we measure
    data = tables()  # fresh tables: nothing cached from the warm-up
    tracemalloc.start()
    start = time.perf_counter()
    results = agreement_all(data)
    wall = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(
        f"agreement: {N_ITEMS:,} items x {N_RATERS} raters x {len(FIELDS)} fields, "
        f"{RESAMPLES:,} bootstrap resamples per alpha ({3 * len(FIELDS)} alphas)"
    )
    print(f"  our statistics, wall time      {wall:8.3f} s   (target < 2 s)")
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
    reference = reference_point_estimates(data)
    print("reference libraries, point estimates only, same data:")
    for library, seconds in reference.items():
        print(f"  {library:<31} {seconds:8.3f} s")
    print(f"  total                           {sum(reference.values()):8.3f} s")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (everything)     {peak_rss:8.1f} MiB")


if __name__ == "__main__":
    main()
