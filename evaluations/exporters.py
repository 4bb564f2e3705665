"""Streaming export of collected responses with their full provenance, as JSONL or CSV.

One streamed query (a server-side cursor on PostgreSQL) read a batch at a time; the JSON columns
read as their text and decoded by orjson (Django's converter decodes each with the standard
library: 40% of the export's time), the batch encoded by one orjson call per record (JSON lines)
or one ``csv.writer.writerows`` (CSV, the text cells marked by ``core.csv_cells``' rule), with the
cycle collector paused (``core.collector``). The bytes are those of the row-at-a-time encoder this
replaced (tests/evaluations/test_export_encoding.py keeps it and compares).

Not done by the database: PostgreSQL's JSON text (``jsonb`` output, ``row_to_json``) and
``COPY ... CSV`` differ from this file's bytes (spaces after ``:`` and ``,``, quoted empty
strings, ``\n`` line ends, unmarked formula cells), and the export's format is kept exactly.
"""

import csv
import io
import json
from collections.abc import Iterator
from itertools import islice
from typing import Any

import orjson
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from core.collector import chunks_collector_paused
from core.csv_cells import csv_rows, marked_column
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


_FIELDS = {
    "response_id": "id",
    "run_id": "run_id",
    "query_external_id": "query__external_id",
    "query_source": "query__source",
    "category": "query__category__slug",
    "target": "target__label",
    "sample_index": "sample_index",
    "outcome": "outcome",
    "text": "text",
    "finish_reason": "finish_reason",
    "resolved_model": "resolved_model",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "latency_ms": "latency_ms",
    "attempts": "attempts",
    "cost": "cost",
    "error_reason": "error_reason",
    "input_guard": "input_guard_text",
    "output_guard": "output_guard_text",
    "request": "request_text",
    "raw_reply": "raw_reply_text",
    "errors": "errors_text",
}
assert tuple(_FIELDS) == COLUMNS
_JSON_TEXT = {f"{column}_text": Cast(column, output_field=TextField()) for column in _JSON_COLUMNS}
_COST = COLUMNS.index("cost")
_JSON_POSITIONS = [k for k, column in enumerate(COLUMNS) if column in _JSON_COLUMNS]
_LONG_POSITIONS = [COLUMNS.index("text"), *_JSON_POSITIONS]
BATCH = 2000


def _json(text: str | None) -> Any:
    """A JSON column's value from its text, as Django's ``JSONField`` reads it: orjson, else the
    standard library (``NaN`` written to a SQLite file), else the text itself."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text


def _batches(responses: QuerySet[ModelResponse]) -> Iterator[list[list[Any]]]:
    """Rows as plain lists (no model instances), the JSON columns decoded and the cost as text, a
    batch at a time, in one streamed query."""
    rows = (
        responses.order_by("id")
        .annotate(**_JSON_TEXT)
        .values_list(*_FIELDS.values())
        .iterator(chunk_size=BATCH)
    )
    json_positions, cost, load = _JSON_POSITIONS, _COST, _json
    while batch := [list(row) for row in islice(rows, BATCH)]:
        for values in batch:
            values[cost] = str(values[cost])
            for k in json_positions:
                values[k] = load(values[k])
        yield batch


def _jsonl(responses: QuerySet[ModelResponse]) -> Iterator[bytes]:
    dumps = orjson.dumps
    for batch in _batches(responses):
        yield b"\n".join([dumps(dict(zip(COLUMNS, values, strict=True))) for values in batch]) + b"\n"


def _csv(responses: QuerySet[ModelResponse]) -> Iterator[bytes]:
    """The rows of each batch a column at a time: text marked (``core.csv_cells``), the JSON
    columns as JSON text (None: empty), the reply and JSON cells joined in by ``csv_rows``."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(COLUMNS)
    first = buffer.getvalue()
    dumps = orjson.dumps
    for batch in _batches(responses):
        field = list(zip(*batch, strict=True))
        columns = [
            marked_column([None if v is None else dumps(v).decode() for v in field[k]])
            if k in _JSON_POSITIONS
            else marked_column(field[k])
            for k in range(len(COLUMNS))
        ]
        yield (first + csv_rows(columns, long_text=_LONG_POSITIONS)).encode()
        first = ""
    if first:  # no responses: the header alone
        yield first.encode()


def responses_export_chunks(*, responses: QuerySet[ModelResponse], file_format: str) -> Iterator[bytes]:
    """Every response with its provenance as UTF-8 bytes, encoded a batch at a time: memory is one
    batch, the rate bounded by the database read."""
    chunks = _jsonl(responses) if file_format == "jsonl" else _csv(responses)
    return chunks_collector_paused(chunks)


def responses_export_stream(*, responses: QuerySet[ModelResponse], file_format: str) -> Iterator[str]:
    """``responses_export_chunks`` as text (for a file or a terminal)."""
    for chunk in responses_export_chunks(responses=responses, file_format=file_format):
        yield chunk.decode()
