"""Ratings as an items x raters table of category codes, built from long records or a matrix.

Category order (it matters for weighted kappa, AC2 and ordinal/interval alpha):

* declared categories (``categories=[...]``) are used in the order given, and a value outside
  them is an error;
* otherwise, if every value is a number (or a string that reads as a finite number), the
  categories are the distinct numbers sorted numerically; ``"1"``, ``1`` and ``1.0`` are one
  category;
* otherwise the categories are the distinct values in the order first seen, and the table is
  marked *unordered*: statistics that depend on the order are then not computable when there
  are three or more categories (with two, every order gives the same number).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

MISSING = -1


class RatingsError(ValueError):
    """The ratings cannot form a table: duplicate ratings, unknown categories, bad ids."""


def canonical_value(value: object) -> Hashable | None:
    """One spelling per category: numbers and numeric strings become ``int``/``float``.

    ``None``, empty strings and float NaN mean "not rated" and return ``None``.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        return _number(number) if math.isfinite(number) else number
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return text
        return _number(number) if math.isfinite(number) else text
    if isinstance(value, Hashable):
        return value
    raise RatingsError(f"A rating must be a number or a label, not {type(value).__name__}.")


def _number(number: float) -> int | float:
    return int(number) if number.is_integer() else number


def is_number(value: Hashable) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class RatingTable:
    """Ratings of one field: ``codes[item, rater]`` indexes ``categories``; ``MISSING`` is -1."""

    codes: np.ndarray
    categories: tuple[Hashable, ...]
    ordered: bool
    item_ids: tuple[Hashable, ...]
    rater_ids: tuple[Hashable, ...]

    def __post_init__(self) -> None:
        codes = np.asarray(self.codes)
        if codes.ndim != 2:
            raise RatingsError("The codes must form an items x raters matrix.")
        if codes.shape != (len(self.item_ids), len(self.rater_ids)):
            raise RatingsError("The codes do not match the item and rater ids.")
        if codes.size and (codes.min() < MISSING or codes.max() >= len(self.categories)):
            raise RatingsError("A code points outside the categories.")
        object.__setattr__(self, "codes", codes.astype(np.int32, copy=False))

    # ----- constructors

    @classmethod
    def from_records(
        cls,
        records: Iterable[tuple[Hashable, Hashable, object]],
        *,
        categories: Sequence[object] | None = None,
    ) -> RatingTable:
        """From ``(item, rater, value)`` triples; a ``None``/empty value is a missing rating.

        A rater rating the same item twice is an error (``RatingsError``), as is a value outside
        the declared categories.
        """
        item_index: dict[Hashable, int] = {}
        rater_index: dict[Hashable, int] = {}
        cells: dict[tuple[int, int], Hashable] = {}
        for item, rater, raw in records:
            value = canonical_value(raw)
            i = item_index.setdefault(item, len(item_index))
            r = rater_index.setdefault(rater, len(rater_index))
            if value is None:
                continue
            if (i, r) in cells:
                raise RatingsError(f"Rater {rater!r} rated item {item!r} more than once.")
            cells[(i, r)] = value
        order, ordered = order_categories(cells.values(), categories)
        position = {category: k for k, category in enumerate(order)}
        codes = np.full((len(item_index), len(rater_index)), MISSING, dtype=np.int32)
        if cells:
            where = np.array(list(cells.keys()), dtype=np.int64)
            codes[where[:, 0], where[:, 1]] = [position[value] for value in cells.values()]
        return cls(codes, order, ordered, tuple(item_index), tuple(rater_index))

    @classmethod
    def from_matrix(
        cls,
        rows: Sequence[Sequence[object]],
        *,
        categories: Sequence[object] | None = None,
        item_ids: Sequence[Hashable] | None = None,
        rater_ids: Sequence[Hashable] | None = None,
    ) -> RatingTable:
        """From an items x raters matrix with ``None`` (or NaN) for a missing rating."""
        n_raters = max((len(row) for row in rows), default=0)
        items = tuple(item_ids) if item_ids is not None else tuple(range(len(rows)))
        raters = tuple(rater_ids) if rater_ids is not None else tuple(range(n_raters))
        if len(items) != len(rows) or any(len(row) != len(raters) for row in rows):
            raise RatingsError("Every row needs one entry per rater, and one id per row.")
        return cls.from_records(
            ((items[i], raters[r], value) for i, row in enumerate(rows) for r, value in enumerate(row)),
            categories=categories,
        ).reindexed(items, raters)

    @classmethod
    def from_codes(
        cls,
        codes: np.ndarray,
        categories: Sequence[Hashable],
        *,
        ordered: bool = True,
        item_ids: Sequence[Hashable] | None = None,
        rater_ids: Sequence[Hashable] | None = None,
    ) -> RatingTable:
        """From integer codes into ``categories`` (``-1`` missing): the fast path for large data."""
        codes = np.asarray(codes)
        items = tuple(item_ids) if item_ids is not None else tuple(range(codes.shape[0]))
        raters = tuple(rater_ids) if rater_ids is not None else tuple(range(codes.shape[1]))
        return cls(codes, tuple(categories), ordered, items, raters)

    def reindexed(self, item_ids: Sequence[Hashable], rater_ids: Sequence[Hashable]) -> RatingTable:
        """The same ratings with items and raters in the given order (ids without ratings allowed)."""
        item_pos = {item: k for k, item in enumerate(self.item_ids)}
        rater_pos = {rater: k for k, rater in enumerate(self.rater_ids)}
        rows = np.array([item_pos.get(item, -1) for item in item_ids], dtype=np.int64)
        cols = np.array([rater_pos.get(rater, -1) for rater in rater_ids], dtype=np.int64)
        codes = np.full((len(rows), len(cols)), MISSING, dtype=np.int32)
        if self.codes.size:
            taken = self.codes[np.maximum(rows, 0)][:, np.maximum(cols, 0)]
            known = (rows >= 0)[:, None] & (cols >= 0)[None, :]
            codes[known] = taken[known]
        return RatingTable(codes, self.categories, self.ordered, tuple(item_ids), tuple(rater_ids))

    # ----- views used by the statistics

    @property
    def n_categories(self) -> int:
        return len(self.categories)

    @cached_property
    def counts(self) -> np.ndarray:
        """``counts[item, category]``: how many raters put the item in the category."""
        n_items, q = self.codes.shape[0], self.n_categories
        items, raters = self.rated_cells
        flat = items * q + self.codes[items, raters]
        return np.bincount(flat, minlength=n_items * q).reshape(n_items, q)

    @cached_property
    def rated(self) -> np.ndarray:
        """``codes >= 0``: which rater rated which item."""
        return np.asarray(self.codes >= 0)

    @cached_property
    def rated_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """The (item, rater) positions of every rating, item by item (``np.nonzero(rated)``)."""
        items, raters = np.nonzero(self.rated)
        return items, raters

    @cached_property
    def raters_with_ratings(self) -> np.ndarray:
        """Per rater column: whether the rater rated any item."""
        return np.asarray(self.rated.any(axis=0))

    @cached_property
    def patterns(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct count vectors among rated items (P x q) and how many items show each (P).

        Every statistic here depends on an item only through its count vector, so they are
        computed once per distinct vector; sorted by an integer key, hence deterministic.
        """
        counts = self.counts[self.ratings_per_item > 0]
        q = self.n_categories
        if len(counts) == 0:
            return np.zeros((0, q), dtype=np.int64), np.zeros(0, dtype=np.int64)
        base = int(counts.max()) + 1
        if q * math.log2(base) < 62:
            # One int64 key per row: a 1-D sort is far faster than np.unique(axis=0).
            keys = counts.astype(np.int64) @ (base ** np.arange(q, dtype=np.int64))
            _, first, freq = np.unique(keys, return_index=True, return_counts=True)
            return counts[first], freq
        unique, freq = np.unique(counts, axis=0, return_counts=True)
        return unique, freq

    @cached_property
    def ratings_per_item(self) -> np.ndarray:
        return self.rated.sum(axis=1)

    @property
    def n_items(self) -> int:
        """Items with at least one rating."""
        return int((self.ratings_per_item > 0).sum())

    @property
    def n_raters(self) -> int:
        """Raters with at least one rating."""
        return int(self.raters_with_ratings.sum())

    def scale_values(self) -> np.ndarray:
        """Numbers for the interval metric: the category values when all are numbers, else 0..q-1."""
        if self.categories and all(is_number(c) for c in self.categories):
            return np.array(self.categories, dtype=float)
        return np.arange(self.n_categories, dtype=float)

    def pair(self, first: int, second: int) -> np.ndarray:
        """``table[a, b]``: items that rater ``first`` put in ``a`` and rater ``second`` in ``b``."""
        a, b = self.codes[:, first], self.codes[:, second]
        both = (a >= 0) & (b >= 0)
        q = self.n_categories
        return np.bincount(a[both] * q + b[both], minlength=q * q).reshape(q, q)


def order_categories(
    values: Iterable[Hashable], declared: Sequence[object] | None
) -> tuple[tuple[Hashable, ...], bool]:
    """The category order and whether it is meaningful (see the module docstring)."""
    seen = list(dict.fromkeys(values))
    if declared is not None:
        order = [canonical_value(c) for c in declared]
        if any(c is None for c in order):
            raise RatingsError("A declared category is empty.")
        if len(set(order)) != len(order):
            raise RatingsError("A declared category is listed twice.")
        unknown = [v for v in seen if v not in set(order)]
        if unknown:
            listed = ", ".join(repr(v) for v in unknown[:5])
            raise RatingsError(f"Value(s) {listed} are not among the declared categories.")
        return tuple(order), True
    if seen and all(is_number(v) for v in seen):
        return tuple(sorted(seen)), True  # type: ignore[type-var]
    return tuple(seen), False
