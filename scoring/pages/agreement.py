"""The agreement pages: the coefficients per field and slice, the annotator pair matrix,
agreement with gold and its drift, and a clinician's own figures."""

from __future__ import annotations

from typing import Any

from annotations.rubric_schema import FieldSpec
from scoring import charts
from scoring.figures.agreement import (
    AgreementRow,
    agreement_rows,
    agreement_summary,
    kappa_of,
    level_for,
    pair_matrix,
)
from scoring.figures.gold import Threshold, drift, gold_agreement, gold_section
from scoring.pages.cells import fmt, scoring_url
from scoring.rows import CampaignData

COEFFICIENT_COLUMNS = (
    ("percent_agreement", "Percent agreement"),
    ("cohen_kappa", "Cohen's κ"),
    ("fleiss_kappa", "Fleiss' κ"),
    ("krippendorff_alpha", "Krippendorff's α"),  # noqa: RUF001 - typographic on purpose
    ("gwet_ac1", "Gwet's AC1"),
)


def _coefficient_cells(row: AgreementRow, spec: FieldSpec) -> list[dict[str, str]]:
    cells = []
    for name, _ in COEFFICIENT_COLUMNS:
        estimate = row.coefficients(spec)[name]
        if estimate is None:
            cells.append(
                {"text": "pairs", "interval": "", "reason": "More than two annotators: see the pair matrix."}
            )
            continue
        interval = ""
        if estimate.value is not None and estimate.ci_low is not None:
            interval = f"[{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]"
        cells.append(
            {
                "text": fmt(estimate.value),
                "interval": interval,
                "reason": estimate.reason or estimate.ci_reason or "",
            }
        )
    return cells


def agreement_page(
    data: CampaignData,
    spec: FieldSpec,
    *,
    model: str | None,
    category: str | None = None,
    by: str,
    window: int,
    threshold: Threshold | None,
    threshold_field: str,
    seed: int,
    drill: bool = True,
) -> dict[str, Any]:
    """``drill``: the caller may list one model's items (``scoring.view_identity_rows``); without
    it, a slice of one model links nowhere. Agreement with gold honours ``model`` and ``category``."""
    cid = data.campaign_id
    field_summary = [
        {
            "spec": s,
            "row": row,
            "cells": _coefficient_cells(row, s),
            "href": scoring_url("agreement", cid, field=s.name),
        }
        for s, row in agreement_summary(data, seed=seed, pairs=False)
    ]
    slices = []
    for row in agreement_rows(data, spec, model=model, seed=seed, pairs=False):
        params: dict[str, Any] = {"field": spec.name, "model": model}
        if row.kind == "category":
            params["category"] = row.key
        elif row.kind == "model":
            params["model"] = row.key
        slices.append(
            {
                "row": row,
                "cells": _coefficient_cells(row, spec),
                "href": scoring_url("agreement_rows", cid, **params) if drill or not params["model"] else "",
                "model_href": scoring_url("agreement", cid, field=spec.name, model=row.key)
                if row.kind == "model"
                else "",
            }
        )

    matrix = pair_matrix(data, spec)
    cells = {}
    for i, first in enumerate(matrix.raters):
        for j, second in enumerate(matrix.raters):
            pair = matrix.cells.get((first, second))
            if i == j or pair is None:
                continue
            estimate = kappa_of(pair, spec)
            names = f"{matrix.names[i]} and {matrix.names[j]}"
            if estimate.value is None:
                title = f"{names}: {estimate.reason} ({pair.n_items} shared items)"
            else:
                ci = (
                    f" [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]" if estimate.ci_low is not None else ""
                )
                title = f"{names}: κ = {estimate.value:.3f}{ci}, {pair.n_items} shared items"
            a, b = sorted((i, j))
            cells[(i, j)] = charts.Cell(
                estimate.value,
                f"{estimate.value:.2f}" if estimate.value is not None else "–",  # noqa: RUF001 - typographic on purpose
                scoring_url("agreement_rows", cid, field=spec.name, a=a, b=b),
                title,
            )
    weights = " (linear weights)" if matrix.weighting == "linear" else ""
    pair_chart = (
        charts.heatmap(
            matrix.names,
            matrix.names,
            cells,
            title=f"Cohen's kappa{weights} per annotator pair: {spec.label}",
            scale=(0.0, 1.0),
            lower_is_better=False,
            cell_width=70,
            column_label_height=90,
            row_label_width=160,
            chart_id="pair-heatmap",
        )
        if len(matrix.raters) >= 2
        else ""
    )

    gold_spec, gold_rows = gold_section(
        data, spec, threshold, threshold_field, model=model, category=category
    )
    index_of = {rater: k for k, rater in enumerate(data.rater_pseudonyms)}
    gold = [
        {
            "row": row,
            "href": scoring_url(
                "agreement_rows",
                cid,
                field=gold_spec.name,
                annotator=index_of[row.rater],
                model=model if drill else None,
                category=category,
            ),
        }
        for row in gold_rows
    ]
    keys, series = drift(data, spec, by=by, window=window)
    lines = [
        charts.Series(
            s.name,
            [
                charts.Point(
                    p.key,
                    p.share,
                    p.n,
                    scoring_url(
                        "agreement_rows",
                        cid,
                        field=spec.name,
                        annotator=index_of[s.rater],
                        window=p.key,
                        by=by,
                    ),
                )
                for p in s.points
            ],
        )
        for s in series
        if s.points
    ]
    drift_chart = (
        charts.line_chart(
            keys,
            lines,
            title=f"Agreement with gold over time: {spec.label}",
            y_label="share agreeing with gold",
            chart_id="drift",
        )
        if keys
        else ""
    )
    return {
        "spec": spec,
        "level": level_for(spec),
        "field_summary": field_summary,
        "slices": slices,
        "model": model,
        "pair_chart": pair_chart,
        "pair_weighting": matrix.weighting,
        "gold": gold,
        "gold_spec": gold_spec,
        "drift_chart": drift_chart,
        "drift_by": by,
        "drift_window": window,
        "flagged": [row for row in gold_rows if row.flagged],
        "columns": COEFFICIENT_COLUMNS,
    }


def own_agreement(data: CampaignData, rater: str, *, by: str, window: int) -> dict[str, Any]:
    """A clinician's own figures: agreement with gold per field and their drift, nobody else's."""
    fields = []
    for spec in data.categorical_specs:
        rows = [row for row in gold_agreement(data, spec) if row.rater == rater]
        keys, series = drift(data, spec, by=by, window=window)
        mine = [s for s in series if s.rater == rater and s.points]
        chart = (
            charts.line_chart(
                keys,
                [charts.Series("You", [charts.Point(p.key, p.share, p.n) for p in s.points]) for s in mine],
                title=f"Your agreement with gold over time: {spec.label}",
                y_label="share agreeing with gold",
                chart_id=f"drift-{spec.name}",
            )
            if mine
            else ""
        )
        fields.append({"spec": spec, "row": rows[0] if rows else None, "chart": chart})
    return {"fields": fields}
