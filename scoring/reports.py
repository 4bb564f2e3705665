"""Campaign reports: the frozen payload (provenance and every table), and its CSV, JSON, ZIP and PDF.

The payload is plain JSON made once (``report_create``); every download renders from it, so the
HTML page, the PDF and the files always show the same numbers. The PDF is drawn with ReportLab
(pure Python: no system library to install).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from annotations.metric_map import effective
from annotations.models import Campaign, Guideline
from core.csv_cells import neutralise
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
from scoring.figures.metrics import METRIC_SPECS, available_metrics, default_metric, label_summary
from scoring.figures.scores import campaign_scores
from scoring.resolution import source_info
from scoring.rows import CampaignData

FORMAT = "medharm-report/1"
ALL = "(all)"
COEFFICIENTS = ("percent_agreement", "cohen_kappa", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")
COEFFICIENT_LABELS = {
    "percent_agreement": "Percent agreement",
    "cohen_kappa": "Cohen's kappa",
    "fleiss_kappa": "Fleiss' kappa",
    "krippendorff_alpha": "Krippendorff's alpha",
    "gwet_ac1": "Gwet's AC1",
}


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


# --- downloads --------------------------------------------------------------------------------------


def table_names(payload: dict[str, Any]) -> list[str]:
    return list(payload["tables"])


def table_csv(payload: dict[str, Any], name: str) -> str:
    """One table as CSV with a header row; empty cells for missing values."""
    table = payload["tables"][name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([neutralise(column) for column in table["columns"]])
    for row in table["rows"]:
        writer.writerow(["" if cell is None else neutralise(cell) for cell in row])
    return out.getvalue()


def report_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, sort_keys=False, allow_nan=False)


def provenance_lines(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """What the report states about its inputs, as (label, text) pairs for the HTML page and PDF."""
    data, method = payload["data"], payload["method"]
    guideline = payload["guideline"]
    rubric = payload["rubric"]
    used = (
        "; ".join(
            f"v{g['version'] if g['version'] is not None else '?'} "
            f"({g['content_hash'][:12] or 'no hash'}): {g['labels']} labels"
            for g in payload["label_guidelines"]
        )
        or "no labels"
    )
    lines = [
        (
            "Campaign",
            f"#{payload['campaign']['id']} {payload['campaign']['name']} ({payload['campaign']['status']})",
        ),
        (
            "Rubric",
            f"{rubric['title']} ({rubric['slug']}) version {rubric['version']}, "
            f"hash {rubric['content_hash']}",
        ),
        (
            "Guideline",
            f"{guideline['title']} ({guideline['slug']}) version {guideline['version']}, "
            f"hash {guideline['content_hash']}",
        ),
        ("Guidelines the labels were made under", used),
        (
            "Collection runs",
            ", ".join(f"#{r['id']} {r['name']}" for r in data["runs"]) or "none (a query campaign)",
        ),
        (
            "Data",
            f"{data['items']} items, {data['labels']} labels by {data['annotators']} annotators, "
            f"{data['adjudicated']} adjudicated and {data['consensus']} consensus gold labels, "
            f"{data['responses']} responses",
        ),
        ("Data fingerprint (sha256)", data["fingerprint"]),
        ("Label source", f"{method['label_source_name']}: {method['label_source_description']}"),
        ("Random seed", str(method["seed"])),
        ("Bootstrap resamples", str(method["resamples"])),
        ("Generated", payload["generated_at"]),
    ]
    if "resolved_responses" in data:
        lines.insert(
            6,
            (
                "Resolved labels",
                f"{data['resolved_responses']} of {data['labelled_responses']} "
                "labelled responses have a label under the source",
            ),
        )
    return lines


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"  # noqa: RUF001 - typographic on purpose
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _with_ci(value: Any, low: Any, high: Any) -> str:
    if value is None:
        return "n/c"
    if low is None:
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(low)}, {_fmt(high)}]"


@dataclass(frozen=True)
class DisplayTable:
    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


def display_tables(payload: dict[str, Any]) -> list[DisplayTable]:
    """The report as people read it (HTML and PDF): pivoted summaries; the CSVs hold every row."""
    tables = payload["tables"]
    out: list[DisplayTable] = []
    rubric = payload.get("rubric", {})
    headline = rubric.get("headline_metric", "unsafe_rate")
    if "scores" in tables:
        # A report made before rubrics carried a metric map lists every figure.
        metrics = list(rubric.get("metrics") or METRIC_SPECS)
        index = {(r[0], r[1], r[2]): r for r in tables["scores"]["rows"]}
        targets = [*sorted({r[0] for r in tables["scores"]["rows"] if r[0] != ALL}), ALL]
        out.append(
            DisplayTable(
                "scores",
                "Safety scores per target, all categories (value [95% CI]; n/c = not computable)",
                ["Target", *[METRIC_SPECS[m].label for m in metrics]],
                [
                    [
                        t,
                        *[
                            _with_ci(*index[(t, ALL, m)][3:6]) if (t, ALL, m) in index else "–"  # noqa: RUF001 - typographic on purpose
                            for m in metrics
                        ],
                    ]
                    for t in targets
                ],
                "Per-category figures with numerators and denominators: scores.csv.",
            )
        )
        categories = sorted({r[1] for r in tables["scores"]["rows"] if r[1] != ALL})
        out.append(
            DisplayTable(
                "unsafe_by_category",
                f"{METRIC_SPECS[headline].label[:1].upper()}{METRIC_SPECS[headline].label[1:]} "
                "per target and category",
                ["Target", *categories],
                [
                    [
                        t,
                        *[
                            _with_ci(*index[(t, c, headline)][3:6]) if (t, c, headline) in index else "–"  # noqa: RUF001 - typographic on purpose
                            for c in categories
                        ],
                    ]
                    for t in targets
                ],
            )
        )
        out.append(
            DisplayTable(
                "outcomes",
                tables["outcomes"]["title"],
                tables["outcomes"]["columns"],
                [[_fmt(c) for c in row] for row in tables["outcomes"]["rows"]],
            )
        )
        if tables["paired"]["rows"]:
            out.append(
                DisplayTable(
                    "paired",
                    tables["paired"]["title"],
                    [
                        "First",
                        "Second",
                        "Category",
                        "Shared queries",
                        "Only first unsafe",
                        "Only second unsafe",
                        "McNemar p",
                        "Actionability difference",
                        "Harmfulness difference",
                    ],
                    [
                        [
                            r[0],
                            r[1],
                            r[2],
                            _fmt(r[3]),
                            _fmt(r[5]),
                            _fmt(r[6]),
                            _fmt(r[8], 4),
                            _with_ci(r[9], r[10], r[11]),
                            _with_ci(r[12], r[13], r[14]),
                        ]
                        for r in tables["paired"]["rows"]
                    ],
                )
            )
    agreement = tables["agreement"]["rows"]
    summary: dict[tuple[str, str, str], dict[str, list[Any]]] = {}
    for row in agreement:
        summary.setdefault((row[0], row[2], row[3]), {})[row[7]] = row
    all_rows = [(k, v) for k, v in summary.items() if k[1] == "all"]
    out.append(
        DisplayTable(
            "agreement",
            "Inter-annotator agreement per field, all items",
            ["Field", "Items", "Annotators", *[COEFFICIENT_LABELS[c] for c in COEFFICIENTS]],
            [
                [
                    k[0],
                    _fmt(v["percent_agreement"][4]),
                    _fmt(v["percent_agreement"][5]),
                    *[_with_ci(*v[c][8:11]) for c in COEFFICIENTS],
                ]
                for k, v in all_rows
            ],
            "Per category and per model: agreement.csv. Cohen's kappa is shown for exactly two annotators.",
        )
    )
    gold = tables["annotator_gold"]["rows"]
    if gold:
        out.append(
            DisplayTable(
                "annotator_gold",
                tables["annotator_gold"]["title"],
                ["Field", "Annotator", "Gold items", "Percent agreement", "Kappa"],
                [
                    [r[0], r[1], _fmt(r[2]), _with_ci(r[4], r[5], r[6]), _with_ci(r[7], r[8], r[9])]
                    for r in gold
                ],
            )
        )
    return out


def report_zip(payload: dict[str, Any], pdf: bytes) -> bytes:
    """Every table as CSV, the payload as JSON, and the PDF, in one archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.json", report_json(payload))
        archive.writestr("report.pdf", pdf)
        for name in table_names(payload):
            archive.writestr(f"{name}.csv", table_csv(payload, name))
    return buffer.getvalue()


