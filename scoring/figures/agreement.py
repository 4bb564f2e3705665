"""Inter-annotator agreement of one field: the items x raters table built from the snapshot, the
coefficients per slice (all items, per category, per model) and the annotator pair matrix."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from annotations.rubric_schema import FieldSpec, Kind
from core.collector import without_collector
from medharm_stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Estimate,
    FieldAgreement,
    PairAgreement,
    RatingTable,
    field_agreement,
)
from medharm_stats.agreement import pair_agreements, pair_tables
from scoring.rows import CampaignData


def level_for(spec: FieldSpec) -> str:
    """Krippendorff's alpha level from the field's kind: ordinal scales by their declared order,
    interval scales by their points' distances."""
    return {Kind.ORDINAL: "ordinal", Kind.INTERVAL: "interval"}.get(spec.kind, "nominal")


def kappa_weighting(spec: FieldSpec) -> str:
    """Cohen's kappa variant shown for a field: linear weights for ordered scales, none otherwise."""
    return "linear" if spec.is_ordered else "none"


def kappa_of(pair: PairAgreement, spec: FieldSpec) -> Estimate:
    return pair.cohen_kappa_linear if kappa_weighting(spec) == "linear" else pair.cohen_kappa


def declared_options(spec: FieldSpec) -> list[object]:
    """The field's categories for the agreement statistics: its options in the declared order,
    used or not, without the option that means "missing" (docs/scores.md, "Declared categories")."""
    return [option.value for option in spec.rating_options]


def is_known_option(spec: FieldSpec, value: object) -> bool:
    return any(option.value == value and type(option.value) is type(value) for option in spec.rating_options)


@dataclass(frozen=True)
class FieldTable:
    table: RatingTable
    off_rubric: int  # values outside the field's options (e.g. an imported file), left out


def label_columns(data: CampaignData) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """Every label's item id and rater column (raters in pseudonym order), as arrays read once
    per snapshot; ``None`` when a label's rater has no pseudonym (a hand-made snapshot)."""
    if "label_columns" not in data.cache:
        raters = {rater: k for k, rater in enumerate(data.rater_pseudonyms)}
        try:
            columns = np.fromiter((raters[label.rater] for label in data.labels), np.int32, len(data.labels))
        except KeyError:
            data.cache["label_columns"] = None
        else:
            items = np.fromiter((label.item_id for label in data.labels), np.int64, len(data.labels))
            data.cache["label_columns"] = (items, columns, list(raters))
    found: tuple[np.ndarray, np.ndarray, list[str]] | None = data.cache["label_columns"]
    return found


def field_codes(data: CampaignData, spec: FieldSpec) -> np.ndarray:
    """Each label's code for the field (``value_codes``), computed once per snapshot and field."""
    cache = data.cache.setdefault("field_codes", {})
    if spec.name not in cache:
        cache[spec.name] = value_codes(
            spec, list(map(dict.get, label_values(data), itertools.repeat(spec.name)))
        )
    found: np.ndarray = cache[spec.name]
    return found


_NUMBERS = frozenset({bool, int, float})
_PLAIN = _NUMBERS | {str, type(None)}


def value_codes(spec: FieldSpec, values: list[object]) -> np.ndarray:
    """Each value's code for the field: its option's position, ``-1`` when it is empty (None) or
    "missing", ``-2`` when it is not one of the field's options (a list among them). Type and
    value: True and 1 are different options (a binary field is not a 0-1 scale)."""
    position: dict[tuple[type, object], int] = {
        (type(o.value), o.value): k for k, o in enumerate(spec.rating_options)
    }
    seen: dict[tuple[type, object], int] = {}

    def code(value: object) -> int:
        if value is None:
            return -1
        key = (type(value), value)
        try:
            known = seen.get(key)
        except TypeError:  # an unhashable value (a list) is no option of any field
            return -2
        if known is None:
            known = seen[key] = -1 if spec.is_missing(value) else position.get(key, -2)
        return known

    types = set(map(type, values))
    if types <= _PLAIN and len(types & _NUMBERS) <= 1:
        # No two values of different types are equal (True == 1 needs two number types): each
        # distinct value coded once, then every value by one lookup (C-level maps).
        by_value = {value: code(value) for value in set(values)}
        return np.fromiter(map(by_value.__getitem__, values), np.int32, len(values))
    try:
        # Each distinct (type, value) coded once, then every value by one lookup (C-level maps).
        codes = {key: code(key[1]) for key in set(zip(map(type, values), values, strict=True))}
    except TypeError:  # an unhashable value (a list): one value at a time
        return np.fromiter(map(code, values), np.int32, len(values))
    return np.fromiter(
        map(codes.__getitem__, zip(map(type, values), values, strict=True)), np.int32, len(values)
    )


def label_values(data: CampaignData) -> list[dict[str, object]]:
    """Every label's values, in label order, listed once per snapshot."""
    if "label_values" not in data.cache:
        data.cache["label_values"] = [label.values for label in data.labels]
    found: list[dict[str, object]] = data.cache["label_values"]
    return found


