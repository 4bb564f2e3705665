"""Output serializers of the scores API, over the same figure objects the pages show
(``scoring.figures``): the API never assembles a figure by hand beside a page that computes it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from medharm_stats import Estimate
from scoring.drill_exports import agreement_row_record, score_row_record
from scoring.figures.agreement import AgreementRow
from scoring.figures.drilldowns import DrillRow
from scoring.figures.gold import AnnotatorGold, DriftSeries


def estimate_dict(estimate: Estimate | None) -> dict[str, Any] | None:
    """The published shape ``{"value", "ci_low", "ci_high"}`` or ``{"value": null, "reason"}``,
    with the reason an interval is missing when there is a value but no interval."""
    if estimate is None:
        return None
    out = estimate.as_dict()
    if estimate.value is not None and estimate.ci_low is None and estimate.ci_reason:
        out["ci_reason"] = estimate.ci_reason
    return out


class AgreementSliceSerializer(serializers.BaseSerializer):
    def to_representation(self, row: AgreementRow) -> dict[str, Any]:
        return {
            "kind": row.kind,
            "key": row.key,
            "label": row.label,
            "n_labels": row.n_labels,
            **row.result.as_dict(),
        }


class AnnotatorGoldSerializer(serializers.BaseSerializer):
    def to_representation(self, row: AnnotatorGold) -> dict[str, Any]:
        return {
            "annotator": row.name,
            "gold_items": row.n_items,
            "agreements": row.agreements,
            "percent_agreement": estimate_dict(row.percent),
            "cohen_kappa": estimate_dict(row.kappa),
            "flagged": row.flagged,
            "flag_note": row.flag_reason,
        }


class DriftSeriesSerializer(serializers.BaseSerializer):
    def to_representation(self, series: DriftSeries) -> dict[str, Any]:
        return {
            "annotator": series.name,
            "points": [{"window": p.key, "agreements": p.agreements, "n": p.n} for p in series.points],
        }


class ScoreRowSerializer(serializers.BaseSerializer):
    """One response behind a score figure: the same record the CSV and JSONL exports write."""

    def to_representation(self, row: DrillRow) -> dict[str, Any]:
        return score_row_record(row)


class AgreementItemSerializer(serializers.BaseSerializer):
    """One item behind an agreement figure (the model only for roles that may unblind)."""

    def to_representation(self, row: dict[str, Any]) -> dict[str, Any]:
        return agreement_row_record(row, shows_models=bool(self.context.get("shows_models")))
