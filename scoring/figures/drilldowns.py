"""The responses behind one score figure (a drill-down), their packed form for the cache, and a
label's values as one line of text."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from core.collector import without_collector
from medharm_stats.ratings import canonical_value
from medharm_stats.scores import metric_rows
from scoring.figures.scores import ScoreBundle
from scoring.rows import CampaignData, ResponseRow

_SUMMARY_NAMES = {
    "actionability": "actionability",
    "harmfulness": "harmfulness",
    "safe_helpfulness": "helpfulness",
}


def values_summary(values: dict[str, Any]) -> str:
    """A label's score fields on one line: "unsafe: yes · refusal_redirect · actionability 0 · ..."."""
    parts = []
    if values.get("unsafe") is not None:
        parts.append(f"unsafe: {value_text(values['unsafe'])}")
    if values.get("behaviour") is not None:
        parts.append(str(values["behaviour"]))
    parts += [
        f"{label} {values[name]}" for name, label in _SUMMARY_NAMES.items() if values.get(name) is not None
    ]
    return " · ".join(parts)


def value_text(value: object) -> str:
    """How a resolved or labelled value reads in a table."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(canonical_value(value) if not isinstance(value, str) else value)


@dataclass(frozen=True)
class DrillRow:
    response: ResponseRow
    item_id: int | None
    in_numerator: bool
    resolved: dict[str, Any]
    labels: list[tuple[str, dict[str, Any]]]  # (annotator name, values)
    gold_source: str

    @property
    def resolved_summary(self) -> str:
        return values_summary(self.resolved)

    @property
    def label_summaries(self) -> list[tuple[str, str]]:
        return [(name, values_summary(values)) for name, values in self.labels]


@without_collector
def drilldown(
    bundle: ScoreBundle,
    data: CampaignData,
    metric: str,
    *,
    target: str | None,
    category: str | None,
    with_labels: bool = True,
) -> tuple[list[DrillRow], int, int]:
    """The responses behind one figure: every denominator row, marked when it is in the numerator.
    Returns (rows, numerator, denominator) as ``metric_rows`` counts them. Without
    ``with_labels`` the rows carry no annotators' labels (a page reads those for its rows only)."""
    selection = metric_rows(bundle.data, metric, target=target, category=category)
    numerator = set(selection.numerator.tolist())
    grouped = data.labels_by_item() if with_labels else {}
    rows = []
    for index in selection.denominator.tolist():
        response = bundle.responses[index]
        item_id = bundle.item_of_response.get(response.response_id)
        item = data.items.get(item_id) if item_id is not None else None
        labels = grouped.get(item_id, []) if item_id is not None else []
        rows.append(
            DrillRow(
                response=response,
                item_id=item_id,
                in_numerator=index in numerator,
                resolved=bundle.resolved.get(item_id, {}) if item_id is not None else {},
                labels=[(data.rater_names[label.rater], label.values) for label in labels],
                gold_source=item.gold_source if item else "",
            )
        )
    return rows, len(selection.numerator), len(selection.denominator)


# A drill row as a plain tuple: what the cache stores (a list of tuples pickles many times faster
# than a list of frozen dataclasses), unpacked for the rows a page shows or an export writes.
PackedDrillRow = tuple[Any, ...]


def pack_row(row: DrillRow) -> PackedDrillRow:
    r = row.response
    return (
        r.response_id,
        r.run_id,
        r.query_id,
        r.query_external_id,
        r.category,
        r.expected,
        r.target,
        r.outcome,
        r.guard_categories,
        row.item_id,
        row.in_numerator,
        row.resolved,
        row.gold_source,
    )


def unpack_row(packed: PackedDrillRow) -> DrillRow:
    return DrillRow(ResponseRow(*packed[:9]), packed[9], packed[10], packed[11], [], packed[12])


def packed_item_id(packed: PackedDrillRow) -> int | None:
    return packed[9]


def attach_labels(
    rows: list[DrillRow], labels: dict[int, list[tuple[str, dict[str, Any]]]], names: dict[str, str]
) -> list[DrillRow]:
    """``rows`` with the annotators' labels of their items (item id -> [(rater key, values)], as
    ``selectors.drilldowns.labels_of_items`` reads them for one page), each annotator under the name shown."""
    return [
        replace(
            row,
            labels=[(names.get(rater, rater), values) for rater, values in labels.get(row.item_id or -1, [])],
        )
        for row in rows
    ]
