"""Reads for the drill-downs: the annotators' labels of one page (or one export batch) of rows,
read for those rows only."""

from __future__ import annotations

from typing import Any

from annotations.models import Label
from scoring.selectors.snapshot import json_loads, json_text


def labels_of_items(*, item_ids: list[int | None]) -> dict[int, list[tuple[str, dict[str, Any]]]]:
    """item id -> [(rater key, values)] in the order the snapshot holds them (creation, then id):
    the labels of one page of a drill-down, read for that page only."""
    grouped: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    wanted = {i for i in item_ids if i is not None}
    if not wanted:
        return grouped
    low, high = min(wanted), max(wanted)
    # A dense batch (an export's, in item order) is read as an id range: a list of thousands of
    # parameters costs more to send than the few labels of other items the range brings along.
    labels = (
        Label.objects.filter(item_id__gte=low, item_id__lte=high)
        if high - low < 4 * len(wanted)
        else Label.objects.filter(item_id__in=wanted)
    )
    rows = (
        labels.annotate(values_text=json_text("values"))
        .order_by("created_at", "pk")
        .values_list("item_id", "annotator_id", "external_rater", "values_text")
    )
    for item_id, annotator_id, external, values in rows:
        if item_id not in wanted:
            continue
        rater = f"user:{annotator_id}" if annotator_id else f"external:{external}"
        grouped.setdefault(item_id, []).append((rater, json_loads(values) or {}))
    return grouped