def _full_table(data: CampaignData, spec: FieldSpec) -> tuple[RatingTable, dict[int, int], dict[int, int]]:
    """The field's table over every labelled item, built once per snapshot and field with array
    operations; with the row of each item (in the order items were first labelled) and the number
    of off-rubric values per item."""
    cache = data.cache.setdefault("field_tables", {})
    if spec.name in cache:
        return cache[spec.name]
    columns = label_columns(data)
    if columns is None:
        cache[spec.name] = _full_table_by_label(data, spec)
        return cache[spec.name]
    _, label_raters, raters = columns
    codes_of = field_codes(data, spec)
    all_ids, label_item = _label_items(data)
    valid = np.flatnonzero(codes_of >= 0)  # label positions, ascending
    rated = label_item[valid]
    # Rows in the order items were first labelled (with a rating of this field): the first valid
    # label of each item, found without a sort.
    first = np.full(len(all_ids), len(codes_of), dtype=np.int64)
    np.minimum.at(first, rated, valid)
    firsts = rated[first[rated] == valid]  # items, in the order of their first rating
    row_of = np.full(len(all_ids), -1, dtype=np.int64)  # by position in ``all_ids``
    row_of[firsts] = np.arange(len(firsts))
    codes = np.full((len(firsts), len(raters)), -1, dtype=np.int32)
    codes[row_of[rated], label_raters[valid]] = codes_of[valid]
    item_order = all_ids[firsts].tolist()
    off_count = np.bincount(label_item[codes_of == -2], minlength=len(all_ids))
    off_items = np.flatnonzero(off_count)
    table = RatingTable.from_codes(
        codes, declared_options(spec), ordered=True, item_ids=item_order, rater_ids=raters
    )
    items = dict(zip(item_order, range(len(item_order)), strict=True))
    data.cache.setdefault("field_table_arrays", {})[spec.name] = (row_of, off_count)
    off = dict(zip(all_ids[off_items].tolist(), off_count[off_items].tolist(), strict=True))
    cache[spec.name] = (table, items, off)
    return cache[spec.name]


def _label_items(data: CampaignData) -> tuple[np.ndarray, np.ndarray]:
    """The labelled items' ids sorted, and each label's position among them: once per snapshot."""
    if "label_items" not in data.cache:
        found = label_columns(data)
        assert found is not None
        data.cache["label_items"] = np.unique(found[0], return_inverse=True)
    items: tuple[np.ndarray, np.ndarray] = data.cache["label_items"]
    return items


def _full_table_by_label(
    data: CampaignData, spec: FieldSpec
) -> tuple[RatingTable, dict[int, int], dict[int, int]]:
    """``_full_table`` one label at a time, for a snapshot whose raters are not all named."""
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
        codes, declared_options(spec), ordered=True, item_ids=list(items), rater_ids=list(raters)
    )
    return table, items, off


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


@dataclass(frozen=True)
class _ItemColumns:
    """Every item's id, category and model (target) in ``data.items`` order, the last two as
    codes into their distinct values (first seen first): read once per snapshot."""

    ids: np.ndarray
    categories: list[str]
    category: np.ndarray
    targets: list[str | None]
    target: np.ndarray


def _item_columns(data: CampaignData) -> _ItemColumns:
    if "item_columns" not in data.cache:
        rows = list(data.items.values())
        categories: dict[str, int] = {}
        targets: dict[str | None, int] = {}
        category = np.fromiter(
            (categories.setdefault(row.category, len(categories)) for row in rows), np.int64, len(rows)
        )
        target = np.fromiter(
            (targets.setdefault(row.target, len(targets)) for row in rows), np.int64, len(rows)
        )
        ids = np.fromiter((row.item_id for row in rows), np.int64, len(rows))
        data.cache["item_columns"] = _ItemColumns(ids, list(categories), category, list(targets), target)
    columns: _ItemColumns = data.cache["item_columns"]
    return columns