PDF_CELL_PADDING = 12  # reportlab's default left and right cell padding, in points


def pdf_column_widths(
    columns: Sequence[Sequence[str]], total: float, *, font: str, size: float
) -> list[float]:
    """Column widths (points) summing to ``total`` in which no word is ever split: each column gets
    at least its longest word, and the room left goes where the text is longest."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    shortest = [
        max((stringWidth(word, font, size) for cell in column for word in str(cell).split()), default=0.0)
        + PDF_CELL_PADDING
        for column in columns
    ]
    natural = [
        max((stringWidth(str(cell), font, size) for cell in column), default=0.0) + PDF_CELL_PADDING
        for column in columns
    ]
    floor = sum(shortest)
    if floor >= total:
        return [width * total / floor for width in shortest]
    if sum(natural) <= total:
        spare = total - sum(natural)
        return [width + spare * width / sum(natural) for width in natural]
    wants = [max(0.0, n - m) for n, m in zip(natural, shortest, strict=True)]
    spare = total - floor
    return [m + spare * want / sum(wants) for m, want in zip(shortest, wants, strict=True)]


PDF_CHART_METRICS = ("unsafe_rate", "actionable_rate", "refusal_rate")


def _pdf_charts(payload: dict[str, Any], width: float) -> list[tuple[str, Any]]:
    """The leaderboard's interval bars and the category x model heatmap, drawn for the PDF from the
    same table the HTML pages and the CSVs use: (heading, drawing) pairs."""
    from reportlab.graphics.shapes import Drawing, Group, Line, Rect, String
    from reportlab.lib import colors
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from scoring.charts import colour

    scores = payload["tables"].get("scores")
    if not scores:
        return []
    index = {(r[0], r[1], r[2]): r for r in scores["rows"]}
    targets = [*sorted({r[0] for r in scores["rows"] if r[0] != ALL}), ALL]
    categories = [*sorted({r[1] for r in scores["rows"] if r[1] != ALL}), ALL]
    out: list[tuple[str, Any]] = []
    label_width, bar_height, gap = 150.0, 12.0, 5.0
    rubric = payload.get("rubric", {})
    headline = rubric.get("headline_metric", "unsafe_rate")
    available = rubric.get("metrics") or PDF_CHART_METRICS
    chart_metrics = [m for m in dict.fromkeys((headline, *PDF_CHART_METRICS)) if m in available]
    for metric in chart_metrics:
        rows = [index.get((t, ALL, metric)) for t in targets]
        if not any(row and row[3] is not None for row in rows):
            continue
        plot = width - label_width - 60
        drawing = Drawing(width, (bar_height + gap) * len(targets) + 28)
        top = drawing.height - 6
        for tick in (0, 0.25, 0.5, 0.75, 1.0):
            x = label_width + plot * tick
            drawing.add(Line(x, 14, x, top, strokeColor=colors.HexColor("#d5dde5"), strokeWidth=0.4))
            drawing.add(String(x, 4, f"{tick:g}", fontSize=6.5, textAnchor="middle"))
        for i, (target, row) in enumerate(zip(targets, rows, strict=True)):
            y = top - (i + 1) * (bar_height + gap)
            drawing.add(String(label_width - 6, y + 3, target[:40], fontSize=7, textAnchor="end"))
            if not row or row[3] is None:
                drawing.add(
                    String(label_width + 4, y + 3, "not computable", fontSize=7, fillColor=colors.grey)
                )
                continue
            value, low, high = row[3], row[4], row[5]
            drawing.add(
                Rect(
                    label_width,
                    y,
                    plot * value,
                    bar_height,
                    fillColor=colors.HexColor("#2a7ab0"),
                    strokeWidth=0,
                )
            )
            if low is not None and high is not None:
                middle = y + bar_height / 2
                drawing.add(
                    Line(label_width + plot * low, middle, label_width + plot * high, middle, strokeWidth=0.8)
                )
                for end in (low, high):
                    x = label_width + plot * end
                    drawing.add(Line(x, middle - 3, x, middle + 3, strokeWidth=0.8))
            drawing.add(String(label_width + plot * (high or value) + 4, y + 3, f"{value:.3f}", fontSize=7))
        label = METRIC_SPECS[metric].label
        out.append((f"{label[:1].upper()}{label[1:]}: value and 95% interval per target", drawing))
    # The heatmap: unsafe rate per target and category, darker red less safe.
    cell_w = min(70.0, (width - label_width - 160) / max(1, len(categories)))
    cell_h = 14.0
    # Category names lean at 30 degrees, whole: room above the grid for the longest.
    longest = max(stringWidth(category, "Helvetica", 6.5) for category in categories)
    header = 12.0 + longest * 0.5
    drawing = Drawing(width, header + cell_h * len(targets) + 30)
    top = drawing.height - header
    for j, category in enumerate(categories):
        label = Group(String(0, 0, category, fontSize=6.5))
        label.translate(label_width + cell_w * j + cell_w / 3, top + 3)
        label.rotate(30)
        drawing.add(label)
    for i, target in enumerate(targets):
        y = top - (i + 1) * cell_h
        drawing.add(String(label_width - 6, y + 4, target[:40], fontSize=7, textAnchor="end"))
        for j, category in enumerate(categories):
            row = index.get((target, category, headline))
            value = row[3] if row else None
            fill = colors.HexColor(colour(value)) if value is not None else colors.HexColor("#eef1f4")
            x = label_width + cell_w * j
            drawing.add(Rect(x, y, cell_w - 1, cell_h - 1, fillColor=fill, strokeWidth=0))
            text = f"{value:.2f}" if value is not None else "n/c"
            drawing.add(String(x + cell_w / 2, y + 4, text, fontSize=6.5, textAnchor="middle"))
    for step in range(10):
        drawing.add(
            Rect(
                label_width + step * 14,
                4,
                14,
                9,
                fillColor=colors.HexColor(colour((step + 0.5) / 10)),
                strokeWidth=0,
            )
        )
    drawing.add(String(label_width - 4, 6, "0 safer", fontSize=6.5, textAnchor="end"))
    drawing.add(String(label_width + 144, 6, "1 less safe; grey: not computable", fontSize=6.5))
    out.append(("Unsafe rate per target and category (darker red is less safe)", drawing))
    return out


def report_pdf(payload: dict[str, Any]) -> bytes:
    """The report as an A4 landscape PDF: title, provenance, then the display tables."""
    from xml.sax.saxutils import escape as xml_escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        CondPageBreak,
        KeepTogether,
        LongTable,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )

    buffer = io.BytesIO()
    title = f"MedHarm report: {payload['title']}"
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=title,
        author="MedHarm platform",
        subject=f"Campaign {payload['campaign']['id']}",
    )
    styles = getSampleStyleSheet()
    # Words are never split inside a cell: the columns are sized so that each longest word fits.
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5, splitLongWords=0)
    body = styles["BodyText"].clone("body", fontSize=8.5, leading=11)
    story: list[Any] = [Paragraph(xml_escape(title), styles["Title"])]
    for label, text in provenance_lines(payload):
        story.append(Paragraph(f"<b>{xml_escape(label)}:</b> {xml_escape(text)}", body))
    width = landscape(A4)[0] - 24 * mm
    heading = styles["Heading3"].clone("heading", keepWithNext=1)
    for chart_title, drawing in _pdf_charts(payload, width):
        story.append(KeepTogether([Spacer(1, 4 * mm), Paragraph(xml_escape(chart_title), heading), drawing]))
    for table in display_tables(payload):
        # A heading never ends a page: less than a few rows' room left, and the table starts anew.
        story += [CondPageBreak(45 * mm), Spacer(1, 5 * mm), Paragraph(xml_escape(table.title), heading)]
        cells = [[Paragraph(f"<b>{xml_escape(c)}</b>", small) for c in table.columns]]
        cells += [[Paragraph(xml_escape(str(c)), small) for c in row] for row in table.rows]
        columns = [
            [table.columns[j], *(str(row[j]) for row in table.rows)] for j in range(len(table.columns))
        ]
        widths = pdf_column_widths(columns, width, font="Helvetica-Bold", size=small.fontSize)
        grid = LongTable(cells, colWidths=widths, repeatRows=1)
        grid.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#aab6c2")),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6f0f7")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(grid)
        if table.note:
            story.append(Paragraph(xml_escape(table.note), small))
    document.build(story)
    return buffer.getvalue()
