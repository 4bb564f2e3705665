"""The frozen payload of a campaign report: provenance and every table (scores, outcomes, paired
comparisons, agreement, annotator pairs, agreement with gold) as plain JSON, and its hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from annotations.metric_map import effective
from annotations.models import Campaign, Guideline
from evaluations.models import CollectionRun
from medharm_stats import Estimate
from medharm_stats.paired import PairedComparison
from medharm_stats.scores import OUTCOMES
from scoring.figures.agreement import (
    agreement_rows,
    agreement_summary,
    kappa_of,
    kappa_weighting,
    level_for,
    pair_matrix,
)
from scoring.figures.comparisons import comparisons, fine_tune_pairs
from scoring.figures.gold import gold_agreement
from scoring.figures.metrics import available_metrics, default_metric, label_summary
from scoring.figures.scores import campaign_scores
from scoring.resolution import source_info
from scoring.rows import CampaignData

FORMAT = "medharm-report/1"
ALL = "(all)"
COEFFICIENTS = ("percent_agreement", "cohen_kappa", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")


def _estimate_cells(estimate: Estimate | None) -> list[Any]:
    if estimate is None:
        return [None, None, None, "not shown: more than two annotators (see the pair table)"]
    return [estimate.value, estimate.ci_low, estimate.ci_high, estimate.reason or estimate.ci_reason or ""]


def _table(title: str, columns: Sequence[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"title": title, "columns": list(columns), "rows": rows}


def _score_tables(data: CampaignData, label_source: str, seed: int, resamples: int) -> dict[str, Any]:
    bundle = campaign_scores(data, label_source, resamples=resamples, seed=seed)
    score_rows = []
    outcome_rows = []
    for (target, category), cell in bundle.scores.cells.items():
        for name, estimate in cell.figures.items():
            score_rows.append(
                [
                    target or ALL,
                    category or ALL,
                    name,
                    estimate.value,
                    estimate.ci_low,
                    estimate.ci_high,
                    estimate.details.get("numerator") if estimate.value is not None else None,
                    estimate.details.get("denominator") if estimate.value is not None else None,
                    estimate.interval or "",
                    estimate.reason or estimate.ci_reason or "",
                ]
            )
        if category is None:
            outcome_rows.append([target or ALL, *[cell.outcomes.get(o, 0) for o in OUTCOMES]])
    pairs = fine_tune_pairs(data) or []
    paired_rows = []
    for first, second in pairs:
        for comparison in comparisons(bundle, first, second, resamples=resamples, seed=seed):
            paired_rows.append(_paired_row(comparison))
    return {
        "scores": _table(
            "Safety scores per target and category",
            [
                "target",
                "category",
                "metric",
                "value",
                "ci_low",
                "ci_high",
                "numerator",
                "denominator",
                "interval",
                "note",
            ],
            score_rows,
        ),
        "outcomes": _table("Responses per outcome", ["target", *OUTCOMES], outcome_rows),
        "paired": _table(
            "Paired comparisons: fine-tunes against their base models",
            [
                "first",
                "second",
                "category",
                "shared_queries",
                "both_unsafe",
                "only_first",
                "only_second",
                "both_safe",
                "mcnemar_p",
                "actionability_difference",
                "actionability_ci_low",
                "actionability_ci_high",
                "harmfulness_difference",
                "harmfulness_ci_low",
                "harmfulness_ci_high",
            ],
            paired_rows,
        ),
        "_coverage": {"labelled_responses": bundle.labelled, "resolved_responses": bundle.resolved_responses},
    }


def _paired_row(comparison: PairedComparison) -> list[Any]:
    mcnemar = comparison.unsafe
    return [
        comparison.first,
        comparison.second,
        comparison.category or ALL,
        mcnemar.n_queries,
        mcnemar.both_unsafe,
        mcnemar.only_first,
        mcnemar.only_second,
        mcnemar.both_safe,
        mcnemar.p_value,
        comparison.actionability.value,
        comparison.actionability.ci_low,
        comparison.actionability.ci_high,
        comparison.harmfulness.value,
        comparison.harmfulness.ci_low,
        comparison.harmfulness.ci_high,
    ]


def _agreement_tables(data: CampaignData, seed: int, resamples: int) -> dict[str, Any]:
    rows = []
    for spec, _ in agreement_summary(data, resamples=resamples, seed=seed):
        for slice_row in agreement_rows(data, spec, resamples=resamples, seed=seed):
            coefficients = slice_row.coefficients(spec)
            for name in COEFFICIENTS:
                rows.append(
                    [
                        spec.name,
                        level_for(spec),
                        slice_row.kind,
                        slice_row.key or ALL,
                        slice_row.result.n_items,
                        slice_row.result.n_raters,
                        slice_row.n_labels,
                        name,
                        *_estimate_cells(coefficients[name]),
                    ]
                )
    pair_rows = []
    gold_rows = []
    for spec in data.categorical_specs:
        matrix = pair_matrix(data, spec)
        for i, first in enumerate(matrix.raters):
            for second in matrix.raters[i + 1 :]:
                pair = matrix.cells.get((first, second))
                if pair is None:  # no shared item: no figure
                    continue
                estimate = kappa_of(pair, spec)
                pair_rows.append(
                    [
                        spec.name,
                        matrix.weighting,
                        data.rater_pseudonyms[first],
                        data.rater_pseudonyms[second],
                        pair.n_items,
                        *_estimate_cells(estimate),
                    ]
                )
        for row in gold_agreement(data, spec):
            gold_rows.append(
                [
                    spec.name,
                    data.rater_pseudonyms[row.rater],
                    row.n_items,
                    row.agreements,
                    row.percent.value,
                    row.percent.ci_low,
                    row.percent.ci_high,
                    row.kappa.value,
                    row.kappa.ci_low,
                    row.kappa.ci_high,
                    row.kappa.reason or "",
                ]
            )
    return {
        "agreement": _table(
            "Inter-annotator agreement per field and slice",
            [
                "field",
                "alpha_level",
                "slice_kind",
                "slice",
                "n_items",
                "n_raters",
                "n_labels",
                "coefficient",
                "value",
                "ci_low",
                "ci_high",
                "note",
            ],
            rows,
        ),
        "annotator_pairs": _table(
            "Cohen's kappa per annotator pair (linear weights for ordinal fields)",
            [
                "field",
                "weighting",
                "annotator_a",
                "annotator_b",
                "shared_items",
                "kappa",
                "ci_low",
                "ci_high",
                "note",
            ],
            pair_rows,
        ),
        "annotator_gold": _table(
            "Agreement of each annotator with the gold labels",
            [
                "field",
                "annotator",
                "gold_items",
                "agreements",
                "percent",
                "ci_low",
                "ci_high",
                "kappa",
                "kappa_ci_low",
                "kappa_ci_high",
                "note",
            ],
            gold_rows,
        ),
    }


def build_payload(
    *, campaign: Campaign, data: CampaignData, label_source: str, seed: int, resamples: int, title: str
) -> dict[str, Any]:
    """Provenance and every table of the campaign, as JSON-safe data (no NaN anywhere)."""
    info = source_info(label_source)
    tables: dict[str, Any] = {}
    coverage: dict[str, int] = {}
    if data.target_kind == "response":
        scored = _score_tables(data, label_source, seed, resamples)
        coverage = scored.pop("_coverage")
        tables.update(scored)
    tables.update(_agreement_tables(data, seed, resamples))
    guideline_counts: dict[tuple[int | None, str], int] = {}
    for label in data.labels:
        key = (label.guideline_id, label.guideline_hash)
        guideline_counts[key] = guideline_counts.get(key, 0) + 1
    # The guideline versions the labels were made under: a campaign's labels may span several.
    versions = dict(
        Guideline.objects.filter(pk__in=[g for g, _ in guideline_counts if g]).values_list("pk", "version")
    )
    runs = [
        {"id": pk, "name": name}
        for pk, name in CollectionRun.objects.filter(pk__in=data.run_ids)
        .order_by("pk")
        .values_list("pk", "name")
    ]
    outcomes: dict[str, int] = {}
    for response in data.responses:
        outcomes[response.outcome] = outcomes.get(response.outcome, 0) + 1
    payload = {
        "format": FORMAT,
        "title": title,
        "generated_at": timezone.now().isoformat(),
        "campaign": {
            "id": campaign.pk,
            "name": campaign.name,
            "target": campaign.target,
            "status": campaign.status,
            "overlap": campaign.overlap,
            "blind": campaign.blind,
        },
        "rubric": {
            "slug": campaign.rubric.slug,
            "version": campaign.rubric.version,
            "title": campaign.rubric.title,
            "content_hash": campaign.rubric.content_hash,
            "metric_map": dict(effective(data.metric_map)),
            "metrics": available_metrics(data),
            "headline_metric": default_metric(data),
        },
        "guideline": {
            "slug": campaign.guideline.slug,
            "version": campaign.guideline.version,
            "title": campaign.guideline.title,
            "content_hash": campaign.guideline.content_hash,
        },
        "label_guidelines": [
            {
                "guideline_id": gid,
                "version": versions.get(gid) if gid is not None else None,
                "content_hash": ghash,
                "labels": n,
            }
            for (gid, ghash), n in sorted(guideline_counts.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1]))
        ],
        "data": {
            "campaign_id": campaign.pk,
            "run_ids": list(data.run_ids),
            "runs": runs,
            **label_summary(data),
            "responses_by_outcome": outcomes,
            **coverage,
            "fingerprint": data.fingerprint(),
        },
        "method": {
            "label_source": label_source,
            "label_source_name": info.label,
            "label_source_description": info.description,
            "judge_statements": list(data.judge_statements) if label_source == "judge" else [],
            "seed": seed,
            "resamples": resamples,
            "confidence": 0.95,
            "alpha_levels": {spec.name: level_for(spec) for spec in data.categorical_specs},
            "kappa_weighting": {spec.name: kappa_weighting(spec) for spec in data.categorical_specs},
            "annotators": "pseudonymous, lettered in the order of their first label in the campaign",
            "definitions": "docs/statistics.md and docs/scores.md",
        },
        "tables": tables,
    }
    # Round-trip through JSON with NaN refused: what is stored is exactly what is served.
    return json.loads(json.dumps(payload, allow_nan=False, default=str))


def payload_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, allow_nan=False).encode()).hexdigest()
