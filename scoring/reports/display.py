"""A report as people read it, on the HTML page and in the PDF: the provenance lines and the
pivoted summary tables (the CSVs hold every row)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scoring.figures.metrics import METRIC_SPECS
from scoring.reports.build import ALL, COEFFICIENTS

COEFFICIENT_LABELS = {
    "percent_agreement": "Percent agreement",
    "cohen_kappa": "Cohen's kappa",
    "fleiss_kappa": "Fleiss' kappa",
    "krippendorff_alpha": "Krippendorff's alpha",
    "gwet_ac1": "Gwet's AC1",
}


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
