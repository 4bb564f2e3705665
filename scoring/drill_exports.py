"""The whole selection of a drill-down as a streamed CSV or JSONL download.

Rows are encoded a batch at a time (orjson for JSON: it encodes a batch of dicts several times
faster than the standard library and yields bytes without a str round trip; one ``csv.writer``
per batch for CSV), so memory stays flat whatever the selection's size and the response starts at
once. The labels of the rows are read a batch of items at a time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from django.http import StreamingHttpResponse

from annotations.models import Campaign
from core.csv_cells import neutralise
from scoring.figures.drilldowns import DrillRow, PackedDrillRow
from scoring.selectors.drilldowns import labels_of_items

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
BATCH = 5000

SCORE_COLUMNS = (
    "response",
    "item",
    "query",
    "category",
    "target",
    "expected",
    "outcome",
    "in_numerator",
    "resolved",
    "gold_source",
    "labels",
)
AGREEMENT_COLUMNS = (
    "item",
    "query",
    "model",
    "category",
    "labels",
    "gold",
    "gold_source",
    "agree",
    "labelled",
)


def _batches(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def encode(
    records: Iterable[dict[str, Any]], columns: Sequence[str], file_format: str, *, header: bool
) -> bytes:
    """One batch of records as JSON lines, or CSV rows (nested values as JSON text, every cell
    neutralised against spreadsheet formulas)."""
    if file_format == "jsonl":
        return b"".join(orjson.dumps(record) + b"\n" for record in records)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(columns)
    for record in records:
        writer.writerow(
            [
                neutralise(
                    orjson.dumps(value).decode()
                    if isinstance(value, dict | list)
                    else ("" if value is None else value)
                )
                for value in (record[c] for c in columns)
            ]
        )
    return buffer.getvalue().encode()


def score_row_record(
    row: DrillRow,
    labels: list[tuple[str, dict[str, Any]]] | None = None,
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One row behind a score figure, as the API and the exports give it; ``labels`` (rater key,
    values) and ``names`` replace the row's own labels (an export reads them a batch at a time)."""
    shown = (
        row.labels
        if labels is None
        else [((names or {}).get(rater, rater), values) for rater, values in labels]
    )
    return {
        "response": row.response.response_id,
        "item": row.item_id,
        "query": row.response.query_external_id,
        "category": row.response.category,
        "target": row.response.target,
        "expected": row.response.expected,
        "outcome": row.response.outcome,
        "in_numerator": row.in_numerator,
        "resolved": row.resolved,
        "gold_source": row.gold_source,
        "labels": [{"annotator": name, "values": values} for name, values in shown],
    }


def _packed_record(
    packed: PackedDrillRow, labels: list[tuple[str, dict[str, Any]]], names: dict[str, str]
) -> dict[str, Any]:
    """``score_row_record`` straight from a packed row (no dataclass per row in an export)."""
    return {
        "response": packed[0],
        "item": packed[9],
        "query": packed[3],
        "category": packed[4],
        "target": packed[6],
        "expected": packed[5],
        "outcome": packed[7],
        "in_numerator": packed[10],
        "resolved": packed[11],
        "gold_source": packed[12],
        "labels": [{"annotator": names.get(rater, rater), "values": values} for rater, values in labels],
    }


def _score_stream(
    packed: Sequence[PackedDrillRow], rater_names: dict[str, str], file_format: str
) -> Iterator[bytes]:
    header = True
    for batch in _batches(packed):
        labels = labels_of_items(item_ids=[row[9] for row in batch])
        records = (_packed_record(row, labels.get(row[9] or -1, []), rater_names) for row in batch)
        yield encode(records, SCORE_COLUMNS, file_format, header=header)
        header = False
    if header:  # nothing to export: the CSV still has its header
        yield encode((), SCORE_COLUMNS, file_format, header=True)


def agreement_row_record(row: dict[str, Any], *, shows_models: bool) -> dict[str, Any]:
    item = row["item"]
    return {
        "item": item.item_id,
        "query": item.query_external_id,
        "model": item.target if shows_models else None,
        "category": item.category,
        "labels": [{"annotator": name, "value": value} for name, value in row["values"]],
        "gold": row["gold"] or None,
        "gold_source": item.gold_source if row["gold"] else "",
        "agree": row["agree"],
        "labelled": row["when"].isoformat() if row.get("when") else None,
    }


def _agreement_stream(
    rows: Sequence[dict[str, Any]], shows_models: bool, file_format: str
) -> Iterator[bytes]:
    header = True
    for batch in _batches(rows):
        records = (agreement_row_record(row, shows_models=shows_models) for row in batch)
        yield encode(records, AGREEMENT_COLUMNS, file_format, header=header)
        header = False
    if header:
        yield encode((), AGREEMENT_COLUMNS, file_format, header=True)


def _download(stream: Iterator[bytes], file_format: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(stream, content_type=FORMATS[file_format])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{file_format}"'
    return response


def score_rows_response(
    *, campaign: Campaign, rows: Sequence[PackedDrillRow], rater_names: dict[str, str], file_format: str
) -> StreamingHttpResponse:
    return _download(
        _score_stream(rows, rater_names, file_format), file_format, f"campaign-{campaign.pk}-score-rows"
    )


def agreement_rows_response(
    *, campaign: Campaign, found: dict[str, Any], shows_models: bool, file_format: str
) -> StreamingHttpResponse:
    return _download(
        _agreement_stream(found["rows"], shows_models, file_format),
        file_format,
        f"campaign-{campaign.pk}-agreement-rows",
    )
