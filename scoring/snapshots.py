"""Figures of a campaign cached in the configured Django cache, keyed by the campaign's state.

The first view after a change reads the snapshot (``selectors.snapshot.campaign_data``) and computes; every
later view with the same state reads the cached result and never loads the snapshot. The state is
``selectors.snapshot.campaign_state``: a handful of aggregate queries that change whenever a label, an
adjudication, a gold label or a response changes, so a label submitted makes the next view
recompute. The key also holds whether the viewer sees real annotator names, and each page passes
the parameters its figures depend on (field, metric, whether cells link to rows...).

The snapshot itself is kept too, in this process's memory (``RecentSnapshots``: the last
``SCORING_SNAPSHOTS_KEPT`` read, by campaign, state and whether names are shown), so the first views
of a campaign's several pages after a change read it once. Its judge labels are read again on every
request that uses the snapshot.

The judge's figures are not cached: whether a judge is trusted is decided in the judging app,
which the state does not see.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, TypeVar, overload

from django.conf import settings
from django.core.cache import cache

from accounts.models import User
from accounts.policy import can_see_annotator_names
from annotations.models import Campaign
from scoring.figures.drilldowns import drilldown, pack_row
from scoring.figures.scores import ScoreBundle, campaign_scores
from scoring.pages.cells import FigureCell
from scoring.resolution import LabelSource
from scoring.rows import CampaignData
from scoring.selectors import snapshot as snapshot_selectors

T = TypeVar("T")
VERSION = 2  # bump when the shape of a cached value changes (2: rows are named tuples, issue 15)


def _timeout() -> int:
    return int(getattr(settings, "SCORING_CACHE_SECONDS", 24 * 3600))


class RecentSnapshots:
    """The campaign snapshots this process read last, least recently used dropped first. Keyed by
    the campaign's state, so an entry is never stale, only unused; bounded by
    ``SCORING_SNAPSHOTS_KEPT`` (read on each use, so a test or a settings change takes effect)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, CampaignData] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _size() -> int:
        return max(0, int(getattr(settings, "SCORING_SNAPSHOTS_KEPT", 2)))

    def get(self, key: Hashable) -> CampaignData | None:
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
            return data

    def put(self, key: Hashable, data: CampaignData) -> None:
        with self._lock:
            self._entries[key] = data
            self._entries.move_to_end(key)
            while len(self._entries) > self._size():
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


recent_snapshots = RecentSnapshots()


class Snapshot:
    """A campaign's figures for one viewer: the snapshot is read only when a figure is missing."""

    def __init__(self, *, campaign: Campaign, user: User | None) -> None:
        self.campaign = campaign
        self.user = user
        self.real_names = bool(user is not None and can_see_annotator_names(user))
        self.state = snapshot_selectors.campaign_state(campaign=campaign)
        self._data: CampaignData | None = None
        self._bundles: dict[str, ScoreBundle] = {}
        self.computed: list[str] = []  # the figures this request computed (not read from the cache)

    @property
    def data(self) -> CampaignData:
        """The snapshot: this process's copy when it read the same state for a viewer who sees the
        same names (with the judge labels this viewer may see read again), else read now."""
        if self._data is None:
            key = (self.campaign.pk, self.state, self.real_names)
            kept = recent_snapshots.get(key)
            if kept is None:
                self._data = snapshot_selectors.campaign_data(campaign=self.campaign, user=self.user)
                recent_snapshots.put(key, self._data)
                # The snapshot's millions of objects were made with the cycle collector paused; the
                # full collection they are due (0.3-0.8 s at 200k responses) runs here, in the view
                # that read them, not in whichever cached view would otherwise set it off later.
                gc.collect()
            else:
                judge_labels, statements, unavailable = snapshot_selectors.campaign_judge_labels(
                    campaign=self.campaign, user=self.user, response_ids=kept.response_ids
                )
                self._data = dataclasses.replace(
                    kept,
                    judge_labels=judge_labels,
                    judge_statements=statements,
                    judge_unavailable=unavailable,
                )
        return self._data

    def bundle(self, source: str) -> ScoreBundle:
        """The scores under ``source`` (raises ``SourceUnavailableError``), computed once per
        snapshot: kept beside a snapshot this process keeps, so the leaderboard's scores serve the
        heatmap, the comparisons and the rows pages that follow. The judge's are computed once per
        request (its labels are read again for each)."""
        if source not in self._bundles:
            kept: dict[str, ScoreBundle] = self.data.cache.setdefault("score_bundles", {})
            if source == LabelSource.JUDGE:
                self._bundles[source] = campaign_scores(self.data, source)
            else:
                if source not in kept:
                    kept[source] = campaign_scores(self.data, source)
                self._bundles[source] = kept[source]
        return self._bundles[source]

    def key(self, name: str, params: dict[str, Any] | None = None) -> str:
        digest = hashlib.sha256(json.dumps(params or {}, sort_keys=True, default=str).encode()).hexdigest()
        return (
            f"scoring:v{VERSION}:{self.campaign.pk}:{self.state}:{int(self.real_names)}:{name}:{digest[:24]}"
        )

    def cached_rows(
        self, name: str, compute: Callable[[], dict[str, Any]], params: dict[str, Any], *, store: bool = True
    ) -> dict[str, Any]:
        """Like ``cached`` for a figure whose ``rows`` is long (a drill-down): the rows are kept in
        chunks of ``ROW_CHUNK`` under keys of their own, so a page reads one chunk, not the whole
        selection, and an export reads them a chunk at a time (``ChunkedRows``)."""
        if not store:
            self.computed.append(name)
            return compute()
        key = self.key(name, params)
        meta = cache.get(key)
        if meta is not None:
            rows = ChunkedRows(key, meta[0]["count"], lambda: self._store_rows(key, compute))
            return {**meta[0], "rows": rows}
        return self._store_rows(key, compute, name)

    def _store_rows(self, key: str, compute: Callable[[], dict[str, Any]], name: str = "") -> dict[str, Any]:
        self.computed.append(name or key)
        value = compute()
        rows = value.get("rows")
        if not isinstance(rows, list):
            cache.set(key, ({**value, "count": 0},), _timeout())
            return value
        chunks = {
            f"{key}:{k}": rows[start : start + ROW_CHUNK]
            for k, start in enumerate(range(0, len(rows), ROW_CHUNK))
        }
        cache.set_many(chunks, _timeout())
        meta = {name_: v for name_, v in value.items() if name_ != "rows"}
        cache.set(key, ({**meta, "count": len(rows)},), _timeout())
        return value

    def cached(
        self, name: str, compute: Callable[[], T], params: dict[str, Any] | None = None, *, store: bool = True
    ) -> T:
        """The figure ``name`` with ``params``: from the cache, else computed and stored."""
        if not store:
            self.computed.append(name)
            return compute()
        key = self.key(name, params)
        hit = cache.get(key)
        if hit is not None:
            return hit[0]
        self.computed.append(name)
        value = compute()
        cache.set(key, (value,), _timeout())
        return value


