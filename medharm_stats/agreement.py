"""Inter-rater agreement: percent agreement, Cohen's, Fleiss' kappa, Krippendorff's alpha, Gwet's AC1.

Every function takes a ``RatingTable`` and returns an ``Estimate``; an undefined coefficient
comes back with ``value=None`` and a reason, never NaN. The rules for edge cases, missing
ratings and intervals are in ``docs/statistics.md``; the short version:

* Items with no rating do not exist. Items with one rating count towards the category shares
  (pi) of Fleiss' kappa and AC1, as in Gwet (2014), but not towards observed agreement; alpha and
  percent agreement use items with two or more ratings only; Cohen's kappa uses the items both
  raters rated.
* Intervals: Cohen's kappa uses the large-sample variance of Fleiss, Cohen & Everitt (1969)
  with a normal quantile; Fleiss' kappa, AC1 and (with unequal numbers of ratings) percent
  agreement use Gwet's linearised variance (Gwet 2008; Handbook 2014) with a t quantile on n-1
  degrees of freedom, as Gwet's irrCAC does; percent agreement between two ratings per item is a
  binomial proportion and gets the Wilson interval; Krippendorff's alpha, which has no standard
  closed-form variance, gets a seeded percentile bootstrap over items. Intervals are clipped to
  the coefficient's range ([-1, 1], or [0, 1] for percent agreement).

All computations are vectorised over *rating patterns*: items with the same count of ratings per
category contribute identically, so each statistic is computed from the distinct patterns and
their frequencies. A bootstrap resample of items is then a multinomial draw of pattern
frequencies, which has exactly the distribution of drawing items with replacement and costs
nothing per item.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from .proportions import normal_quantile, wilson_interval
from .ratings import RatingTable, is_number
from .result import Estimate

Weighting = Literal["none", "linear", "quadratic"]
Level = Literal["nominal", "ordinal", "interval", "ratio"]
WEIGHTINGS: tuple[str, ...] = ("none", "linear", "quadratic")
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20240501
_EPS = 1e-12

NO_RATINGS = "not computable: there are no ratings"
ONE_RATER = "not computable: fewer than two raters"
NO_MULTIPLE = "not computable: no item has two or more ratings"
NO_OVERLAP = "not computable: no item was rated by both raters"
ONE_CATEGORY = "not computable: all ratings fall in one category (chance agreement is 1)"
UNORDERED = (
    "not computable: the categories have no declared order, and this coefficient depends on it "
    "(declare the categories in order)"
)
FEW_CATEGORIES = "not computable: fewer than two categories are known (declare the categories)"
ONE_ITEM_CI = "no interval: an interval needs at least two items"


# ----------------------------------------------------------------------------- helpers


def agreement_weights(q: int, weighting: str | np.ndarray) -> np.ndarray:
    """Agreement weights over category positions 0..q-1: 1 on the diagonal, 0 at the far corners.

    linear: 1 - |i-j|/(q-1); quadratic: 1 - (i-j)^2/(q-1)^2 (Cohen 1968; Fleiss & Cohen 1973).
    A q x q matrix is taken as given (agreement weights: 1 on the diagonal, at most 1 elsewhere).
    """
    if isinstance(weighting, np.ndarray):
        matrix = np.asarray(weighting, dtype=float)
        if matrix.shape != (q, q) or not np.allclose(np.diag(matrix), 1) or (matrix > 1).any():
            raise ValueError(f"custom weights must be {q}x{q}, 1 on the diagonal and at most 1 elsewhere")
        return matrix
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")
    if weighting == "none" or q < 2:
        return np.eye(q)
    distance = np.abs(np.subtract.outer(np.arange(q), np.arange(q))) / (q - 1)
    return 1 - distance if weighting == "linear" else 1 - distance**2


@lru_cache(maxsize=256)
def _t_quantile(confidence: float, df: int) -> float:
    # ``scipy.special.stdtrit`` is what ``scipy.stats.t.ppf`` evaluates, without importing
    # ``scipy.stats`` (1-3 s on a process's first figure); loaded on first use.
    from scipy.special import stdtrit

    return float(stdtrit(df, 1 - (1 - confidence) / 2))


def _clip(value: float, low: float, high: float) -> float:
    return float(min(high, max(low, value)))


@dataclass(frozen=True)
class _Patterns:
    """Distinct per-item count vectors (``counts``, P x q) and how many items show each."""

    counts: np.ndarray
    freq: np.ndarray

    @classmethod
    def of(cls, table: RatingTable, *, min_ratings: int = 1) -> _Patterns:
        """The patterns of items with at least ``min_ratings`` ratings."""
        counts, freq = table.patterns
        keep = counts.sum(axis=1) >= min_ratings
        return cls(counts[keep].astype(float), freq[keep].astype(float))

    @property
    def n(self) -> int:
        return int(self.freq.sum())


def _bootstrap(
    batch: Callable[[np.ndarray], np.ndarray],
    freq: np.ndarray,
    *,
    resamples: int,
    seed: int,
    confidence: float,
) -> tuple[float, float, int] | None:
    """Percentile interval of ``batch`` over ``resamples`` resamples of items, or None.

    ``batch`` maps a (B x P) matrix of pattern frequencies to B values, NaN where the coefficient
    is not computable in that resample; such resamples are dropped and counted out.
    """
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    n = int(freq.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, freq / n, size=resamples).astype(float)
    values = batch(draws)
    kept = values[np.isfinite(values)]
    if kept.size == 0:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(kept, [tail, 100 - tail])
    return float(low), float(high), int(kept.size)


def _bootstrap_estimate(
    value: float,
    batch: Callable[[np.ndarray], np.ndarray],
    freq: np.ndarray,
    *,
    resamples: int,
    seed: int,
    confidence: float,
    n_items: int,
    details: dict[str, Any],
    clip: tuple[float, float] | None = None,
) -> Estimate:
    if n_items < 2:
        return Estimate(value=value, n_items=n_items, ci_reason=ONE_ITEM_CI, details=details)
    found = _bootstrap(batch, freq, resamples=resamples, seed=seed, confidence=confidence)
    if found is None:
        return Estimate(
            value=value,
            n_items=n_items,
            details=details,
            ci_reason="no interval: the coefficient is not computable in any bootstrap resample",
        )
    low, high, kept = found
    if clip is not None:
        low, high = _clip(low, *clip), _clip(high, *clip)
    return Estimate(
        value=value,
        ci_low=low,
        ci_high=high,
        n_items=n_items,
        interval=f"percentile bootstrap over items ({resamples} resamples, seed {seed})",
        details={**details, "resamples": resamples, "resamples_kept": kept, "seed": seed},
    )


def _variance_estimate(
    value: float,
    variance: float,
    *,
    n_items: int,
    confidence: float,
    quantile: float | None,
    method: str,
    details: dict[str, Any],
    low: float = -1.0,
) -> Estimate:
    se = float(np.sqrt(max(variance, 0.0)))
    details = {**details, "se": se}
    if n_items < 2 or quantile is None:
        return Estimate(value=value, n_items=n_items, ci_reason=ONE_ITEM_CI, details=details)
    return Estimate(
        value=value,
        ci_low=_clip(value - quantile * se, low, 1.0),
        ci_high=_clip(value + quantile * se, low, 1.0),
        interval=method,
        n_items=n_items,
        details=details,
    )


def _basic_guard(table: RatingTable) -> str | None:
    if table.n_items == 0:
        return NO_RATINGS
    if table.n_raters < 2:
        return ONE_RATER
    return None


def _order_guard(table: RatingTable, order_matters: bool) -> str | None:
    if order_matters and not table.ordered and table.n_categories >= 3:
        return UNORDERED
    return None


# ----------------------------------------------------------------------------- percent agreement


def percent_agreement(table: RatingTable, *, confidence: float = 0.95) -> Estimate:
    """Share of agreeing rater pairs per item, averaged over items with two or more ratings.

    With exactly two ratings on every such item this is the share of items on which both agree,
    a binomial proportion with a Wilson interval; otherwise the interval uses the variance of the
    per-item agreement across items (t quantile, n-1 degrees of freedom).
    """
    guard = _basic_guard(table)
    if guard:
        return Estimate.not_computable(guard, n_items=table.n_items)
    counts = table.counts
    r = counts.sum(axis=1)
    multi = r >= 2
    n2 = int(multi.sum())
    if n2 == 0:
        return Estimate.not_computable(NO_MULTIPLE, n_items=0)
    c, rr = counts[multi].astype(float), r[multi].astype(float)
    per_item = (c * (c - 1)).sum(axis=1) / (rr * (rr - 1))
    value = float(per_item.mean())
    if (rr == 2).all():
        agreeing = round(float(per_item.sum()))
        wilson = wilson_interval(agreeing, n2, confidence=confidence)
        return Estimate(
            value=value,
            ci_low=wilson.ci_low,
            ci_high=wilson.ci_high,
            interval="Wilson score",
            n_items=n2,
            details={"agreeing_items": agreeing},
        )
    variance = float(per_item.var(ddof=1) / n2) if n2 > 1 else 0.0
    quantile = _t_quantile(confidence, n2 - 1) if n2 > 1 else None
    return _variance_estimate(
        value,
        variance,
        n_items=n2,
        confidence=confidence,
        quantile=quantile,
        low=0.0,
        method="variance of per-item agreement (t, n-1 df)",
        details={},
    )


# ----------------------------------------------------------------------------- Cohen's kappa


def _cohen_batch(tables: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Kappa for a stack of B contingency tables (B x q x q); NaN where chance agreement is 1."""
    n = tables.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = tables / n[:, None, None]
        rows, cols = p.sum(axis=2), p.sum(axis=1)
        observed = (weights * p).sum(axis=(1, 2))
        chance = np.einsum("bi,ij,bj->b", rows, weights, cols)
        kappa = (observed - chance) / (1 - chance)
    kappa[(1 - chance) <= _EPS] = np.nan
    return kappa


