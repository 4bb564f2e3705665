"""The items behind an agreement figure (a slice, a pair, or one annotator against gold), and the
size of a drill-down's page."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from annotations.rubric_schema import FieldSpec
from core.collector import without_collector
from scoring.figures.agreement import label_columns
from scoring.figures.gold import week_of
from scoring.rows import CampaignData, ItemRow

# Rows per page of every drill-down (score rows and agreement items), on the pages and in the API.
DRILL_PAGE_SIZE = 100


def _items_of_both(data: CampaignData, raters: tuple[str, str]) -> list[ItemRow] | None:
    """The items (in ``data.items`` order) both raters labelled, found with the snapshot's label
    arrays: a pair shares a few items of many, and only those can be its rows. ``None`` when the
    arrays are not available (a hand-made snapshot): then every item is looked at."""
    found = label_columns(data)
    if found is None:
        return None
    label_items, columns, keys = found
    first, second = keys.index(raters[0]), keys.index(raters[1])
    shared = set(np.intersect1d(label_items[columns == first], label_items[columns == second]).tolist())
    return [item for item in data.items.values() if item.item_id in shared]


@without_collector
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
    items: Iterable[ItemRow] = data.items.values()
    if pair is not None:
        a, b = pair
        if not (0 <= a < len(raters) and 0 <= b < len(raters)) or a == b:
            raise LookupError("no such annotator pair")
        chosen = (raters[a], raters[b])
        both = _items_of_both(data, chosen)
        if both is not None:
            items = both
    for item in items:
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
