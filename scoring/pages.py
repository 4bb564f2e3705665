"""What each scoring page shows: figures turned into charts, table rows and drill-down links.

The views parse the request and call one of these with the campaign's snapshot; these functions
never read the database themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from annotations.rubric_schema import FieldSpec
from medharm_stats import Estimate
from scoring import charts
from scoring.figures.agreement import (
    AgreementRow,
    agreement_rows,
    agreement_summary,
    kappa_of,
    level_for,
    pair_matrix,
)
from scoring.figures.comparisons import comparisons
from scoring.figures.gold import Threshold, drift, gold_agreement, gold_section, week_of
from scoring.figures.metrics import LOWER_IS_BETTER, METRIC_SPECS, available_metrics, metric_scale
from scoring.figures.scores import ScoreBundle, figure_of, sorted_targets
from scoring.rows import CampaignData

# Rows per page of every drill-down (score rows and agreement items), on the pages and in the API.
DRILL_PAGE_SIZE = 100

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
TABLE_METRICS = (
    "unsafe_rate",
    "actionable_rate",
    "harmfulness_mean",
    "refusal_rate",
    "partial_refusal_rate",
    "appropriate_rate",
    "over_refusal_rate",
    "partial_over_refusal_rate",
    "under_refusal_rate",
    "safe_helpfulness_mean",
    "residual_unsafe_rate",
)


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


def _cell(
    bundle: ScoreBundle,
    campaign_id: int,
    metric: str,
    target: str | None,
    category: str | None,
    drill: bool = True,
) -> FigureCell:
    """A figure, linked to the rows behind it when ``drill`` (the rows name each item's model, so
    only roles that may unblind get the link: ``scoring.view_identity_rows``)."""
    return FigureCell(
        metric,
        figure_of(bundle, metric, target, category),
        scoring_url(
            "rows", campaign_id, source=bundle.source, metric=metric, target=target, category=category
        )
        if drill
        else "",
    )


def leaderboard(
    data: CampaignData, bundle: ScoreBundle, metric: str, *, drill: bool = True
) -> dict[str, Any]:
    targets = sorted_targets(bundle, metric)
    cid = data.campaign_id
    bars = []
    for target in targets:
        cell = _cell(bundle, cid, metric, target, None, drill)
        e = cell.estimate
        bars.append(
            charts.Bar(
                label=target,
                value=e.value,
                ci_low=e.ci_low,
                ci_high=e.ci_high,
                href=cell.href,
                note=cell.counts,
                reason=cell.reason,
            )
        )
    chart = charts.interval_bars(
        bars,
        title=f"{METRIC_SPECS[metric].label} per model, with 95% intervals",
        scale=metric_scale(metric),
        lower_is_better=metric in LOWER_IS_BETTER,
        chart_id="leaderboard",
    )
    available = set(available_metrics(data))
    columns = [metric, *[m for m in TABLE_METRICS if m != metric and m in available]]
    rows = [
        {"target": target, "cells": [_cell(bundle, cid, m, target, None, drill) for m in columns]}
        for target in targets
    ]
    overall = {"target": "All models", "cells": [_cell(bundle, cid, m, None, None, drill) for m in columns]}
    return {
        "chart": chart,
        "columns": [(m, SHORT_NAMES[m]) for m in columns],
        "rows": rows,
        "overall": overall,
        "metric": metric,
        "metric_label": METRIC_SPECS[metric].label,
    }


def heatmap(data: CampaignData, bundle: ScoreBundle, metric: str, *, drill: bool = True) -> dict[str, Any]:
    targets = sorted_targets(bundle, metric)
    categories = sorted(bundle.categories, key=lambda s: data.categories.get(s, s))
    columns = [*categories, None]
    cells = {}
    for i, target in enumerate(targets):
        for j, category in enumerate(columns):
            cell = _cell(bundle, data.campaign_id, metric, target, category, drill)
            where = f"{target} × {data.categories.get(category, category) if category else 'all categories'}"  # noqa: RUF001 - typographic on purpose
            title = f"{where}: {cell.text} {cell.interval} {cell.counts}".strip()
            if cell.estimate.value is None:
                title = f"{where}: {cell.reason}"
            cells[(i, j)] = charts.Cell(
                cell.estimate.value,
                cell.text if cell.estimate.value is not None else "–",  # noqa: RUF001
                cell.href,
                title,
            )
    chart = charts.heatmap(
        targets,
        [data.categories.get(c, c) for c in categories] + ["All categories"],
        cells,
        title=f"{METRIC_SPECS[metric].label} per model and category",
        scale=metric_scale(metric),
        lower_is_better=metric in LOWER_IS_BETTER,
        chart_id="category-heatmap",
    )
    return {
        "chart": chart,
        "metric": metric,
        "metric_label": METRIC_SPECS[metric].label,
        "n_rows": len(targets),
        "n_columns": len(columns),
    }


def compare(
    data: CampaignData, bundle: ScoreBundle, first: str, second: str, *, seed: int, drill: bool = True
) -> dict[str, Any]:
    rows = []
    for comparison in comparisons(bundle, first, second, seed=seed):
        category = comparison.category
        rows.append(
            {
                "category": data.categories.get(category, category) if category else "All categories",
                "comparison": comparison,
                "first_href": _cell(bundle, data.campaign_id, "unsafe_rate", first, category, drill).href,
                "second_href": _cell(bundle, data.campaign_id, "unsafe_rate", second, category, drill).href,
                "first_rate": figure_of(bundle, "unsafe_rate", first, category),
                "second_rate": figure_of(bundle, "unsafe_rate", second, category),
            }
        )
    return {"first": first, "second": second, "rows": rows}


# --- agreement ---------------------------------------------------------------------------------------


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


def agreement_item_rows(
    data: CampaignData,
    spec: FieldSpec,
    *,
    category: str | None = None,
    model: str | None = None,
    pair: tuple[int, int] | None = None,
    annotator: int | None = None,
    window: str | None = None,
    by: str = "week",
    window_size: int = 50,
) -> dict[str, Any]:
    """The items behind an agreement figure: a slice's items with every label of the field, a pair's
    shared items, or one annotator's labels against gold (optionally one drift window)."""
    raters = list(data.rater_pseudonyms)
    grouped = data.labels_by_item()
    rows = []
    if annotator is not None:
        if not 0 <= annotator < len(raters):
            raise LookupError("no such annotator")
        rater = raters[annotator]
        pairs = []
        for label in sorted(
            (x for x in data.labels if x.rater == rater), key=lambda x: (x.created_at, x.label_id)
        ):
            item = data.items.get(label.item_id)
            gold = (item.gold or {}).get(spec.name) if item else None
            if label.values.get(spec.name) is None or gold is None:
                continue
            pairs.append((label, item, gold))
        for index, (label, item, gold) in enumerate(pairs):
            if window:
                if by == "week":
                    if week_of(label.created_at.date()) != window:
                        continue
                else:
                    start = index // window_size * window_size
                    if f"{start + 1}-{start + window_size}" != window:
                        continue
            value = label.values.get(spec.name)
            rows.append(
                {
                    "item": item,
                    "values": [(data.rater_names[rater], spec.option_label(value))],
                    "gold": spec.option_label(gold),
                    "agree": value == gold and type(value) is type(gold),
                    "when": label.created_at,
                }
            )
        title = f"{data.rater_names[rater]}: labels of “{spec.label}” against gold"
        if window:
            title += f" ({'week of ' if by == 'week' else 'labels '}{window})"
        return {
            "title": title,
            "rows": rows,
            "mode": "annotator",
            "agreements": sum(r["agree"] for r in rows),
            "n": len(rows),
        }

    chosen = None
    if pair is not None:
        a, b = pair
        if not (0 <= a < len(raters) and 0 <= b < len(raters)) or a == b:
            raise LookupError("no such annotator pair")
        chosen = (raters[a], raters[b])
    for item in data.items.values():
        if category and item.category != category:
            continue
        if model and item.target != model:
            continue
        labels = [x for x in grouped.get(item.item_id, []) if x.values.get(spec.name) is not None]
        if chosen is not None:
            by_rater = {x.rater: x for x in labels}
            if not all(r in by_rater for r in chosen):
                continue
            labels = [by_rater[chosen[0]], by_rater[chosen[1]]]
        if not labels:
            continue
        values = [x.values.get(spec.name) for x in labels]
        rows.append(
            {
                "item": item,
                "values": [
                    (data.rater_names[x.rater], spec.option_label(v))
                    for x, v in zip(labels, values, strict=True)
                ],
                "gold": spec.option_label((item.gold or {}).get(spec.name)) if item.gold else "",
                "agree": len({repr(v) for v in values}) == 1 and len(values) > 1,
            }
        )
    if chosen is not None:
        title = (
            f"{data.rater_names[chosen[0]]} and {data.rater_names[chosen[1]]}: shared items, “{spec.label}”"
        )
    else:
        where = [data.categories.get(category, category) if category else "", model or ""]
        title = f"Items labelled on “{spec.label}”" + (
            f": {', '.join(w for w in where if w)}" if any(where) else ""
        )
    return {
        "title": title,
        "rows": rows,
        "mode": "pair" if chosen else "slice",
        "agreements": sum(r["agree"] for r in rows),
        "n": len(rows),
    }