def cohen_kappa(
    table: RatingTable,
    *,
    weighting: Weighting | np.ndarray = "none",
    raters: tuple[Hashable, Hashable] | None = None,
    interval: Literal["asymptotic", "bootstrap"] = "asymptotic",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Estimate:
    """Cohen's kappa between two raters, unweighted or with linear/quadratic agreement weights.

    ``weighting`` may also be a q x q matrix of agreement weights (Cohen 1968). Uses the items
    both raters rated. ``raters`` names the pair; without it the table must have exactly two
    raters. The asymptotic interval is kappa +/- z * SE with the large-sample SE of
    Fleiss, Cohen & Everitt (1969), clipped to [-1, 1].
    """
    weights = agreement_weights(table.n_categories, weighting)
    if raters is None:
        rated = [k for k in range(len(table.rater_ids)) if (table.codes[:, k] >= 0).any()]
        if len(rated) > 2:
            raise ValueError("Cohen's kappa compares two raters; name the pair with raters=(a, b).")
        guard = _basic_guard(table)
        if guard:
            return Estimate.not_computable(guard, n_items=table.n_items)
        first, second = rated
    else:
        first, second = (table.rater_ids.index(rater) for rater in raters)
        if first == second:
            raise ValueError("Cohen's kappa needs two different raters.")
    guard = _order_guard(table, isinstance(weighting, str) and weighting != "none")
    if guard:
        return Estimate.not_computable(guard, n_items=0)
    return cohen_kappa_of_counts(
        table.pair(first, second),
        weights,
        interval=interval,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )


def cohen_kappa_of_counts(
    pair_counts: np.ndarray,
    weights: np.ndarray,
    *,
    interval: Literal["asymptotic", "bootstrap"] = "asymptotic",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Estimate:
    """``cohen_kappa`` from the pair's q x q contingency table (rows: the first rater's categories),
    once the table's guards passed (two raters, categories in a declared order if weighted)."""
    counts = pair_counts.astype(float)
    n = int(counts.sum())
    if n == 0:
        return Estimate.not_computable(NO_OVERLAP, n_items=0)
    value = float(_cohen_batch(counts[None], weights)[0])
    if not np.isfinite(value):
        return Estimate.not_computable(ONE_CATEGORY, n_items=n)
    p = counts / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    observed = float((weights * p).sum())
    chance = float(rows @ weights @ cols)
    details: dict[str, Any] = {"observed_agreement": observed, "chance_agreement": chance}
    if interval == "bootstrap":
        q = counts.shape[0]
        return _bootstrap_estimate(
            value,
            lambda draws: _cohen_batch(draws.reshape(-1, q, q), weights),
            counts.ravel(),
            resamples=resamples,
            seed=seed,
            confidence=confidence,
            n_items=n,
            details=details,
            clip=(-1.0, 1.0),
        )
    # Fleiss, Cohen & Everitt (1969), eq. (13): the non-null large-sample variance.
    row_mean = weights @ cols  # w-bar_i. = sum_j p_.j w_ij
    col_mean = weights.T @ rows  # w-bar_.j = sum_i p_i. w_ij
    spread = (weights - (row_mean[:, None] + col_mean[None, :]) * (1 - value)) ** 2
    variance = float(((p * spread).sum() - (value - chance * (1 - value)) ** 2) / (n * (1 - chance) ** 2))
    return _variance_estimate(
        value,
        variance,
        n_items=n,
        confidence=confidence,
        quantile=normal_quantile(confidence),
        method="asymptotic, Fleiss-Cohen-Everitt (1969) SE",
        details=details,
    )


# ----------------------------------------------------------------------------- Fleiss' kappa and AC1


@dataclass(frozen=True)
class _MultiRater:
    """Per-pattern pieces shared by Fleiss' kappa, AC1/AC2 and their variance (Gwet 2014)."""

    patterns: _Patterns
    weights: np.ndarray
    per_item_agreement: np.ndarray  # pa_i, 0 for items with one rating
    multi: np.ndarray  # 1.0 where the item has two or more ratings
    shares: np.ndarray  # counts / ratings on the item

    @classmethod
    def of(cls, table: RatingTable, weights: np.ndarray) -> _MultiRater:
        patterns = _Patterns.of(table)
        c = patterns.counts
        r = c.sum(axis=1)
        multi = (r >= 2).astype(float)
        weighted = c @ weights.T
        with np.errstate(invalid="ignore", divide="ignore"):
            per_item = np.where(r >= 2, (c * (weighted - 1)).sum(axis=1) / (r * (r - 1)), 0.0)
        return cls(patterns, weights, per_item, multi, c / r[:, None])

    def agreement(self, freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observed agreement and category shares pi for a (B x P) stack of frequencies."""
        n = freq.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            observed = (freq @ self.per_item_agreement) / (freq @ self.multi)
            shares = (freq @ self.shares) / n[:, None]
        return observed, shares

    def fleiss_chance(self, shares: np.ndarray) -> np.ndarray:
        return np.einsum("bk,kl,bl->b", shares, self.weights, shares)

    def gwet_chance(self, shares: np.ndarray) -> np.ndarray:
        q = self.weights.shape[0]
        return self.weights.sum() / (q * (q - 1)) * (shares * (1 - shares)).sum(axis=1)

    def coefficient(self, freq: np.ndarray, chance_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        observed, shares = self.agreement(freq)
        chance = chance_of(shares)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = (observed - chance) / (1 - chance)
        value[~np.isfinite(observed) | ((1 - chance) <= _EPS)] = np.nan
        return value

    def linearised_variance(self, value: float, chance: float, per_item_chance: np.ndarray) -> float:
        """Gwet (2008) eq. 7 / Handbook (2014) sec. 5: var = sum (c*_i - c)^2 / (n (n - 1))."""
        freq = self.patterns.freq
        n, n2 = freq.sum(), freq @ self.multi
        per_item = (n / n2) * (self.per_item_agreement - chance * self.multi) / (1 - chance)
        adjusted = per_item - 2 * (1 - value) * (per_item_chance - chance) / (1 - chance)
        return float(freq @ (adjusted - value) ** 2 / (n * (n - 1))) if n > 1 else 0.0


def _multi_rater_estimate(
    table: RatingTable,
    pieces: _MultiRater,
    chance_of: Callable[[np.ndarray], np.ndarray],
    per_item_chance_of: Callable[[np.ndarray], np.ndarray],
    *,
    method: str,
    interval: str,
    resamples: int,
    seed: int,
    confidence: float,
    extra: Callable[[float], dict[str, Any]] | None = None,
) -> Estimate:
    freq = pieces.patterns.freq
    n = pieces.patterns.n
    if float(freq @ pieces.multi) == 0:
        return Estimate.not_computable(NO_MULTIPLE, n_items=n)
    observed, shares = pieces.agreement(freq[None])
    chance = float(chance_of(shares)[0])
    if 1 - chance <= _EPS:
        return Estimate.not_computable(ONE_CATEGORY, n_items=n)
    value = float((observed[0] - chance) / (1 - chance))
    details: dict[str, Any] = {"observed_agreement": float(observed[0]), "chance_agreement": chance}
    if extra is not None:
        details.update(extra(value))
    if interval == "bootstrap":
        return _bootstrap_estimate(
            value,
            lambda draws: pieces.coefficient(draws, chance_of),
            freq,
            resamples=resamples,
            seed=seed,
            confidence=confidence,
            n_items=n,
            details=details,
            clip=(-1.0, 1.0),
        )
    variance = pieces.linearised_variance(value, chance, per_item_chance_of(shares[0]))
    quantile = _t_quantile(confidence, n - 1) if n > 1 else None
    return _variance_estimate(
        value,
        variance,
        n_items=n,
        confidence=confidence,
        quantile=quantile,
        method=method,
        details=details,
    )


def fleiss_kappa(
    table: RatingTable,
    *,
    interval: Literal["asymptotic", "bootstrap"] = "asymptotic",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Estimate:
    """Fleiss' (1971) kappa for any number of raters.

    With the same number of ratings on every item this is exactly Fleiss (1971). With unequal
    numbers (missing ratings) it is Gwet's (2014) generalisation: chance agreement from the mean
    per-item category shares, observed agreement over items with two or more ratings. The
    interval uses Gwet's linearised variance (valid away from kappa = 0); ``details["se_null"]``
    is the Fleiss, Nee & Landis (1979) standard error under kappa = 0, for the usual z test,
    given when every item has the same number of ratings.
    """
    guard = _basic_guard(table)
    if guard:
        return Estimate.not_computable(guard, n_items=table.n_items)
    pieces = _MultiRater.of(table, np.eye(table.n_categories))

    def per_item_chance(shares: np.ndarray) -> np.ndarray:
        symmetric = (pieces.weights + pieces.weights.T) / 2 @ shares
        return (pieces.patterns.counts @ symmetric) / pieces.patterns.counts.sum(axis=1)

    def null_se(value: float) -> dict[str, Any]:
        r = pieces.patterns.counts.sum(axis=1)
        if r.min() != r.max() or r[0] < 2:
            return {"se_null": None}
        m, n = float(r[0]), float(pieces.patterns.n)
        p = pieces.agreement(pieces.patterns.freq[None])[1][0]
        pq = p * (1 - p)
        spread = pq.sum() ** 2 - (pq * ((1 - p) - p)).sum()
        se0 = np.sqrt(2) / (pq.sum() * np.sqrt(n * m * (m - 1))) * np.sqrt(max(spread, 0.0))
        return {"se_null": float(se0), "z_null": float(value / se0) if se0 > 0 else None}

    return _multi_rater_estimate(
        table,
        pieces,
        pieces.fleiss_chance,
        per_item_chance,
        method="asymptotic, Gwet (2008/2014) linearised variance (t, n-1 df)",
        interval=interval,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        extra=null_se,
    )


def gwet_ac1(
    table: RatingTable,
    *,
    weighting: Weighting = "none",
    interval: Literal["asymptotic", "bootstrap"] = "asymptotic",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Estimate:
    """Gwet's AC1 (or, with linear/quadratic weights, AC2) for any number of raters.

    Chance agreement is ``sum(W)/(q(q-1)) * sum_k pi_k (1 - pi_k)`` over the q *known*
    categories (declared, else observed), so AC1 stays defined when every rating falls in one
    of two or more declared categories. Interval: Gwet (2008) linearised variance, t quantile on
    n-1 degrees of freedom, as in Gwet's irrCAC.
    """
    guard = _basic_guard(table)
    if guard:
        return Estimate.not_computable(guard, n_items=table.n_items)
    if table.n_categories < 2:
        return Estimate.not_computable(FEW_CATEGORIES, n_items=table.n_items)
    guard = _order_guard(table, weighting != "none")
    if guard:
        return Estimate.not_computable(guard, n_items=table.n_items)
    q = table.n_categories
    pieces = _MultiRater.of(table, agreement_weights(q, weighting))

    def per_item_chance(shares: np.ndarray) -> np.ndarray:
        scale = pieces.weights.sum() / (q * (q - 1))
        return scale * (pieces.patterns.counts @ (1 - shares)) / pieces.patterns.counts.sum(axis=1)

    return _multi_rater_estimate(
        table,
        pieces,
        pieces.gwet_chance,
        per_item_chance,
        method="asymptotic, Gwet (2008) linearised variance (t, n-1 df)",
        interval=interval,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )


# ----------------------------------------------------------------------------- Krippendorff's alpha


def _distance(level: str, values: np.ndarray, marginals: np.ndarray) -> np.ndarray:
    """Squared difference delta^2 between categories (q x q), or (B x q x q) for ordinal."""
    if level == "nominal":
        return 1 - np.eye(len(values))
    if level == "interval":
        return np.subtract.outer(values, values) ** 2
    if level == "ratio":
        total = np.add.outer(values, values)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(total == 0, 0.0, np.subtract.outer(values, values) / total)
        return ratio**2
    # ordinal (Krippendorff 2011): (sum_{g=c..k} n_g - (n_c + n_k)/2)^2 == (mid_k - mid_c)^2
    # with mid_c = cumsum(n)_c - n_c/2, the mid-rank of category c among the pairable values.
    mid = np.cumsum(marginals, axis=-1) - marginals / 2
    return (mid[..., :, None] - mid[..., None, :]) ** 2


def krippendorff_alpha(
    table: RatingTable,
    *,
    level: Level = "nominal",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Estimate:
    """Krippendorff's alpha from the coincidence matrix (Krippendorff 2011), missing ratings allowed.

    ``alpha = 1 - (n - 1) * sum o_ck d_ck / sum n_c n_k d_ck`` over pairable values (items with
    two or more ratings). Levels: nominal, ordinal (rank metric over the declared order),
    interval (category values if numeric, else positions), ratio (numeric categories). The
    interval is a seeded percentile bootstrap over pairable items.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    guard = _basic_guard(table) or _order_guard(table, level != "nominal")
    if guard:
        return Estimate.not_computable(guard, n_items=table.n_items)
    values = table.scale_values()
    if level == "ratio" and (not all(is_number(c) for c in table.categories) or (values < 0).any()):
        return Estimate.not_computable(
            "not computable: the ratio level needs non-negative numeric categories", n_items=0
        )
    patterns = _Patterns.of(table, min_ratings=2)
    if patterns.n == 0:
        return Estimate.not_computable(NO_MULTIPLE, n_items=0)
    c = patterns.counts
    q = c.shape[1]
    r = c.sum(axis=1)
    # Each item adds (n_u n_u^T - diag(n_u)) / (m_u - 1) to the coincidence matrix.
    per_item = (c[:, :, None] * c[:, None, :] - c[:, :, None] * np.eye(q)) / (r - 1)[:, None, None]
    per_item = per_item.reshape(len(c), q * q)

    def batch(freq: np.ndarray) -> np.ndarray:
        coincidences = (freq @ per_item).reshape(-1, q, q)
        marginals = freq @ c
        total = marginals.sum(axis=1)
        delta = _distance(level, values, marginals)
        observed = (coincidences * delta).sum(axis=(1, 2))
        expected = (marginals[:, :, None] * marginals[:, None, :] * delta).sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            alpha = 1 - (total - 1) * observed / expected
        scale = total**2 * np.max(delta, axis=(-2, -1))
        alpha[expected <= _EPS * np.maximum(scale, 1.0)] = np.nan
        return alpha

    value = float(batch(patterns.freq[None])[0])
    n = patterns.n
    if not np.isfinite(value):
        return Estimate.not_computable(ONE_CATEGORY, n_items=n)
    details: dict[str, Any] = {"pairable_values": int(r @ patterns.freq)}
    return _bootstrap_estimate(
        value,
        batch,
        patterns.freq,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        n_items=n,
        details=details,
    )


# ----------------------------------------------------------------------------- one field, all of it


@dataclass(frozen=True)
class PairAgreement:
    """Cohen's kappa, unweighted and weighted, for one pair of raters."""

    raters: tuple[Hashable, Hashable]
    n_items: int
    cohen_kappa: Estimate
    cohen_kappa_linear: Estimate
    cohen_kappa_quadratic: Estimate

    def coefficients(self) -> dict[str, Estimate]:
        return {
            "cohen_kappa": self.cohen_kappa,
            "cohen_kappa_linear": self.cohen_kappa_linear,
            "cohen_kappa_quadratic": self.cohen_kappa_quadratic,
        }


@dataclass(frozen=True)
class FieldAgreement:
    """Every agreement coefficient for one rubric field."""

    n_items: int
    n_raters: int
    level: str
    percent_agreement: Estimate
    fleiss_kappa: Estimate
    krippendorff_alpha: Estimate
    gwet_ac1: Estimate
    cohen: PairAgreement | None = None
    cohen_pairs: tuple[PairAgreement, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """The published shape (see ``docs/statistics.md``): Cohen for two raters, pairs for more."""
        out: dict[str, Any] = {
            "n_items": self.n_items,
            "n_raters": self.n_raters,
            "percent_agreement": self.percent_agreement.as_dict(),
        }
        if self.cohen is not None:
            out.update({name: e.as_dict() for name, e in self.cohen.coefficients().items()})
        out["fleiss_kappa"] = self.fleiss_kappa.as_dict()
        out["krippendorff_alpha"] = self.krippendorff_alpha.as_dict()
        out["gwet_ac1"] = self.gwet_ac1.as_dict()
        if self.n_raters > 2:
            out["cohen_kappa_pairs"] = [
                {
                    "raters": [_plain(pair.raters[0]), _plain(pair.raters[1])],
                    "n_items": pair.n_items,
                    **{name: e.as_dict() for name, e in pair.coefficients().items()},
                }
                for pair in self.cohen_pairs
            ]
        return out


def _plain(identifier: Hashable) -> Any:
    return identifier if isinstance(identifier, str | int | float) else str(identifier)


def pair_agreement(
    table: RatingTable, first: Hashable, second: Hashable, *, confidence: float = 0.95
) -> PairAgreement:
    pair = (first, second)
    a, b = table.rater_ids.index(first), table.rater_ids.index(second)
    overlap = int(((table.codes[:, a] >= 0) & (table.codes[:, b] >= 0)).sum())
    kappas = {
        weighting: cohen_kappa(table, weighting=weighting, raters=pair, confidence=confidence)  # type: ignore[arg-type]
        for weighting in WEIGHTINGS
    }
    return PairAgreement(pair, overlap, kappas["none"], kappas["linear"], kappas["quadratic"])


def pair_tables(
    codes: np.ndarray,
    n_categories: int,
    groups: np.ndarray | None = None,
    cells: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Every rater pair's contingency table in one pass: ``out[g, a, b, i, j]`` counts the items of
    group ``g`` (``groups[item]``, default all in group 0; -1 leaves an item out) that rater ``a``
    put in category ``i`` and rater ``b`` in ``j``, for ``a < b`` (zero elsewhere). Equal, pair by
    pair, to ``RatingTable.pair``: the cost is one pass over the rated cells, not one over all items
    per pair. ``cells``: ``np.nonzero(codes >= 0)`` when known (``RatingTable.rated_cells``)."""
    n_items, n_raters = codes.shape
    q = n_categories
    if groups is None:
        groups = np.zeros(n_items, dtype=np.int64)
        n_groups = 1  # one group, items or none
    else:
        n_groups = int(groups.max()) + 1 if len(groups) and groups.max() >= 0 else 0
    out_shape = (n_groups, n_raters, n_raters, q, q)
    if cells is not None and (groups >= 0).all():
        rows, cols = cells
    else:
        rows, cols = np.nonzero((codes >= 0) & (groups >= 0)[:, None])  # row-major: by item, then rater
    if len(rows) == 0 or n_groups == 0:
        return np.zeros(out_shape, dtype=np.int64)
    values = codes[rows, cols].astype(np.int64)
    per_item = np.bincount(rows, minlength=n_items)
    start = np.concatenate([[0], np.cumsum(per_item)[:-1]])
    keys = []
    cell_group = groups[rows].astype(np.int64)
    for offset in range(1, int(per_item.max())):
        # Cell c and cell c + offset of the same item: rater cols[c] < cols[c + offset].
        first = np.flatnonzero(np.arange(len(rows)) + offset < (start + per_item)[rows])
        second = first + offset
        pair = cols[first].astype(np.int64) * n_raters + cols[second]
        keys.append(
            ((cell_group[first] * n_raters * n_raters + pair) * q + values[first]) * q + values[second]
        )
    flat = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    size = n_groups * n_raters * n_raters * q * q
    return np.bincount(flat, minlength=size).reshape(out_shape)


def pair_agreements(
    table: RatingTable,
    pairs: list[tuple[int, int]],
    *,
    confidence: float = 0.95,
    tables: np.ndarray | None = None,
) -> list[PairAgreement]:
    """``pair_agreement`` for many pairs of rater columns ``(a, b)`` from one pass
    (``pair_tables``; or ``tables``, its result for this table's items, given)."""
    if tables is None:
        tables = pair_tables(table.codes, table.n_categories, cells=table.rated_cells)[0] if pairs else None
    q = table.n_categories
    found = []
    for a, b in pairs:
        if a == b:
            raise ValueError("Cohen's kappa needs two different raters.")
        if tables is None:
            counts = np.zeros((q, q), dtype=np.int64)
        else:  # ``pair_tables`` fills [low, high]; the pair the other way round is its transpose
            counts = tables[a, b] if a < b else tables[b, a].T
        kappas = {}
        for weighting in WEIGHTINGS:
            guard = _order_guard(table, weighting != "none")
            kappas[weighting] = (
                Estimate.not_computable(guard, n_items=0)
                if guard
                else cohen_kappa_of_counts(counts, agreement_weights(q, weighting), confidence=confidence)
            )
        pair = (table.rater_ids[a], table.rater_ids[b])
        found.append(
            PairAgreement(pair, int(counts.sum()), kappas["none"], kappas["linear"], kappas["quadratic"])
        )
    return found


def field_agreement(
    table: RatingTable,
    *,
    level: Level = "nominal",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
    pairs: bool = True,
) -> FieldAgreement:
    """All coefficients for one field: what the ``agreement`` command prints. With ``pairs=False``
    the kappas of every annotator pair are left out when there are more than two annotators (a
    page that shows the pair matrix separately does not need them per slice)."""
    columns = np.flatnonzero(table.raters_with_ratings).tolist()
    raters = [table.rater_ids[k] for k in columns]
    # Pairs that share no item have no kappa: with many annotators and k = 3 most pairs share
    # nothing, so only the overlapping pairs are computed (all pairs' tables are one pass).
    wanted: list[tuple[int, int]] = []
    tables = None
    if len(raters) == 2 or pairs:
        tables = (
            pair_tables(table.codes, table.n_categories, cells=table.rated_cells)[0]
            if len(raters) >= 2
            else None
        )
        shared = tables.sum(axis=(2, 3)) if tables is not None else None
        wanted = [
            (columns[i], columns[j])
            for i in range(len(raters))
            for j in range(i + 1, len(raters))
            if len(raters) == 2 or (shared is not None and shared[columns[i], columns[j]] > 0)
        ]
    computed = tuple(pair_agreements(table, wanted, confidence=confidence, tables=tables) if wanted else ())
    return FieldAgreement(
        n_items=table.n_items,
        n_raters=len(raters),
        level=level,
        percent_agreement=percent_agreement(table, confidence=confidence),
        fleiss_kappa=fleiss_kappa(table, confidence=confidence),
        krippendorff_alpha=krippendorff_alpha(
            table, level=level, resamples=resamples, seed=seed, confidence=confidence
        ),
        gwet_ac1=gwet_ac1(table, confidence=confidence),
        cohen=computed[0] if len(raters) == 2 else None,
        cohen_pairs=computed if len(raters) > 2 else (),
    )
