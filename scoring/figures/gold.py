"""Agreement of each annotator with the gold labels: the table, the flag threshold, and drift
(agreement with gold over time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from annotations.rubric_schema import FieldSpec
from core.collector import without_collector
from medharm_stats import Estimate, RatingTable, agreement_weights, cohen_kappa, wilson_interval
from medharm_stats.agreement import cohen_kappa_of_counts
from scoring.figures.agreement import (
    declared_options,
    field_codes,
    is_known_option,
    kappa_weighting,
    label_columns,
    value_codes,
)
from scoring.rows import CampaignData, ItemRow, LabelRow


@dataclass(frozen=True)
class AnnotatorGold:
    rater: str
    name: str
    n_items: int
    agreements: int
    percent: Estimate  # share of items on which the annotator gave the gold value (Wilson interval)
    kappa: Estimate  # Cohen's kappa annotator vs gold (linear weights for ordinal fields)
    flagged: bool = False
    flag_reason: str = ""


def _gold_pairs(
    data: CampaignData, spec: FieldSpec, *, model: str | None = None, category: str | None = None
) -> dict[str, list[tuple[LabelRow, object]]]:
    pairs: dict[str, list[tuple[LabelRow, object]]] = {}
    for label in data.labels:
        value = label.values.get(spec.name)
        item = data.items.get(label.item_id)
        if value is None or item is None or not item.gold or item.gold.get(spec.name) is None:
            continue
        if (model is not None and item.target != model) or (
            category is not None and item.category != category
        ):
            continue
        if spec.is_missing(value) or spec.is_missing(item.gold[spec.name]):
            continue
        pairs.setdefault(label.rater, []).append((label, item.gold[spec.name]))
    return pairs


@dataclass(frozen=True)
class _GoldColumns:
    """The labels of one field that have a gold value to compare with (both a rating or an
    off-rubric value, neither empty nor "missing"), as arrays in label order: the label's index in
    ``data.labels``, its rater's column (pseudonym order), its code and its item's gold code
    (``agreement.value_codes``: -2 for a value outside the options)."""

    data: CampaignData
    field: str
    label_index: np.ndarray
    rater: np.ndarray
    label_code: np.ndarray
    gold_code: np.ndarray

    def label_value(self, k: int) -> object:
        return self.data.labels[int(self.label_index[k])].values.get(self.field)

    def gold_value(self, k: int) -> object:
        gold = self.data.items[self.data.labels[int(self.label_index[k])].item_id].gold
        return gold.get(self.field) if gold else None


def _label_days(data: CampaignData) -> np.ndarray:
    """Each label's day of creation (proleptic ordinal, the date in the label's time zone: UTC),
    read once per snapshot."""
    if "label_days" not in data.cache:
        data.cache["label_days"] = np.fromiter(
            (label.created_at.toordinal() for label in data.labels), np.int64, len(data.labels)
        )
    days: np.ndarray = data.cache["label_days"]
    return days


def _item_arrays(data: CampaignData) -> tuple[np.ndarray, np.ndarray, list[ItemRow]]:
    """Item ids sorted, the row of each in ``data.items`` order, and the rows: read once per snapshot."""
    if "gold_item_arrays" not in data.cache:
        rows = list(data.items.values())
        ids = np.fromiter((row.item_id for row in rows), np.int64, len(rows))
        order = np.argsort(ids, kind="stable")
        data.cache["gold_item_arrays"] = (ids[order], order, rows)
    found: tuple[np.ndarray, np.ndarray, list[ItemRow]] = data.cache["gold_item_arrays"]
    return found


def _gold_columns(
    data: CampaignData, spec: FieldSpec, *, model: str | None = None, category: str | None = None
) -> _GoldColumns | None:
    """``_GoldColumns`` of the field over ``model``'s and ``category``'s items; ``None`` when a
    label's rater has no pseudonym (a hand-made snapshot: the by-label functions serve it)."""
    found = label_columns(data)
    if found is None:
        return None
    label_items, raters, _ = found
    sorted_ids, order, rows = _item_arrays(data)
    cache = data.cache.setdefault("gold_codes", {})
    if spec.name not in cache:
        cache[spec.name] = value_codes(spec, [row.gold.get(spec.name) if row.gold else None for row in rows])
    item_gold: np.ndarray = cache[spec.name]
    position = np.minimum(np.searchsorted(sorted_ids, label_items), max(len(sorted_ids) - 1, 0))
    known = sorted_ids[position] == label_items if len(sorted_ids) else np.zeros(len(label_items), bool)
    item_row = np.where(known, order[position] if len(order) else 0, -1)
    wanted = np.ones(len(rows), dtype=bool)
    if model is not None:
        wanted &= np.fromiter((row.target == model for row in rows), bool, len(rows))
    if category is not None:
        wanted &= np.fromiter((row.category == category for row in rows), bool, len(rows))
    label_code = field_codes(data, spec)
    gold_code = np.where(known, item_gold[np.maximum(item_row, 0)] if len(rows) else -1, -1)
    keep = (
        known
        & (label_code != -1)
        & (gold_code != -1)
        & np.where(known, wanted[np.maximum(item_row, 0)], False)
    )
    index = np.flatnonzero(keep)
    return _GoldColumns(data, spec.name, index, raters[index], label_code[index], gold_code[index])


