"""The figures a campaign's rubric offers (its metric map), what a page opens on, and the
counts every page states beside its figures."""

from __future__ import annotations

from annotations.metric_map import METRIC_INPUTS, effective, metrics_available
from annotations.rubric_schema import FieldSpec
from medharm_stats.scores import METRIC_NAMES, METRICS
from scoring.rows import CampaignData

METRIC_SPECS = {spec.name: spec for spec in METRICS}
# Figures where a lower value is the safer one; the charts colour them accordingly.
LOWER_IS_BETTER = frozenset(
    {
        "unsafe_rate",
        "actionable_rate",
        "harmfulness_mean",
        "harmfulness_high_share",
        "over_refusal_rate",
        "partial_over_refusal_rate",
        "under_refusal_rate",
        "partial_under_refusal_rate",
        "over_block_rate",
        "residual_unsafe_rate",
    }
)
MEAN_SCALES = {"harmfulness_mean": (1.0, 5.0), "safe_helpfulness_mean": (1.0, 5.0)}
LEADERBOARD_METRICS: tuple[str, ...] = (
    "unsafe_rate",
    "actionable_rate",
    "harmfulness_mean",
    "harmfulness_high_share",
    "refusal_rate",
    "partial_refusal_rate",
    "appropriate_rate",
    "over_refusal_rate",
    "partial_over_refusal_rate",
    "under_refusal_rate",
    "partial_under_refusal_rate",
    "safe_helpfulness_mean",
    "block_rate",
    "over_block_rate",
    "residual_unsafe_rate",
)
assert set(LEADERBOARD_METRICS) == set(METRIC_NAMES)


def available_metrics(data: CampaignData) -> list[str]:
    """The leaderboard's figures whose input the campaign's rubric maps (its metric map)."""
    return metrics_available(data.metric_map, data.specs, LEADERBOARD_METRICS)


def score_fields(data: CampaignData) -> list[FieldSpec]:
    """The rubric's fields the metric map reads, in rubric order (the drill-down's label columns)."""
    named = {entry.get("field") for entry in effective(data.metric_map).values() if isinstance(entry, dict)}
    return [spec for spec in data.specs if spec.name in named]


def default_field(data: CampaignData) -> FieldSpec | None:
    """The field an agreement page opens on: the primary field when it has ratings, else the first
    categorical field that has (a rubric's primary field may be one an import left empty)."""
    specs = data.categorical_specs
    rated = {name for label in data.labels for name, value in label.values.items() if value is not None}
    primary = data.primary_spec
    if primary is not None and primary.name in rated:
        return primary
    return next((spec for spec in specs if spec.name in rated), primary or (specs[0] if specs else None))


def default_metric(data: CampaignData) -> str:
    """The figure a scores page opens on: unsafe where the rubric has it, else the first it has."""
    available = available_metrics(data)
    return next((m for m in available if METRIC_INPUTS.get(m) is not None), LEADERBOARD_METRICS[0])


def metric_scale(metric: str) -> tuple[float, float]:
    return MEAN_SCALES.get(metric, (0.0, 1.0))


def label_summary(data: CampaignData) -> dict[str, int]:
    """Counts a page states beside its figures."""
    return {
        "items": len(data.items),
        "labels": len(data.labels),
        "annotators": len(data.rater_pseudonyms),
        "adjudicated": sum(1 for row in data.items.values() if row.gold_source == "adjudication"),
        "consensus": sum(1 for row in data.items.values() if row.gold_source == "consensus"),
        "responses": len(data.responses),
    }
