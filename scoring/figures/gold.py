"""Agreement of each annotator with the gold labels: the table, the flag threshold, and drift
(agreement with gold over time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from annotations.rubric_schema import FieldSpec
from medharm_stats import Estimate, RatingTable, cohen_kappa, wilson_interval
from scoring.figures.agreement import declared_options, is_known_option, kappa_weighting
from scoring.rows import CampaignData, LabelRow


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


def _same(a: object, b: object) -> bool:
    return a == b and type(a) is type(b)


def gold_agreement(
    data: CampaignData, spec: FieldSpec, *, model: str | None = None, category: str | None = None
) -> list[AnnotatorGold]:
    """Per annotator: agreement with the gold labels of the items they labelled, in pseudonym order;
    with ``model`` or ``category``, over that model's or category's items only (as every figure)."""
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


def drift(
    data: CampaignData, spec: FieldSpec, *, by: str = "week", window: int = 50
) -> tuple[list[str], list[DriftSeries]]:
    """Agreement with gold over time per annotator: per calendar week (UTC, from Monday) of the
    label's creation, or per block of ``window`` consecutive gold-labelled labels."""
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
