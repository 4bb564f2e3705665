"""The score pages: the leaderboard (interval bars and table), the model x category heatmap and
the model-vs-model comparison, each cell linked to the rows behind it."""

from __future__ import annotations

from typing import Any

from scoring import charts
from scoring.figures.comparisons import comparisons
from scoring.figures.metrics import LOWER_IS_BETTER, METRIC_SPECS, available_metrics, metric_scale
from scoring.figures.scores import ScoreBundle, figure_of, sorted_targets
from scoring.pages.cells import SHORT_NAMES, FigureCell, scoring_url
from scoring.rows import CampaignData

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