def _table_rows(data: CampaignData, spec: FieldSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per item in ``data.items`` order: its row in the field's full table (-1: no rating) and its
    number of off-rubric values; once per snapshot and field."""
    cache = data.cache.setdefault("field_table_rows", {})
    if spec.name not in cache:
        _, rows, off = _full_table(data, spec)
        ids = _item_columns(data).ids
        arrays = data.cache.get("field_table_arrays", {}).get(spec.name)
        if arrays is None:  # the label-by-label table
            cache[spec.name] = (_lookup(ids, rows, -1), _lookup(ids, off, 0))
        else:
            all_ids = _label_items(data)[0]
            row_of, off_count = arrays
            at = np.minimum(np.searchsorted(all_ids, ids), max(len(all_ids) - 1, 0))
            hit = all_ids[at] == ids if len(all_ids) else np.zeros(len(ids), dtype=bool)
            cache[spec.name] = (
                np.where(hit, row_of[at] if len(all_ids) else -1, -1),
                np.where(hit, off_count[at] if len(all_ids) else 0, 0),
            )
    found: tuple[np.ndarray, np.ndarray] = cache[spec.name]
    return found


def _lookup(ids: np.ndarray, found: dict[int, int], default: int) -> np.ndarray:
    """``[found.get(item, default) for item in ids]`` as an array, by a sorted search."""
    keys = np.fromiter(found.keys(), np.int64, len(found))
    values = np.fromiter(found.values(), np.int64, len(found))
    out = np.full(len(ids), default, dtype=np.int64)
    if len(keys) and len(ids):
        order = np.argsort(keys, kind="stable")
        keys, values = keys[order], values[order]
        position = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        hit = keys[position] == ids
        out[hit] = values[position[hit]]
    return out


def _masked_table(data: CampaignData, spec: FieldSpec, mask: np.ndarray) -> FieldTable:
    """``field_table`` over the items where ``mask`` (over ``data.items`` order) holds: the same
    table (rows in ``data.items`` order), selected with array operations."""
    table = _full_table(data, spec)[0]
    item_row, off = _table_rows(data, spec)
    chosen = mask & (item_row >= 0)
    index = item_row[chosen]
    ids = _item_columns(data).ids[chosen].tolist()
    codes = table.codes[index] if len(index) else np.zeros((0, len(table.rater_ids)), dtype=np.int32)
    sliced = RatingTable.from_codes(
        codes, table.categories, ordered=True, item_ids=ids, rater_ids=table.rater_ids
    )
    return FieldTable(sliced, int(off[mask].sum()))


def _slice_agreement(
    data: CampaignData,
    spec: FieldSpec,
    kind: str,
    key: str | None,
    label: str,
    mask: np.ndarray,
    *,
    resamples: int,
    seed: int,
    pairs: bool = True,
    scope: str | None = None,
) -> AgreementRow:
    """One slice's row. The figures of the items of ``kind``/``key`` within ``scope`` (a model, or
    None for all) are kept in the snapshot's cache: the agreement page asks for the field's "all
    items" slice twice (the summary and the slices) and a later page of the same snapshot again."""
    kept = data.cache.setdefault("slice_agreement", {})
    cache_key = (spec.name, kind, key, scope, resamples, seed, pairs)
    if cache_key not in kept:
        built = _masked_table(data, spec, mask)
        result = field_agreement(
            built.table,
            level=level_for(spec),  # type: ignore[arg-type]
            resamples=resamples,
            seed=seed,
            pairs=pairs,
        )
        kept[cache_key] = (int(built.table.ratings_per_item.sum()), result, built.off_rubric)
    n_labels, result, off_rubric = kept[cache_key]
    return AgreementRow(kind, key, label, n_labels, result, off_rubric)


@without_collector
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
    pages show the pair matrix instead; the API and reports keep them). Each slice's table is
    selected from the field's full table by an item mask (one pass over the items per slice kind)."""
    items = _item_columns(data)
    code_of_target = {target: code for code, target in enumerate(items.targets)}
    if model is None:
        scope = np.ones(len(items.ids), dtype=bool)
    else:
        scope = items.target == code_of_target.get(model, -1)
    options: dict[str, Any] = {"resamples": resamples, "seed": seed, "pairs": pairs, "scope": model}
    rows = [
        _slice_agreement(
            data,
            spec,
            "all",
            None,
            "All items" if model is None else f"All items of {model}",
            scope,
            **options,
        )
    ]
    in_scope = np.unique(items.category[scope])
    for slug in sorted((items.categories[c] for c in in_scope), key=lambda s: data.categories.get(s, s)):
        mask = scope & (items.category == items.categories.index(slug))
        rows.append(
            _slice_agreement(data, spec, "category", slug, data.categories.get(slug, slug), mask, **options)
        )
    if model is None:
        for target in sorted(t for t in items.targets if t):
            mask = items.target == code_of_target[target]
            rows.append(_slice_agreement(data, spec, "model", target, target, mask, **options))
    return rows


@without_collector
def agreement_summary(
    data: CampaignData, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, pairs: bool = True
) -> list[tuple[FieldSpec, AgreementRow]]:
    """Every categorical field over all items."""
    every = np.ones(len(data.items), dtype=bool)
    return [
        (
            spec,
            _slice_agreement(
                data, spec, "all", None, spec.label, every, resamples=resamples, seed=seed, pairs=pairs
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
    tables = pair_tables(table.codes, table.n_categories, cells=table.rated_cells)[0]  # all pairs, one pass
    shared = tables.sum(axis=(2, 3)) + tables.sum(axis=(2, 3)).T  # raters x raters: items both labelled
    wanted = [
        (column[first], column[second])
        for i, first in enumerate(raters)
        for second in raters[i + 1 :]
        if shared[column[first], column[second]] > 0
    ]
    cells = {}
    for pair in pair_agreements(table, wanted, tables=tables):
        first, second = str(pair.raters[0]), str(pair.raters[1])
        cells[(first, second)] = cells[(second, first)] = pair
    return PairMatrix(raters, [data.rater_names[r] for r in raters], cells, kappa_weighting(spec))
