"""Figures of a campaign cached in the configured Django cache, keyed by the campaign's state.

The first view after a change reads the snapshot (``selectors.campaign_data``) and computes; every
later view with the same state reads the cached result and never loads the snapshot. The state is
``selectors.campaign_state``: a handful of aggregate queries that change whenever a label, an
adjudication, a gold label or a response changes, so a label submitted makes the next view
recompute. The key also holds whether the viewer sees real annotator names, and each page passes
the parameters its figures depend on (field, metric, whether cells link to rows...).

The judge's figures are not cached: whether a judge is trusted is decided in the judging app,
which the state does not see.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache

from accounts.models import User
from accounts.policy import can_see_annotator_names
from annotations.models import Campaign
from scoring import selectors
from scoring.figures import ScoreBundle, campaign_scores, drilldown, pack_row
from scoring.pages import FigureCell
from scoring.rows import CampaignData

T = TypeVar("T")
VERSION = 1  # bump when the shape of a cached value changes


def _timeout() -> int:
    return int(getattr(settings, "SCORING_CACHE_SECONDS", 24 * 3600))


class Snapshot:
    """A campaign's figures for one viewer: the snapshot is read only when a figure is missing."""

    def __init__(self, *, campaign: Campaign, user: User | None) -> None:
        self.campaign = campaign
        self.user = user
        self.real_names = bool(user is not None and can_see_annotator_names(user))
        self.state = selectors.campaign_state(campaign=campaign)
        self._data: CampaignData | None = None
        self._bundles: dict[str, ScoreBundle] = {}
        self.computed: list[str] = []  # the figures this request computed (not read from the cache)

    @property
    def data(self) -> CampaignData:
        if self._data is None:
            self._data = selectors.campaign_data(campaign=self.campaign, user=self.user)
        return self._data

    def bundle(self, source: str) -> ScoreBundle:
        """The scores under ``source``, computed once per request (raises ``SourceUnavailableError``)."""
        if source not in self._bundles:
            self._bundles[source] = campaign_scores(self.data, source)
        return self._bundles[source]

    def key(self, name: str, params: dict[str, Any] | None = None) -> str:
        digest = hashlib.sha256(json.dumps(params or {}, sort_keys=True, default=str).encode()).hexdigest()
        return (
            f"scoring:v{VERSION}:{self.campaign.pk}:{self.state}:{int(self.real_names)}:{name}:{digest[:24]}"
        )

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


SCORE_ROW_FIELDS = ("unsafe", "behaviour", "actionability", "harmfulness", "safe_helpfulness")


def score_rows_build(
    snap: Snapshot, bundle: ScoreBundle, metric: str, target: str | None, category: str | None
) -> dict[str, Any]:
    """The rows behind one figure (packed: ``figures.unpack_row``), without annotators' labels (a
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
