"""What a release holds: one table spec per table, with its columns and a streaming row source.

Rows come from ``values_list(...).iterator()``, so a table is never held whole in memory; each
spec names its tier(s). Annotators and adjudicators appear under per-release pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.db.models import QuerySet

from annotations.models import Adjudication, CampaignItem, Guideline, Label, Rubric, RubricField
from evaluations.models import ModelResponse
from querybank.models import Query
from releases.models import Release, Tier

CHUNK = 2000


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text", "int", "float", "bool"

    @property
    def arrow_type(self) -> pa.DataType:
        return {"text": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}[self.kind]

    @property
    def croissant_type(self) -> str:
        return {"text": "sc:Text", "int": "sc:Integer", "float": "sc:Float", "bool": "sc:Boolean"}[self.kind]


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[Column, ...]
    tiers: tuple[str, ...]
    count: Callable[[], int]
    rows: Callable[[], Iterator[dict[str, Any]]]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow_type) for c in self.columns])


def _cols(spec: str) -> tuple[Column, ...]:
    """``"id:int query_id:int text"`` → columns (text when no kind is given)."""
    out = []
    for part in spec.split():
        name, _, kind = part.partition(":")
        out.append(Column(name, kind or "text"))
    return tuple(out)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def pseudonym(release: Release, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{release.slug}:{user_id}".encode(), hashlib.sha256)
    return "rater-" + digest.hexdigest()[:12]


def _stream(qs: QuerySet, fields: tuple[str, ...], convert: Callable[[dict[str, Any]], dict[str, Any]]):
    def rows() -> Iterator[dict[str, Any]]:
        for values in qs.values_list(*fields).iterator(chunk_size=CHUNK):
            yield convert(dict(zip(fields, values, strict=True)))

    return rows


def table_specs(
    release: Release, *, score_rows: list[dict[str, Any]], sample_ids: list[int]
) -> list[TableSpec]:
    campaign_ids = list(release.campaigns.values_list("pk", flat=True))
    items = CampaignItem.objects.filter(campaign_id__in=campaign_ids)
    queries = Query.objects.filter(pk__in=items.values("query_id")).order_by("pk")
    responses = ModelResponse.objects.filter(pk__in=items.values("response_id")).order_by("pk")
    labels = Label.objects.filter(campaign_id__in=campaign_ids).order_by("pk")
    adjudications = Adjudication.objects.filter(item__campaign_id__in=campaign_ids).order_by("pk")
    rubric_ids = set(labels.values_list("rubric_id", flat=True).distinct()) | set(
        release.campaigns.values_list("rubric_id", flat=True)
    )
    fields = RubricField.objects.filter(rubric_id__in=rubric_ids).order_by(
        "rubric__slug", "rubric__version", "position", "pk"
    )
    both = (Tier.PUBLIC, Tier.RESTRICTED)
    restricted = (Tier.RESTRICTED,)

    def query_row(v: dict[str, Any]) -> dict[str, Any]:
        return {
            "query_id": v["pk"],
            "external_id": v["external_id"],
            "text": v["text"],
            "category": v["category__slug"],
            "taxonomy": v["category__taxonomy__slug"],
            "expected_behaviour": v["expected_behaviour"],
            "severity": v["severity"],
            "source": v["source"],
        }

    query_fields = (
        "pk",
        "external_id",
        "text",
        "category__slug",
        "category__taxonomy__slug",
        "expected_behaviour",
        "severity",
        "source",
    )
    query_cols = _cols("query_id:int external_id text category taxonomy expected_behaviour severity source")
    sample = queries.filter(pk__in=sample_ids)

    def response_row(v: dict[str, Any]) -> dict[str, Any]:
        config = v["target__config"] or {}
        return {
            "response_id": v["pk"],
            "query_id": v["query_id"],
            "run_id": v["run_id"],
            "run_name": v["run__name"],
            "target": v["target__label"],
            "model_name": (config.get("model") or {}).get("model_name"),
            "resolved_model": v["resolved_model"],
            "sample_index": v["sample_index"],
            "outcome": v["outcome"],
            "text": v["text"],
            "finish_reason": v["finish_reason"],
            "request": _json(v["request"]),
            "raw_reply": _json(v["raw_reply"]),
            "input_guard": _json(v["input_guard"]),
            "output_guard": _json(v["output_guard"]),
            "target_config": _json(config),
            "input_tokens": v["input_tokens"],
            "output_tokens": v["output_tokens"],
            "latency_ms": v["latency_ms"],
            "finished_at": _iso(v["finished_at"]),
        }

    response_fields = (
        "pk",
        "query_id",
        "run_id",
        "run__name",
        "target__label",
        "target__config",
        "resolved_model",
        "sample_index",
        "outcome",
        "text",
        "finish_reason",
        "request",
        "raw_reply",
        "input_guard",
        "output_guard",
        "input_tokens",
        "output_tokens",
        "latency_ms",
        "finished_at",
    )

    def item_row(v: dict[str, Any]) -> dict[str, Any]:
        return {
            "item_id": v["pk"],
            "campaign_id": v["campaign_id"],
            "query_id": v["query_id"],
            "response_id": v["response_id"],
            "required_labels": v["required_labels"],
            "label_count": v["label_count"],
            "agreement": v["agreement"],
            "disputed": v["disputed"],
            "gold_values": _json(v["gold_values"]),
            "gold_source": v["gold_source"],
        }

    item_fields = (
        "pk",
        "campaign_id",
        "query_id",
        "response_id",
        "required_labels",
        "label_count",
        "agreement",
        "disputed",
        "gold_values",
        "gold_source",
    )

    def label_row(v: dict[str, Any]) -> dict[str, Any]:
        return {
            "label_id": v["pk"],
            "campaign_id": v["campaign_id"],
            "item_id": v["item_id"],
            "query_id": v["item__query_id"],
            "response_id": v["item__response_id"],
            "rater": pseudonym(release, v["annotator_id"]) or f"external:{v['external_rater']}",
            "rubric": v["rubric__slug"],
            "rubric_version": v["rubric__version"],
            "guideline_version": v["guideline__version"],
            "guideline_sha256": v["guideline_hash"],
            "values": _json(v["values"]),
            "revision": v["revision"],
            "created_at": _iso(v["created_at"]),
        }

    label_fields = (
        "pk",
        "campaign_id",
        "item_id",
        "item__query_id",
        "item__response_id",
        "annotator_id",
        "external_rater",
        "rubric__slug",
        "rubric__version",
        "guideline__version",
        "guideline_hash",
        "values",
        "revision",
        "created_at",
    )

    def adjudication_row(v: dict[str, Any]) -> dict[str, Any]:
        return {
            "adjudication_id": v["pk"],
            "item_id": v["item_id"],
            "campaign_id": v["item__campaign_id"],
            "adjudicator": pseudonym(release, v["adjudicator_id"]),
            "values": _json(v["values"]),
            "rationale": v["rationale"],
            "rubric": v["rubric__slug"],
            "rubric_version": v["rubric__version"],
            "guideline_version": v["guideline__version"],
            "guideline_sha256": v["guideline_hash"],
            "supersedes_id": v["supersedes_id"],
            "imported": v["imported"],
            "created_at": _iso(v["created_at"]),
        }

    adjudication_fields = (
        "pk",
        "item_id",
        "item__campaign_id",
        "adjudicator_id",
        "values",
        "rationale",
        "rubric__slug",
        "rubric__version",
        "guideline__version",
        "guideline_hash",
        "supersedes_id",
        "imported",
        "created_at",
    )

    def field_row(v: dict[str, Any]) -> dict[str, Any]:
        return {
            "rubric": v["rubric__slug"],
            "rubric_version": v["rubric__version"],
            "rubric_sha256": v["rubric__content_hash"],
            "field": v["name"],
            "label": v["label"],
            "kind": v["kind"],
            "required": v["required"],
            "primary": v["primary"],
            "options": _json(v["options"]),
            "options_source": v["options_source"],
            "help_text": v["help_text"],
        }

    field_fields = (
        "rubric__slug",
        "rubric__version",
        "rubric__content_hash",
        "name",
        "label",
        "kind",
        "required",
        "primary",
        "options",
        "options_source",
        "help_text",
    )

    return [
        TableSpec(
            "scores",
            "Safety scores per campaign, target and category with 95% intervals (gold labels).",
            _cols(
                "campaign_id:int target category metric value:float ci_low:float ci_high:float "
                "numerator:float denominator:float interval note"
            ),
            both,
            lambda: len(score_rows),
            lambda: iter(score_rows),
        ),
        TableSpec(
            "rubric_fields",
            "The fields of every rubric version the labels were made under.",
            _cols(
                "rubric rubric_version:int rubric_sha256 field label kind required:bool primary:bool "
                "options options_source help_text"
            ),
            both,
            fields.count,
            _stream(fields, field_fields, field_row),
        ),
        TableSpec(
            "sample",
            "Queries picked by the maintainer and approved by the data committee.",
            query_cols,
            (Tier.PUBLIC,),
            sample.count,
            _stream(sample, query_fields, query_row),
        ),
        TableSpec(
            "queries",
            "Every query of the released campaigns.",
            query_cols,
            restricted,
            queries.count,
            _stream(queries, query_fields, query_row),
        ),
        TableSpec(
            "responses",
            "Model responses with their provenance: run, target, request and raw reply.",
            _cols(
                "response_id:int query_id:int run_id:int run_name target model_name resolved_model "
                "sample_index:int outcome text finish_reason request raw_reply input_guard output_guard "
                "target_config input_tokens:int output_tokens:int latency_ms:int finished_at"
            ),
            restricted,
            responses.count,
            _stream(responses, response_fields, response_row),
        ),
        TableSpec(
            "items",
            "Campaign items with their gold values and agreement.",
            _cols(
                "item_id:int campaign_id:int query_id:int response_id:int required_labels:int "
                "label_count:int agreement:float disputed:bool gold_values gold_source"
            ),
            restricted,
            items.count,
            _stream(items.order_by("pk"), item_fields, item_row),
        ),
        TableSpec(
            "labels",
            "Clinicians' labels, each stamped with its rubric and guideline version.",
            _cols(
                "label_id:int campaign_id:int item_id:int query_id:int response_id:int rater rubric "
                "rubric_version:int guideline_version:int guideline_sha256 values revision:int created_at"
            ),
            restricted,
            labels.count,
            _stream(labels, label_fields, label_row),
        ),
        TableSpec(
            "adjudications",
            "Adjudicated gold labels with their rationale (history included).",
            _cols(
                "adjudication_id:int item_id:int campaign_id:int adjudicator values rationale rubric "
                "rubric_version:int guideline_version:int guideline_sha256 supersedes_id:int "
                "imported:bool created_at"
            ),
            restricted,
            adjudications.count,
            _stream(adjudications, adjudication_fields, adjudication_row),
        ),
    ]


def guidelines_of(release: Release) -> list[Guideline]:
    campaign_ids = list(release.campaigns.values_list("pk", flat=True))
    ids = set(release.campaigns.values_list("guideline_id", flat=True)) | set(
        Label.objects.filter(campaign_id__in=campaign_ids, guideline__isnull=False)
        .values_list("guideline_id", flat=True)
        .distinct()
    )
    return list(Guideline.objects.filter(pk__in=ids).order_by("slug", "version"))


def rubrics_of(release: Release) -> list[Rubric]:
    return list(
        Rubric.objects.filter(pk__in=release.campaigns.values("rubric_id")).order_by("slug", "version")
    )
