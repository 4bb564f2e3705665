"""Streaming export of queries to JSONL and CSV."""

from collections.abc import Iterator

from django.db.models import QuerySet

from querybank.models import Query

EXPORT_FORMATS = {"jsonl": "application/jsonl", "csv": "text/csv"}


def export_stream(*, queries: QuerySet[Query], file_format: str) -> Iterator[str]:
    raise NotImplementedError("written by the import work package")