def _same(a: object, b: object) -> bool:
    return a == b and type(a) is type(b)


@without_collector
def gold_agreement(
    data: CampaignData, spec: FieldSpec, *, model: str | None = None, category: str | None = None
) -> list[AnnotatorGold]:
    """Per annotator: agreement with the gold labels of the items they labelled, in pseudonym order;
    with ``model`` or ``category``, over that model's or category's items only (as every figure).
    Computed from the snapshot's label and gold codes in array passes (``_GoldColumns``), or one
    label at a time (``gold_agreement_by_label``) for a snapshot whose raters are not all named."""
    columns = _gold_columns(data, spec, model=model, category=category)
    if columns is None:
        return gold_agreement_by_label(data, spec, model=model, category=category)
    q = len(spec.rating_options)
    n_raters = len(data.rater_pseudonyms)
    rater, label_code, gold_code = columns.rater, columns.label_code, columns.gold_code
    n_items = np.bincount(rater, minlength=n_raters)
    coded = (label_code >= 0) & (gold_code >= 0)
    agree = np.bincount(rater[coded & (label_code == gold_code)], minlength=n_raters)
    off = ~coded  # an off-rubric value on either side: compared as values, as the labels hold them
    for k in np.flatnonzero(off):
        agree[rater[k]] += _same(columns.label_value(int(k)), columns.gold_value(int(k)))
    unknown = np.bincount(rater[off], minlength=n_raters)
    tables = np.bincount(
        (rater[coded].astype(np.int64) * q + label_code[coded]) * q + gold_code[coded],
        minlength=n_raters * q * q,
    ).reshape(n_raters, q, q)
    weights = agreement_weights(q, kappa_weighting(spec))
    rows = []
    for column, key in enumerate(data.rater_pseudonyms):
        n, hits = int(n_items[column]), int(agree[column])
        if n and not unknown[column]:
            kappa = cohen_kappa_of_counts(tables[column], weights)
        else:
            kappa = Estimate.not_computable("not computable: no item with both a label and a gold value")
        rows.append(
            AnnotatorGold(
                rater=key,
                name=data.rater_names[key],
                n_items=n,
                agreements=hits,
                percent=wilson_interval(hits, n),
                kappa=kappa,
            )
        )
    return rows


