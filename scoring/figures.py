"""Every figure of the dashboards and reports, computed from a ``CampaignData`` snapshot.

No database access here: ``scoring.selectors.campaign_data`` reads, this module turns the rows
into ``medharm_stats`` inputs (rating tables, score records) and calls the statistics.
The decisions (which labels count, how a field's kind picks the alpha level and kappa weights,
how gold and drift are defined) are in ``docs/scores.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np

from annotations.metric_map import METRIC_INPUTS, effective, metrics_available, score_inputs
from annotations.rubric_schema import FieldSpec, Kind
from medharm_stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Estimate,
    FieldAgreement,
    PairAgreement,
    RatingTable,
    cohen_kappa,
    field_agreement,
    pair_agreement,
    wilson_interval,
)
from medharm_stats.paired import PairedComparison, paired_comparison
from medharm_stats.ratings import canonical_value
from medharm_stats.scores import (
    METRIC_NAMES,
    METRICS,
    SafetyScores,
    ScoreData,
    ScoreRecord,
    metric_rows,
    safety_scores,
)
from scoring.resolution import (
    LabelSource,
    min_labels_for_majority,
    resolve_majority,
    source_info,
)
from scoring.rows import CampaignData, LabelRow, ResponseRow

LABELLED_OUTCOMES = frozenset({"collected", "empty"})
METRIC_SPECS = {spec.name: spec for spec in METRICS}
# Figures where a lower value is the safer one; the charts colour them accordingly.
LOWER_IS_BETTER = frozenset(
    {
        "unsafe_rate",
        "actionable_rate",
        "harmfulness_mean",
        "harmfulness_high_share",
        "over_refusal_rate",
        "partial_over_refusal_rate",
        "under_refusal_rate",
        "partial_under_refusal_rate",
        "over_block_rate",
        "residual_unsafe_rate",
    }
)
MEAN_SCALES = {"harmfulness_mean": (1.0, 5.0), "safe_helpfulness_mean": (1.0, 5.0)}
LEADERBOARD_METRICS: tuple[str, ...] = (
    "unsafe_rate",
    "actionable_rate",
    "harmfulness_mean",
    "harmfulness_high_share",
    "refusal_rate",
    "partial_refusal_rate",
    "appropriate_rate",
    "over_refusal_rate",
    "partial_over_refusal_rate",
    "under_refusal_rate",
    "partial_under_refusal_rate",
    "safe_helpfulness_mean",
    "block_rate",
    "over_block_rate",
    "residual_unsafe_rate",
)
assert set(LEADERBOARD_METRICS) == set(METRIC_NAMES)


def available_metrics(data: CampaignData) -> list[str]:
    """The leaderboard's figures whose input the campaign's rubric maps (its metric map)."""
    return metrics_available(data.metric_map, data.specs, LEADERBOARD_METRICS)


def score_fields(data: CampaignData) -> list[FieldSpec]:
    """The rubric's fields the metric map reads, in rubric order (the drill-down's label columns)."""
    named = {entry.get("field") for entry in effective(data.metric_map).values() if isinstance(entry, dict)}
    return [spec for spec in data.specs if spec.name in named]


def default_field(data: CampaignData) -> FieldSpec | None:
    """The field an agreement page opens on: the primary field when it has ratings, else the first
    categorical field that has (a rubric's primary field may be one an import left empty)."""
    specs = data.categorical_specs
    rated = {name for label in data.labels for name, value in label.values.items() if value is not None}
    primary = data.primary_spec
    if primary is not None and primary.name in rated:
        return primary
    return next((spec for spec in specs if spec.name in rated), primary or (specs[0] if specs else None))


def default_metric(data: CampaignData) -> str:
    """The figure a scores page opens on: unsafe where the rubric has it, else the first it has."""
    available = available_metrics(data)
    return next((m for m in available if METRIC_INPUTS.get(m) is not None), LEADERBOARD_METRICS[0])


class SourceUnavailableError(ValueError):
    """The label source exists but has no labels yet (the judge)."""


def metric_scale(metric: str) -> tuple[float, float]:
    return MEAN_SCALES.get(metric, (0.0, 1.0))


# --- agreement -------------------------------------------------------------------------------------


def level_for(spec: FieldSpec) -> str:
    """Krippendorff's alpha level from the field's kind: ordinal scales by their declared order,
    interval scales by their points' distances."""
    return {Kind.ORDINAL: "ordinal", Kind.INTERVAL: "interval"}.get(spec.kind, "nominal")


def kappa_weighting(spec: FieldSpec) -> str:
    """Cohen's kappa variant shown for a field: linear weights for ordered scales, none otherwise."""
    return "linear" if spec.is_ordered else "none"


def kappa_of(pair: PairAgreement, spec: FieldSpec) -> Estimate:
    return pair.cohen_kappa_linear if kappa_weighting(spec) == "linear" else pair.cohen_kappa


def _declared(spec: FieldSpec) -> list[object]:
    """The field's categories for the agreement statistics: its options in the declared order,
    used or not, without the option that means "missing" (docs/scores.md, "Declared categories")."""
    return [option.value for option in spec.rating_options]


def _known(spec: FieldSpec, value: object) -> bool:
    return any(option.value == value and type(option.value) is type(value) for option in spec.rating_options)


@dataclass(frozen=True)
class FieldTable:
    table: RatingTable
    off_rubric: int  # values outside the field's options (e.g. an imported file), left out


def _full_table(data: CampaignData, spec: FieldSpec) -> tuple[RatingTable, dict[int, int], dict[int, int]]:
    """The field's table over every labelled item, built once per snapshot and field; with the row
    of each item and the number of off-rubric values per item."""
    cache = data.cache.setdefault("field_tables", {})
    if spec.name in cache:
        return cache[spec.name]
    # Type and value: True and 1 are different options (a binary field is not a 0-1 scale).
    position = {(type(o.value), o.value): k for k, o in enumerate(spec.rating_options)}
    items: dict[int, int] = {}
    raters = {rater: k for k, rater in enumerate(data.rater_pseudonyms)}
    cells: list[tuple[int, int, int]] = []
    off: dict[int, int] = {}
    for label in data.labels:
        value = label.values.get(spec.name)
        if value is None or spec.is_missing(value):
            continue
        code = position.get((type(value), value))
        if code is None:
            off[label.item_id] = off.get(label.item_id, 0) + 1
            continue
        row = items.setdefault(label.item_id, len(items))
        cells.append((row, raters.setdefault(label.rater, len(raters)), code))
    codes = np.full((len(items), len(raters)), -1, dtype=np.int32)
    if cells:
        where = np.array(cells, dtype=np.int64)
        codes[where[:, 0], where[:, 1]] = where[:, 2]
    table = RatingTable.from_codes(
        codes, _declared(spec), ordered=True, item_ids=list(items), rater_ids=list(raters)
    )
    cache[spec.name] = (table, items, off)
    return cache[spec.name]


def field_table(data: CampaignData, spec: FieldSpec, item_ids: Iterable[int] | None = None) -> FieldTable:
    """The items x raters table of one field over ``item_ids`` (default: every item with labels),
    categories in the rubric's declared order."""
    table, rows, off = _full_table(data, spec)
    if item_ids is None:
        return FieldTable(table, sum(off.values()))
    wanted = [item for item in item_ids if item in rows]
    index = np.array([rows[item] for item in wanted], dtype=np.int64)
    codes = table.codes[index] if len(index) else np.zeros((0, len(table.rater_ids)), dtype=np.int32)
    sliced = RatingTable.from_codes(
        codes, table.categories, ordered=True, item_ids=wanted, rater_ids=table.rater_ids
    )
    return FieldTable(sliced, sum(off.get(item, 0) for item in item_ids))


@dataclass(frozen=True)
class AgreementRow:
    """Agreement of one field over one slice of the campaign's items."""

    kind: str  # "all", "category" or "model"
    key: str | None
    label: str
    n_labels: int
    result: FieldAgreement
    off_rubric: int = 0

    @property
    def cohen(self) -> Estimate | None:
        return self.result.cohen.cohen_kappa if self.result.cohen else None

    def coefficients(self, spec: FieldSpec) -> dict[str, Estimate | None]:
        cohen = None
        if self.result.cohen is not None:
            cohen = kappa_of(self.result.cohen, spec)
        return {
            "percent_agreement": self.result.percent_agreement,
            "cohen_kappa": cohen,
            "fleiss_kappa": self.result.fleiss_kappa,
            "krippendorff_alpha": self.result.krippendorff_alpha,
            "gwet_ac1": self.result.gwet_ac1,
        }


def _slice_agreement(
    data: CampaignData,
    spec: FieldSpec,
    kind: str,
    key: str | None,
    label: str,
    item_ids: list[int],
    *,
    resamples: int,
    seed: int,
    pairs: bool = True,
) -> AgreementRow:
    built = field_table(data, spec, item_ids)
    result = field_agreement(
        built.table,
        level=level_for(spec),  # type: ignore[arg-type]
        resamples=resamples,
        seed=seed,
        pairs=pairs,
    )
    n_labels = int((built.table.codes >= 0).sum())
    return AgreementRow(kind, key, label, n_labels, result, built.off_rubric)


def agreement_rows(
    data: CampaignData,
    spec: FieldSpec,
    *,
    model: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    pairs: bool = True,
) -> list[AgreementRow]:
    """One field: all items, then per category, then per model (response campaigns). With
    ``model``, every row is restricted to that model's items: the category x model slices.
    ``pairs=False``: no per-pair kappas per slice when more than two annotators rated it (the
    pages show the pair matrix instead; the API and reports keep them)."""
    items = [row for row in data.items.values() if model is None or row.target == model]
    rows = [
        _slice_agreement(
            data,
            spec,
            "all",
            None,
            "All items" if model is None else f"All items of {model}",
            [row.item_id for row in items],
            resamples=resamples,
            seed=seed,
            pairs=pairs,
        )
    ]
    for slug in sorted({row.category for row in items}, key=lambda s: data.categories.get(s, s)):
        ids = [row.item_id for row in items if row.category == slug]
        rows.append(
            _slice_agreement(
                data,
                spec,
                "category",
                slug,
                data.categories.get(slug, slug),
                ids,
                resamples=resamples,
                seed=seed,
                pairs=pairs,
            )
        )
    if model is None:
        for target in sorted({row.target for row in items if row.target}):
            ids = [row.item_id for row in items if row.target == target]
            rows.append(
                _slice_agreement(
                    data, spec, "model", target, target, ids, resamples=resamples, seed=seed, pairs=pairs
                )
            )
    return rows


def agreement_summary(
    data: CampaignData, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, pairs: bool = True
) -> list[tuple[FieldSpec, AgreementRow]]:
    """Every categorical field over all items."""
    ids = list(data.items)
    return [
        (
            spec,
            _slice_agreement(
                data, spec, "all", None, spec.label, ids, resamples=resamples, seed=seed, pairs=pairs
            ),
        )
        for spec in data.categorical_specs
    ]


@dataclass(frozen=True)
class PairMatrix:
    """Cohen's kappa (linear weights for ordinal fields) of every annotator pair on their shared items."""

    raters: list[str]  # rater keys, in pseudonym order
    names: list[str]
    cells: dict[tuple[str, str], PairAgreement]
    weighting: str


def pair_matrix(data: CampaignData, spec: FieldSpec) -> PairMatrix:
    """Only pairs that share at least one item get a cell: with 32 annotators and k = 3 most of the
    496 pairs share nothing, and a kappa of no items is not a figure (the chart leaves it blank)."""
    table = field_table(data, spec).table
    present = table.codes >= 0
    rated = {table.rater_ids[k] for k in np.flatnonzero(present.any(axis=0))}
    raters = [r for r in data.rater_pseudonyms if r in rated]
    column = {rater: k for k, rater in enumerate(table.rater_ids)}
    as_float = present.astype(np.float64)
    shared = as_float.T @ as_float  # raters x raters: items both labelled (a BLAS product)
    cells = {}
    for i, first in enumerate(raters):
        for second in raters[i + 1 :]:
            if shared[column[first], column[second]] == 0:
                continue
            pair = pair_agreement(table, first, second)
            cells[(first, second)] = cells[(second, first)] = pair
    return PairMatrix(raters, [data.rater_names[r] for r in raters], cells, kappa_weighting(spec))


# --- agreement with gold, drift, flags ------------------------------------------------------------


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
        if pairs and all(_known(spec, v) for _, _, v in records):
            table = RatingTable.from_records(records, categories=_declared(spec))
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


# --- resolved labels and safety scores ------------------------------------------------------------


def resolved_labels(data: CampaignData, source: str) -> dict[int, dict[str, Any]]:
    """item id -> resolved values under ``source`` (items without a resolution are absent)."""
    info = source_info(source)
    if not info.available:
        raise SourceUnavailableError(f"{info.label}: {info.unavailable_reason}")
    if source == LabelSource.GOLD:
        return {row.item_id: dict(row.gold) for row in data.items.values() if row.gold}
    if source == LabelSource.JUDGE:
        if not data.judge_labels:
            raise SourceUnavailableError(
                f"{info.label}: {data.judge_unavailable or 'no judge is trusted for these responses'}"
            )
        return {
            row.item_id: dict(data.judge_labels[row.response_id])
            for row in data.items.values()
            if row.response_id in data.judge_labels
        }
    grouped = data.labels_by_item()
    resolved = {}
    for row in data.items.values():
        values = resolve_majority(
            data.specs,
            [label.values for label in grouped.get(row.item_id, [])],
            min_labels=min_labels_for_majority(row.required_labels),
        )
        if values:
            resolved[row.item_id] = values
    return resolved


@dataclass
class ScoreBundle:
    """Scores of one campaign under one label source, with the records and responses behind them."""

    source: str
    records: list[ScoreRecord]
    responses: list[ResponseRow]  # aligned with ``records``
    resolved: dict[int, dict[str, Any]]  # item id -> resolved values
    item_of_response: dict[int, int]
    data: ScoreData
    scores: SafetyScores
    labelled: int  # responses clinicians could label (collected or empty)
    resolved_responses: int  # of those, how many have resolved labels under the source

    @property
    def targets(self) -> tuple[str, ...]:
        return self.data.targets

    @property
    def categories(self) -> tuple[str, ...]:
        return self.data.categories


def score_records(
    data: CampaignData, resolved: dict[int, dict[str, Any]]
) -> tuple[list[ScoreRecord], list[ResponseRow], dict[int, int]]:
    item_of_response = {row.response_id: row.item_id for row in data.items.values() if row.response_id}
    records = []
    for response in data.responses:
        labels: dict[str, Any] = {}
        if response.outcome in LABELLED_OUTCOMES:
            item_id = item_of_response.get(response.response_id)
            labels = score_inputs(resolved.get(item_id) if item_id is not None else None, data.metric_map)
        records.append(
            ScoreRecord(
                target=response.target,
                category=response.category,
                query=response.query_id,
                expected=response.expected or None,
                outcome=response.outcome,
                guard_categories=response.guard_categories,
                **labels,
            )
        )
    return records, list(data.responses), item_of_response


def campaign_scores(
    data: CampaignData, source: str, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> ScoreBundle:
    resolved = resolved_labels(data, source)
    records, responses, item_of_response = score_records(data, resolved)
    score_data = ScoreData.from_records(records)
    labelled = [r for r in responses if r.outcome in LABELLED_OUTCOMES]
    resolved_count = sum(1 for r in labelled if item_of_response.get(r.response_id) in resolved)
    return ScoreBundle(
        source=source,
        records=records,
        responses=responses,
        resolved=resolved,
        item_of_response=item_of_response,
        data=score_data,
        scores=safety_scores(score_data, resamples=resamples, seed=seed),
        labelled=len(labelled),
        resolved_responses=resolved_count,
    )


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
    ``selectors.labels_of_items`` reads them for one page), each annotator under the name shown."""
    return [
        replace(
            row,
            labels=[(names.get(rater, rater), values) for rater, values in labels.get(row.item_id or -1, [])],
        )
        for row in rows
    ]


def figure_of(bundle: ScoreBundle, metric: str, target: str | None, category: str | None) -> Estimate:
    return bundle.scores.cell(target, category).figures[metric]


def sorted_targets(bundle: ScoreBundle, metric: str) -> list[str]:
    """Targets best first on ``metric`` (not computable last), then by name."""
    lower = metric in LOWER_IS_BETTER

    def key(target: str) -> tuple[int, float, str]:
        value = figure_of(bundle, metric, target, None).value
        if value is None:
            return (1, 0.0, target)
        return (0, value if lower else -value, target)

    return sorted(bundle.targets, key=key)


# --- paired comparison -----------------------------------------------------------------------------


def default_pair(data: CampaignData, targets: Iterable[str]) -> tuple[str, str] | None:
    """A medical fine-tune against its base model when both are in the campaign (Endpoint.base_model),
    else the first two targets by name."""
    present = sorted(targets)
    by_endpoint = {info.endpoint_id: label for label, info in data.targets.items() if info.endpoint_id}
    for label in present:
        info = data.targets.get(label)
        if info and info.base_model_id and info.base_model_id in by_endpoint:
            base = by_endpoint[info.base_model_id]
            if base in present and base != label:
                return label, base
    return (present[0], present[1]) if len(present) >= 2 else None


def fine_tune_pairs(data: CampaignData) -> list[tuple[str, str]]:
    by_endpoint = {info.endpoint_id: label for label, info in data.targets.items() if info.endpoint_id}
    return sorted(
        (label, by_endpoint[info.base_model_id])
        for label, info in data.targets.items()
        if info.base_model_id
        and info.base_model_id in by_endpoint
        and by_endpoint[info.base_model_id] != label
    )


def comparisons(
    bundle: ScoreBundle,
    first: str,
    second: str,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[PairedComparison]:
    """Overall, then per category in which both targets have responses."""
    out = [paired_comparison(bundle.data, first, second, resamples=resamples, seed=seed)]
    target_code = {name: k for k, name in enumerate(bundle.data.targets)}
    for k, category in enumerate(bundle.data.categories):
        in_category = bundle.data.category == k
        if all(
            np.any(in_category & (bundle.data.target == target_code.get(name, -2)))
            for name in (first, second)
        ):
            out.append(
                paired_comparison(
                    bundle.data, first, second, category=category, resamples=resamples, seed=seed
                )
            )
    return out


def label_summary(data: CampaignData) -> dict[str, int]:
    """Counts a page states beside its figures."""
    return {
        "items": len(data.items),
        "labels": len(data.labels),
        "annotators": len(data.rater_pseudonyms),
        "adjudicated": sum(1 for row in data.items.values() if row.gold_source == "adjudication"),
        "consensus": sum(1 for row in data.items.values() if row.gold_source == "consensus"),
        "responses": len(data.responses),
    }


def value_text(value: object) -> str:
    """How a resolved or labelled value reads in a table."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(canonical_value(value) if not isinstance(value, str) else value)