ROW_CHUNK = 1000


class ChunkedRows(Sequence[Any]):
    """A cached drill-down's rows, read a chunk at a time as they are sliced (a ``Paginator``
    takes ``len`` and one slice). A chunk the cache has dropped makes the selection recompute."""

    def __init__(self, key: str, count: int, recompute: Callable[[], dict[str, Any]]) -> None:
        self.key = key
        self.total = count
        self.recompute = recompute
        self._all: list[Any] | None = None

    def __len__(self) -> int:
        return self.total

    def _chunks(self, first: int, last: int) -> list[Any]:
        keys = [f"{self.key}:{k}" for k in range(first, last + 1)]
        found = cache.get_many(keys)
        if len(found) < len(keys):  # evicted: compute the selection again, and store it
            if self._all is None:
                self._all = list(self.recompute()["rows"])
            return self._all[first * ROW_CHUNK : (last + 1) * ROW_CHUNK]
        return [row for key in keys for row in found[key]]

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, int):
            if index < 0:
                index += self.total
            if not 0 <= index < self.total:
                raise IndexError(index)
            return self._chunks(index // ROW_CHUNK, index // ROW_CHUNK)[index % ROW_CHUNK]
        start, stop, step = index.indices(self.total)
        if start >= stop:
            return []
        first, last = start // ROW_CHUNK, (stop - 1) // ROW_CHUNK
        rows = self._chunks(first, last)
        offset = first * ROW_CHUNK
        return rows[start - offset : stop - offset : step]

    def __iter__(self) -> Iterator[Any]:
        for start in range(0, self.total, ROW_CHUNK):
            yield from self[start : start + ROW_CHUNK]


SCORE_ROW_FIELDS = ("unsafe", "behaviour", "actionability", "harmfulness", "safe_helpfulness")


def score_rows_build(
    snap: Snapshot, bundle: ScoreBundle, metric: str, target: str | None, category: str | None
) -> dict[str, Any]:
    """The rows behind one figure (packed: ``figures.drilldowns.unpack_row``), without annotators' labels (a
    page reads those for its own rows, an export a batch at a time): what the page, the API and
    the exports page through, cached."""
    if (target and target not in bundle.targets) or (category and category not in bundle.categories):
        return {"missing": True}
    found, numerator, denominator = drilldown(
        bundle, snap.data, metric, target=target, category=category, with_labels=False
    )
    figure = bundle.scores.cell(target, category).figures[metric]
    return {
        "rows": [pack_row(row) for row in found],
        "numerator": numerator,
        "denominator": denominator,
        "figure": FigureCell(metric, figure, ""),
        "category_name": snap.data.categories.get(category or "", category),
        "label_fields": [spec for spec in snap.data.specs if spec.name in SCORE_ROW_FIELDS],
    }