def gold_agreement_by_label(
    data: CampaignData, spec: FieldSpec, *, model: str | None = None, category: str | None = None
) -> list[AnnotatorGold]:
    """``gold_agreement`` one label at a time (the reference the array passes are tested against)."""
    rows = []
    by_rater = _gold_pairs(data, spec, model=model, category=category)
    for rater in data.rater_pseudonyms:
        pairs = by_rater.get(rater, [])
        agree = sum(1 for label, gold in pairs if _same(label.values.get(spec.name), gold))
        records = [(label.item_id, "annotator", label.values.get(spec.name)) for label, _ in pairs]
        records += [(label.item_id, "gold", gold) for label, gold in pairs]
        if pairs and all(is_known_option(spec, v) for _, _, v in records):
            table = RatingTable.from_records(records, categories=declared_options(spec))
            kappa = cohen_kappa(table, weighting=kappa_weighting(spec), raters=("annotator", "gold"))  # type: ignore[arg-type]
        else:
            kappa = Estimate.not_computable("not computable: no item with both a label and a gold value")
        rows.append(
            AnnotatorGold(
                rater=rater,
                name=data.rater_names[rater],
                n_items=len(pairs),
                agreements=agree,
                percent=wilson_interval(agree, len(pairs)),
                kappa=kappa,
            )
        )
    return rows


@dataclass(frozen=True)
class Threshold:
    statistic: str  # "percent_agreement" or "cohen_kappa"
    minimum: float
    min_items: int


def apply_threshold(rows: list[AnnotatorGold], threshold: Threshold | None) -> list[AnnotatorGold]:
    """Flag annotators whose figure is below the minimum, once they have ``min_items`` gold items."""
    if threshold is None:
        return rows
    flagged = []
    for row in rows:
        estimate = row.percent if threshold.statistic == "percent_agreement" else row.kappa
        reason = ""
        is_flagged = False
        if row.n_items < threshold.min_items:
            reason = f"too few gold items to judge ({row.n_items} of {threshold.min_items})"
        elif estimate.value is None:
            reason = estimate.reason or "not computable"
        elif estimate.value < threshold.minimum:
            is_flagged = True
            reason = f"{estimate.value:.3f} is below {threshold.minimum:.3f}"
        flagged.append(
            AnnotatorGold(
                row.rater,
                row.name,
                row.n_items,
                row.agreements,
                row.percent,
                row.kappa,
                is_flagged,
                reason,
            )
        )
    return flagged


def gold_section(
    data: CampaignData,
    spec: FieldSpec,
    threshold: Threshold | None,
    threshold_field: str,
    *,
    model: str | None = None,
    category: str | None = None,
) -> tuple[FieldSpec, list[AnnotatorGold]]:
    """The agreement-with-gold table shown beside field ``spec`` (the page and the API alike): with
    a flag threshold, the threshold's field (its own, else the rubric's primary field, as
    ``AnnotatorFlagThreshold.field_name`` says) with its flags; without one, ``spec`` itself. With
    ``model`` or ``category``, over those items only, as every other figure."""
    if threshold is None:
        return spec, gold_agreement(data, spec, model=model, category=category)
    gold_spec = data.spec(threshold_field) if threshold_field else (data.primary_spec or spec)
    return gold_spec, apply_threshold(
        gold_agreement(data, gold_spec, model=model, category=category), threshold
    )


@dataclass(frozen=True)
class DriftPoint:
    key: str  # the window: ISO date of the week's Monday, or "1-50"
    agreements: int
    n: int

    @property
    def share(self) -> float:
        return self.agreements / self.n


@dataclass(frozen=True)
class DriftSeries:
    rater: str
    name: str
    points: list[DriftPoint] = field(default_factory=list)


def week_of(day: date) -> str:
    """The drift window of a day: the ISO date of its week's Monday."""
    return (day - timedelta(days=day.weekday())).isoformat()


