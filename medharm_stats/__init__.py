"""Agreement and interval statistics in plain numpy/scipy: no Django import anywhere in this package.

Public surface: ``RatingTable`` (the ratings of one field), the coefficient functions in
``agreement`` (each returns an ``Estimate``: a value with its interval, or no value and the
reason), ``field_agreement`` (all of them at once) and the proportion intervals. Methods and edge
cases: ``docs/statistics.md``.
"""

from .agreement import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    LEVELS,
    WEIGHTINGS,
    FieldAgreement,
    PairAgreement,
    agreement_weights,
    cohen_kappa,
    field_agreement,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    pair_agreement,
    percent_agreement,
)
from .proportions import clopper_pearson_interval, wilson_interval
from .ratings import MISSING, RatingsError, RatingTable
from .result import Estimate

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "LEVELS",
    "MISSING",
    "WEIGHTINGS",
    "Estimate",
    "FieldAgreement",
    "PairAgreement",
    "RatingTable",
    "RatingsError",
    "agreement_weights",
    "clopper_pearson_interval",
    "cohen_kappa",
    "field_agreement",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "pair_agreement",
    "percent_agreement",
    "wilson_interval",
]
