"""Streaming export of collected responses with their full provenance, as JSONL or CSV."""

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from core.csv_cells import neutralise
from evaluations.models import ModelResponse

RESPONSE_EXPORT_FORMATS = {"jsonl": "application/jsonl", "csv": "text/csv"}

COLUMNS = (
    "response_id",
    "run_id",
    "query_external_id",
    "query_source",
    "category",
    "target",
    "sample_index",
    "outcome",
    "text",
    "finish_reason",
    "resolved_model",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "attempts",
    "cost",
    "error_reason",
    "input_guard",
    "output_guard",
    "request",
    "raw_reply",
    "errors",
)
_JSON_COLUMNS = {"input_guard", "output_guard", "request", "raw_reply", "errors"}


def _record(response: ModelResponse) -> dict[str, Any]:
    return {
        "response_id": response.pk,
        "run_id": response.run_id,
        "query_external_id": response.query.external_id,
        "query_source": response.query.source,
        "category": response.query.category.slug,
        "target": response.target.label,
        "sample_index": response.sample_index,
        "outcome": response.outcome,
        "text": response.text,
        "finish_reason": response.finish_reason,
        "resolved_model": response.resolved_model,
        "input_tokens": response.input_tokens,
        "output_tokens": response.output_tokens,
        "latency_ms": response.latency_ms,
        "attempts": response.attempts,
        "cost": str(response.cost),
        "error_reason": response.error_reason,
        "input_guard": response.input_guard,
        "output_guard": response.output_guard,
        "request": response.request,
        "raw_reply": response.raw_reply,
        "errors": response.errors,
    }


def responses_export_stream(*, responses: QuerySet[ModelResponse], file_format: str) -> Iterator[str]:
    rows = (
        responses.select_related("query", "query__category", "target")
        .order_by("id")
        .iterator(chunk_size=1000)
    )
    if file_format == "jsonl":
        for response in rows:
            yield json.dumps(_record(response), ensure_ascii=False) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for response in rows:
        record = _record(response)
        for column in _JSON_COLUMNS:
            record[column] = (
                json.dumps(record[column], ensure_ascii=False) if record[column] is not None else ""
            )
        writer.writerow({column: neutralise(value) for column, value in record.items()})
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
