"""Streaming export of queries to JSONL and CSV, in the import schema so that an export re-imports."""

import csv
import json
from collections.abc import Iterator

from django.db.models import QuerySet

from core.csv_cells import neutralise
from querybank.importers import FIELDS
from querybank.models import Query

EXPORT_FORMATS = {"jsonl": "application/jsonl", "csv": "text/csv"}
_CHUNK_ROWS = 200


class _Line:
    """A file-like object whose write() hands the formatted line back: csv.writer without a buffer."""

    def write(self, value: str) -> str:
        return value


def _record(query: Query) -> dict[str, object]:
    return {
        "external_id": query.external_id,
        "text": query.text,
        "category": query.category.slug,
        "expected_behaviour": query.expected_behaviour,
        "severity": query.severity,
        "status": query.status,
        "source": query.source,
        "notes": query.notes,
        "metadata": query.metadata or {},
    }


def _csv_cells(record: dict[str, object]) -> list[object]:
    # In CSV the metadata object travels as a JSON string in its cell. No cell may start a formula
    # (the import restores the text, so an export still re-imports exactly).
    return [
        neutralise(json.dumps(record[name], ensure_ascii=False) if name == "metadata" else record[name])
        for name in FIELDS
    ]


def export_stream(*, queries: QuerySet[Query], file_format: str) -> Iterator[str]:
    """Yield the export of ``queries`` in chunks of text; rows are read with ``.iterator()`` so the
    whole bank is never held in memory."""
    if file_format not in EXPORT_FORMATS:
        raise ValueError(
            f"Unknown export format {file_format!r}; expected one of {', '.join(EXPORT_FORMATS)}."
        )
    rows = queries.select_related("category").iterator(chunk_size=2000)
    if file_format == "jsonl":
        lines = (json.dumps(_record(query), ensure_ascii=False) + "\n" for query in rows)
    else:
        writer = csv.writer(_Line())
        header = writer.writerow(FIELDS)
        lines = (writer.writerow(_csv_cells(_record(query))) for query in rows)
        yield header
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= _CHUNK_ROWS:
            yield "".join(chunk)
            chunk = []
    if chunk:
        yield "".join(chunk)
