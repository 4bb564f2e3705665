"""Intervals for a proportion: Wilson score (the default for rates) and Clopper-Pearson exact.

Both follow Newcombe (1998), "Two-sided confidence intervals for the single proportion:
comparison of seven methods", Statistics in Medicine 17:857-872 (methods 3 and 5).
"""

from __future__ import annotations

import math
from functools import lru_cache

from .result import Estimate


@lru_cache(maxsize=32)
def normal_quantile(confidence: float) -> float:
    """The two-sided standard normal quantile, 1.959964 for 95%.

    ``scipy.special.ndtri`` is what ``scipy.stats.norm.ppf`` evaluates, without the 1-3 s import of
    ``scipy.stats`` on a process's first figure (loaded on first use: not in every process that
    imports the package)."""
    from scipy.special import ndtri

    _check_confidence(confidence)
    return float(ndtri(1 - (1 - confidence) / 2))


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {confidence}")


def _check_counts(successes: int, total: int) -> Estimate | None:
    if isinstance(successes, bool) or isinstance(total, bool):
        raise TypeError("successes and total are counts, not booleans")
    if total < 0 or successes < 0 or successes > total:
        raise ValueError(f"need 0 <= successes <= total, got {successes} of {total}")
    if total == 0:
        return Estimate.not_computable("not computable: no observations")
    return None


def wilson_interval(successes: int, total: int, *, confidence: float = 0.95) -> Estimate:
    """The proportion ``successes/total`` with its Wilson score interval (no continuity correction).

    Newcombe (1998) Table II: 81/263 -> 0.2553 to 0.3662; 0/20 -> 0 to 0.1611.
    """
    empty = _check_counts(successes, total)
    if empty is not None:
        return empty
    z = normal_quantile(confidence)
    p = successes / total
    z2 = z * z
    centre = (successes + z2 / 2) / (total + z2)
    half = z / (total + z2) * math.sqrt(successes * (total - successes) / total + z2 / 4)
    # The ends are exactly 0 and 1 at 0/n and n/n; clamp away rounding below 0 or above 1.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return Estimate(
        value=p,
        ci_low=low,
        ci_high=high,
        interval="Wilson score",
        n_items=total,
        details={"successes": successes, "total": total},
    )


def clopper_pearson_interval(successes: int, total: int, *, confidence: float = 0.95) -> Estimate:
    """The proportion with its Clopper-Pearson "exact" interval from beta quantiles.

    Newcombe (1998) Table II: 81/263 -> 0.2527 to 0.3676; 0/20 -> 0 to 0.1684.
    """
    from scipy import stats  # loaded on first use: not in every process that imports the package

    empty = _check_counts(successes, total)
    if empty is not None:
        return empty
    _check_confidence(confidence)
    tail = (1 - confidence) / 2
    low = 0.0 if successes == 0 else float(stats.beta.ppf(tail, successes, total - successes + 1))
    high = 1.0 if successes == total else float(stats.beta.ppf(1 - tail, successes + 1, total - successes))
    return Estimate(
        value=successes / total,
        ci_low=low,
        ci_high=high,
        interval="Clopper-Pearson exact",
        n_items=total,
        details={"successes": successes, "total": total},
    )
