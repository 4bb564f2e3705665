"""The scores API's serializers: output serializers over the same figure objects the pages show
(``scoring.figures``), so the API never assembles a figure by hand beside a page that computes it;
the input serializers of its writes; and the campaign and report listings."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from annotations.models import Campaign
from medharm_stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Estimate
from medharm_stats.paired import PairedComparison
from scoring.drill_exports import agreement_row_record, score_row_record
from scoring.figures.agreement import AgreementRow, PairMatrix, kappa_of
from scoring.figures.drilldowns import DrillRow
from scoring.figures.gold import AnnotatorGold, DriftSeries
from scoring.figures.scores import ScoreBundle
from scoring.models import Report, ThresholdStatistic
from scoring.resolution import SOURCES
from scoring.services import MAX_RESAMPLES


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
            **OwnGoldSerializer(row).data,
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


# --- figures ----------------------------------------------------------------------------------------


class ScoreBundleSerializer(serializers.BaseSerializer):
    """Every figure of every model x category cell under one label source, with how many labelled
    responses the source resolves (what the score pages state as their coverage)."""

    def to_representation(self, bundle: ScoreBundle) -> dict[str, Any]:
        return {
            "label_source": bundle.source,
            "coverage": {
                "labelled_responses": bundle.labelled,
                "resolved_responses": bundle.resolved_responses,
            },
            **bundle.scores.as_dict(),
        }


class PairedComparisonSerializer(serializers.BaseSerializer):
    """One paired comparison of two models (overall or in one category), as the compare page's row."""

    def to_representation(self, comparison: PairedComparison) -> dict[str, Any]:
        return comparison.as_dict()


class PairMatrixSerializer(serializers.BaseSerializer):
    """The annotator pairs of a field that share items, each pair once: the cells of the pair matrix
    the agreement page draws (``context["spec"]`` is the field, for the kappa's weights)."""

    def to_representation(self, matrix: PairMatrix) -> list[dict[str, Any]]:
        spec = self.context["spec"]
        return [
            {
                "annotators": [matrix.names[i], matrix.names[j]],
                "shared_items": matrix.cells[(a, b)].n_items,
                "kappa": estimate_dict(kappa_of(matrix.cells[(a, b)], spec)),
            }
            for i, a in enumerate(matrix.raters)
            for j, b in enumerate(matrix.raters)
            if i < j and (a, b) in matrix.cells
        ]


class OwnGoldSerializer(serializers.BaseSerializer):
    """An annotator's agreement with gold on one field, without their name or flag: what a clinician
    sees of their own figures."""

    def to_representation(self, row: AnnotatorGold) -> dict[str, Any]:
        return {
            "gold_items": row.n_items,
            "agreements": row.agreements,
            "percent_agreement": estimate_dict(row.percent),
            "cohen_kappa": estimate_dict(row.kappa),
        }


# --- writes and listings ----------------------------------------------------------------------------


class ThresholdSerializer(serializers.Serializer):
    field_name = serializers.CharField(required=False, allow_blank=True, default="")  # type: ignore[assignment]  # a declared field: DRF's metaclass moves it off the class
    statistic = serializers.ChoiceField(
        choices=ThresholdStatistic.choices, default=ThresholdStatistic.PERCENT
    )
    minimum = serializers.FloatField(min_value=-1.0, max_value=1.0)
    min_items = serializers.IntegerField(min_value=1, default=10)


class ReportCreateSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    label_source = serializers.ChoiceField(choices=[s.value for s in SOURCES], default="gold")
    seed = serializers.IntegerField(min_value=0, max_value=2**63 - 1, default=DEFAULT_SEED)
    resamples = serializers.IntegerField(min_value=1, max_value=MAX_RESAMPLES, default=DEFAULT_RESAMPLES)


class ScoreCampaignSerializer(serializers.ModelSerializer):
    rubric = serializers.SerializerMethodField()
    # Plain strings: the annotation API documents these choices already (one enum per name).
    status = serializers.CharField(read_only=True)
    target = serializers.CharField(read_only=True)

    class Meta:
        model = Campaign
        fields = ["id", "name", "target", "status", "rubric"]

    def get_rubric(self, campaign: Campaign) -> str:
        return f"{campaign.rubric.slug} v{campaign.rubric.version}"


class ReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = Report
        fields = [
            "id",
            "campaign",
            "title",
            "label_source",
            "seed",
            "resamples",
            "data_fingerprint",
            "content_hash",
            "created_at",
        ]


class ReportDetailSerializer(ReportSerializer):
    class Meta(ReportSerializer.Meta):
        fields = [*ReportSerializer.Meta.fields, "payload"]
