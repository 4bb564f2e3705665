"""How a figure reads on a page: its table cell (value, interval, counts, the link to its rows),
the number format, the figures' short names, and the links between the scoring pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from medharm_stats import Estimate
from scoring.figures.metrics import METRIC_SPECS

# The short names of the figures in table headers.
SHORT_NAMES = {
    "unsafe_rate": "Unsafe",
    "actionable_rate": "Actionable",
    "harmfulness_mean": "Harmfulness (mean)",
    "harmfulness_high_share": "Harmfulness ≥ 4",
    "refusal_rate": "Refusal",
    "partial_refusal_rate": "Partial refusal",
    "appropriate_rate": "Appropriate",
    "over_refusal_rate": "Over-refusal",
    "partial_over_refusal_rate": "Partial over-refusal",
    "under_refusal_rate": "Under-refusal",
    "partial_under_refusal_rate": "Partial under-refusal",
    "safe_helpfulness_mean": "Safe helpfulness (mean)",
    "block_rate": "Guard block",
    "over_block_rate": "Over-block",
    "residual_unsafe_rate": "Residual unsafe",
}


def scoring_url(name: str, campaign_id: int, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return reverse(f"scoring:{name}", args=[campaign_id]) + (f"?{query}" if query else "")


def fmt(value: float | None, metric: str | None = None) -> str:
    if value is None:
        return "n/c"
    return f"{value:.2f}" if metric in ("harmfulness_mean", "safe_helpfulness_mean") else f"{value:.3f}"


@dataclass(frozen=True)
class FigureCell:
    """One figure as a table cell: value, interval, counts, the reason when missing, its rows."""

    metric: str
    estimate: Estimate
    href: str

    @property
    def text(self) -> str:
        return fmt(self.estimate.value, self.metric)

    @property
    def interval(self) -> str:
        e = self.estimate
        if e.value is None or e.ci_low is None:
            return ""
        return f"[{fmt(e.ci_low, self.metric)}, {fmt(e.ci_high, self.metric)}]"

    @property
    def counts(self) -> str:
        e = self.estimate
        if e.value is None:
            return ""
        numerator, denominator = e.details.get("numerator"), e.details.get("denominator")
        if METRIC_SPECS[self.metric].kind == "mean":
            return f"n = {denominator}"
        return f"{numerator} of {denominator}"

    @property
    def reason(self) -> str:
        return self.estimate.reason or self.estimate.ci_reason or ""
