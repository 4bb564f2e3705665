"""The rows of one campaign snapshot: plain records with no Django import, so the figures
(``scoring.figures``) and their tests can use them without settings or a database.

``ItemRow``, ``LabelRow`` and ``ResponseRow`` are named tuples, not dataclasses: a snapshot holds
hundreds of thousands of them, and the snapshot read (``scoring.selectors.snapshot``) makes them
straight from the driver's columns with ``tuple.__new__``, without a Python call per row (a frozen
dataclass costs one ``object.__setattr__`` per field; about five times slower at 580,000 labels).
They read as before (``label.values``, ``row.gold``...), are immutable, and are copied with a change
by ``row._replace(...)`` (``dataclasses.replace`` does not take them)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from annotations.rubric_schema import FieldSpec


class ItemRow(NamedTuple):
    item_id: int
    query_id: int
    query_external_id: str
    category: str  # category slug
    expected: str  # the query's expected behaviour ("" when not set)
    response_id: int | None
    run_id: int | None
    target: str | None  # RunTarget.label: the model or pipeline
    required_labels: int
    gold: dict[str, Any] | None  # adjudicated, else consensus (see ``scoring.resolution``)
    gold_source: str  # "adjudication", "consensus" or ""
    adjudication_id: int | None


class LabelRow(NamedTuple):
    label_id: int
    item_id: int
    rater: str  # ``Label.rater_key``: "user:<id>" or "external:<name>"
    annotator_id: int | None
    values: dict[str, Any]
    created_at: datetime
    revision: int
    guideline_id: int | None
    guideline_hash: str


class ResponseRow(NamedTuple):
    response_id: int
    run_id: int
    query_id: int
    query_external_id: str
    category: str
    expected: str
    target: str
    outcome: str
    guard_categories: tuple[str, ...]


@dataclass(frozen=True)
class TargetInfo:
    label: str
    endpoint_id: int | None
    base_model_id: int | None
    pipeline_id: int | None
    run_target_ids: tuple[int, ...]


@dataclass
class CampaignData:
    """Everything the figures of one campaign are computed from, read once."""

    campaign_id: int
    campaign_name: str
    target_kind: str  # "response" or "query"
    specs: list[FieldSpec]
    items: dict[int, ItemRow]
    labels: list[LabelRow]
    responses: list[ResponseRow]
    targets: dict[str, TargetInfo]
    categories: dict[str, str]  # slug -> name
    rater_names: dict[str, str]  # rater key -> the name shown (pseudonym unless allowed)
    rater_pseudonyms: dict[str, str]  # rater key -> "Annotator A", ...
    run_ids: list[int] = field(default_factory=list)
    # The rubric version's metric map (``annotations.metric_map``); empty: the default map.
    metric_map: dict[str, Any] = field(default_factory=dict)
    # Labels of judges trusted for a field (``judging.selectors.trusted_judge_labels``): response id
    # -> {field: value}, and what the pages say about them ("judge X, template v3, audited on ...").
    judge_labels: dict[int, dict[str, Any]] = field(default_factory=dict)
    judge_statements: list[str] = field(default_factory=list)
    judge_unavailable: str = ""
    # Figures computed from the snapshot and reused by the page (one rating table per field).
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def spec(self, name: str) -> FieldSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def response_ids(self) -> set[int]:
        return {row.response_id for row in self.responses}

    @property
    def categorical_specs(self) -> list[FieldSpec]:
        return [spec for spec in self.specs if spec.is_categorical]

    @property
    def primary_spec(self) -> FieldSpec | None:
        return next((spec for spec in self.specs if spec.primary), None)

    def labels_by_item(self) -> dict[int, list[LabelRow]]:
        """Labels per item, grouped once per snapshot (kept in ``cache``): read-only for callers."""
        if "labels_by_item" not in self.cache:
            grouped: dict[int, list[LabelRow]] = {}
            for label in self.labels:
                grouped.setdefault(label.item_id, []).append(label)
            self.cache["labels_by_item"] = grouped
        found: dict[int, list[LabelRow]] = self.cache["labels_by_item"]
        return found

    def fingerprint(self) -> str:
        """sha256 of what the figures rest on: every label (id, revision), every gold label and
        every response (id, outcome). A report states it; the same fingerprint means the same data."""
        parts = {
            "campaign": self.campaign_id,
            "labels": sorted((label.label_id, label.revision) for label in self.labels),
            "gold": sorted(
                (row.item_id, row.gold_source, row.adjudication_id, json.dumps(row.gold, sort_keys=True))
                for row in self.items.values()
            ),
            "responses": sorted((row.response_id, row.outcome) for row in self.responses),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