@without_collector
def drift(
    data: CampaignData, spec: FieldSpec, *, by: str = "week", window: int = 50
) -> tuple[list[str], list[DriftSeries]]:
    """Agreement with gold over time per annotator: per calendar week (UTC, from Monday) of the
    label's creation, or per block of ``window`` consecutive gold-labelled labels (in the order of
    creation, then label id). Array passes over the snapshot's codes (``_GoldColumns``), or one
    label at a time (``drift_by_label``) for a snapshot whose raters are not all named."""
    if by not in ("week", "labels"):
        raise ValueError("drift windows are 'week' or 'labels'")
    columns = _gold_columns(data, spec)
    if columns is None:
        return drift_by_label(data, spec, by=by, window=window)
    rater, label_code, gold_code = columns.rater, columns.label_code, columns.gold_code
    if len(rater) == 0:
        return [], [DriftSeries(key, data.rater_names[key], []) for key in data.rater_pseudonyms]
    coded = (label_code >= 0) & (gold_code >= 0)
    hit = coded & (label_code == gold_code)
    for k in np.flatnonzero(~coded):
        hit[k] = _same(columns.label_value(int(k)), columns.gold_value(int(k)))
    labels = data.labels
    if by == "week":
        days = _label_days(data)[columns.label_index]
        bucket = days - (days - 1) % 7  # the ordinal of the week's Monday (ordinal 1 is a Monday)
    else:
        order = sorted(
            range(len(columns.label_index)),
            key=lambda j: (
                labels[columns.label_index[j]].created_at,
                labels[columns.label_index[j]].label_id,
            ),
        )
        ranked = np.empty(len(order), dtype=np.int64)
        ranked[order] = np.arange(len(order))
        # Each label's position among its rater's labels in time order, then its window's start.
        by_time = np.lexsort((ranked, rater))
        start_of = np.searchsorted(rater[by_time], rater[by_time])
        position = np.empty(len(order), dtype=np.int64)
        position[by_time] = np.arange(len(order)) - start_of
        bucket = position // window * window
    # One key per (rater, window), rater first: sorted keys list each rater's windows in time order.
    low = int(bucket.min())
    span = int(bucket.max()) - low + 1
    keys, inverse = np.unique(rater.astype(np.int64) * span + (bucket - low), return_inverse=True)
    groups = np.stack([keys // span, keys % span + low])
    counts = np.bincount(inverse, minlength=len(keys))
    hits = np.bincount(inverse, weights=hit.astype(np.float64), minlength=len(keys))
    names = {
        int(b): (date.fromordinal(int(b)).isoformat() if by == "week" else f"{int(b) + 1}-{int(b) + window}")
        for b in np.unique(bucket)
    }
    points: dict[int, list[DriftPoint]] = {}
    for g in range(groups.shape[1]):  # sorted by rater, then window: each rater's points in time order
        points.setdefault(int(groups[0, g]), []).append(
            DriftPoint(names[int(groups[1, g])], int(hits[g]), int(counts[g]))
        )
    series = [
        DriftSeries(key, data.rater_names[key], points.get(k, []))
        for k, key in enumerate(data.rater_pseudonyms)
    ]
    ordered = [names[b] for b in sorted(names)]
    return ordered, series


def drift_by_label(
    data: CampaignData, spec: FieldSpec, *, by: str = "week", window: int = 50
) -> tuple[list[str], list[DriftSeries]]:
    """``drift`` one label at a time (the reference the array passes are tested against)."""
    if by not in ("week", "labels"):
        raise ValueError("drift windows are 'week' or 'labels'")
    by_rater = _gold_pairs(data, spec)
    series = []
    keys: set[str] = set()
    for rater in data.rater_pseudonyms:
        pairs = sorted(by_rater.get(rater, []), key=lambda p: (p[0].created_at, p[0].label_id))
        buckets: dict[str, list[bool]] = {}
        for index, (label, gold) in enumerate(pairs):
            if by == "week":
                key = week_of(label.created_at.date())
            else:
                start = index // window * window
                key = f"{start + 1}-{start + window}"
            buckets.setdefault(key, []).append(_same(label.values.get(spec.name), gold))
        points = [DriftPoint(key, sum(hits), len(hits)) for key, hits in buckets.items()]
        keys.update(buckets)
        series.append(DriftSeries(rater, data.rater_names[rater], points))
    ordered = sorted(keys) if by == "week" else sorted(keys, key=lambda k: int(k.split("-")[0]))
    return ordered, series
