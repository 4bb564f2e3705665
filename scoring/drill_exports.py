"""The whole selection of a drill-down as a streamed CSV or JSONL download.

Rows are encoded a batch at a time, so memory stays flat whatever the selection's size and the
response starts at once; the labels of the rows are read a batch of items at a time, grouped per
item by the database (``selectors.drilldowns.shown_labels_of_items``). JSON lines: one orjson call
per record built as a dict literal (orjson encodes a dict several times faster than the standard
library and gives bytes without a str round trip), joined once per batch. CSV: one
``csv.writer.writerows`` per batch on tuples, the text cells marked by ``core.csv_cells``' rule;
labels (JSON text, always starting ``[``) need no mark. Each batch is encoded with the cycle
collector paused (``core.collector``). The bytes are those of the record-at-a-time encoder this
replaced (tests/scoring/test_export_encoding.py keeps it and compares).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import orjson
from django.http import StreamingHttpResponse

from annotations.models import Campaign
from core.collector import chunks_collector_paused
from core.csv_cells import csv_rows, marked_column
from scoring.figures.drilldowns import DrillRow, PackedDrillRow
from scoring.selectors.drilldowns import ShownLabelsAhead

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
_NO_LABELS: list[dict[str, Any]] = []
Labels = dict[int, list[dict[str, Any]]]  # item id -> its labels as exported
T = TypeVar("T")


def _batches(rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def _json_column(values: Sequence[Any]) -> list[Any]:
    """A column of nested values as ``encode`` wrote them: JSON text, marked (as any cell)."""
    if not any(issubclass(kind, dict | list) for kind in set(map(type, values))):
        return marked_column(list(values))
    dumps = orjson.dumps
    return marked_column([dumps(v).decode() if isinstance(v, dict | list) else v for v in values])


def _csv_stream(header: Sequence[str], tables: Iterator[str]) -> Iterator[bytes]:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(header)
    first = buffer.getvalue()
    for table in tables:
        yield (first + table).encode()
        first = ""
    if first:  # nothing to export: the CSV still has its header
        yield first.encode()


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


def _labelled_batches(
    packed: Sequence[PackedDrillRow],
    names: dict[str, str],
    encode: Callable[[Sequence[PackedDrillRow], Labels], T],
) -> Iterator[T]:
    """``encode`` of each batch with its rows' labels, the next batch's labels read meanwhile
    (``selectors.drilldowns.ShownLabelsAhead``)."""
    ahead = ShownLabelsAhead(names)
    batches = _batches(packed)
    batch = next(batches, None)
    if batch is not None:
        with ahead.reading([row[9] for row in batch]):
            pass
    while batch is not None:
        following = next(batches, None)  # read before the query goes out (the cache may be the database)
        with ahead.reading([row[9] for row in following] if following is not None else []):
            encoded = encode(batch, ahead.previous())
        yield encoded
        batch = following


def _score_records(batch: Sequence[PackedDrillRow], labels: Labels) -> bytes:
    """The JSON lines of one batch: the keys and their order of ``score_row_record``, a packed
    row's fields by index (``figures.drilldowns.pack_row``)."""
    dumps = orjson.dumps
    return (
        b"\n".join(
            [
                dumps(
                    {
                        "response": row[0],
                        "item": row[9],
                        "query": row[3],
                        "category": row[4],
                        "target": row[6],
                        "expected": row[5],
                        "outcome": row[7],
                        "in_numerator": row[10],
                        "resolved": row[11],
                        "gold_source": row[12],
                        "labels": labels.get(row[9] or -1, _NO_LABELS),
                    }
                )
                for row in batch
            ]
        )
        + b"\n"
    )


def _score_table(batch: Sequence[PackedDrillRow], labels: Labels) -> str:
    """The CSV rows of one batch, a column at a time (``core.csv_cells.csv_rows``): the cells of
    ``score_row_record``, nested values as JSON text, every cell marked."""
    dumps = orjson.dumps
    field = list(zip(*batch, strict=True))
    items = field[9]
    columns = [
        marked_column(field[0]),
        marked_column(items),
        marked_column(field[3]),
        marked_column(field[4]),
        marked_column(field[6]),
        marked_column(field[5]),
        marked_column(field[7]),
        _json_column(field[10]),
        _json_column(field[11]),
        _json_column(field[12]),
        # JSON arrays: text starting "[", never marked.
        [dumps(labels.get(item or -1, _NO_LABELS)).decode() for item in items],
    ]
    return csv_rows(columns, long_text=(8, 10))


def _score_stream(
    packed: Sequence[PackedDrillRow], rater_names: dict[str, str], file_format: str
) -> Iterator[bytes]:
    if file_format == "jsonl":
        return chunks_collector_paused(_labelled_batches(packed, rater_names, _score_records))
    return chunks_collector_paused(
        _csv_stream(SCORE_COLUMNS, _labelled_batches(packed, rater_names, _score_table))
    )


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


def _agreement_records(rows: Sequence[dict[str, Any]], shows_models: bool) -> Iterator[bytes]:
    dumps = orjson.dumps
    for batch in _batches(rows):
        yield (
            b"\n".join([dumps(agreement_row_record(row, shows_models=shows_models)) for row in batch]) + b"\n"
        )


def _agreement_tables(rows: Sequence[dict[str, Any]], shows_models: bool) -> Iterator[str]:
    """The CSV rows of each batch, a column at a time: the cells of ``agreement_row_record``."""
    dumps = orjson.dumps
    for batch in _batches(rows):
        items = [row["item"] for row in batch]
        golds = [row["gold"] for row in batch]
        columns: list[Sequence[object]] = [
            marked_column([item.item_id for item in items]),
            marked_column([item.query_external_id for item in items]),
            marked_column([item.target for item in items] if shows_models else [None] * len(items)),
            marked_column([item.category for item in items]),
            [dumps([{"annotator": n, "value": v} for n, v in row["values"]]).decode() for row in batch],
            _json_column([gold or None for gold in golds]),
            _json_column([item.gold_source if gold else "" for item, gold in zip(items, golds, strict=True)]),
            _json_column([row["agree"] for row in batch]),
            marked_column([when.isoformat() if (when := row.get("when")) else None for row in batch]),
        ]
        yield csv_rows(columns, long_text=(4,))


def _agreement_stream(
    rows: Sequence[dict[str, Any]], shows_models: bool, file_format: str
) -> Iterator[bytes]:
    if file_format == "jsonl":
        return chunks_collector_paused(_agreement_records(rows, shows_models))
    return chunks_collector_paused(_csv_stream(AGREEMENT_COLUMNS, _agreement_tables(rows, shows_models)))


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
