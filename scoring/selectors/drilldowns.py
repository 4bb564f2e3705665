"""Reads for the drill-downs: the annotators' labels of one page (or one export batch) of rows,
read for those rows only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from django.db import connection

from annotations.models import Label
from scoring.selectors.snapshot import json_loads, json_text


def _label_query(wanted: set[int]) -> tuple[str, Sequence[Any]]:
    """The SQL reading (item id, annotator id, external rater, values as JSON text) of the labels
    of ``wanted`` in the order the snapshot holds them (creation, then id), and perhaps of a few
    other items: a dense batch (an export's, in item order) is read as an id range, as a list of
    thousands of parameters costs more to send than the few labels of other items the range
    brings along. The ORM writes it; its rows are fetched as plain tuples (no iterator per row)."""
    low, high = min(wanted), max(wanted)
    labels = (
        Label.objects.filter(item_id__gte=low, item_id__lte=high)
        if high - low < 4 * len(wanted)
        else Label.objects.filter(item_id__in=wanted)
    )
    query = (
        labels.annotate(values_text=json_text("values"))
        .order_by("created_at", "pk")
        .values_list("item_id", "annotator_id", "external_rater", "values_text")
    ).query
    return query.sql_with_params()


def _label_rows(wanted: set[int]) -> list[tuple[int, int | None, str, str | None]]:
    sql, params = _label_query(wanted)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def labels_of_items(*, item_ids: list[int | None]) -> dict[int, list[tuple[str, dict[str, Any]]]]:
    """item id -> [(rater key, values)] in the order the snapshot holds them (creation, then id):
    the labels of one page of a drill-down, read for that page only."""
    grouped: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    wanted = {i for i in item_ids if i is not None}
    if not wanted:
        return grouped
    for item_id, annotator_id, external, values in _label_rows(wanted):
        if item_id not in wanted:
            continue
        rater = f"user:{annotator_id}" if annotator_id else f"external:{external}"
        grouped.setdefault(item_id, []).append((rater, json_loads(values) or {}))
    return grouped


def _shown(
    rows: list[tuple[int, int | None, str, str | None]], wanted: set[int], names: dict[str, str]
) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = {}
    loads, name = orjson.loads, names.get
    for item_id, annotator_id, external, values in rows:
        if item_id not in wanted:
            continue
        rater = f"user:{annotator_id}" if annotator_id else f"external:{external}"
        shown = {
            "annotator": name(rater, rater),
            "values": (loads(values) if values is not None else None) or {},
        }
        labels = grouped.get(item_id)
        if labels is None:
            grouped[item_id] = [shown]
        else:
            labels.append(shown)
    return grouped


def shown_labels_of_items(
    *, item_ids: list[int | None], names: dict[str, str]
) -> dict[int, list[dict[str, Any]]]:
    """item id -> [{"annotator": name shown, "values": values}]: ``labels_of_items`` as an export
    writes them, each rater under ``names`` (its own key if unnamed), built in one pass over the
    rows (an export reads 3 labels per row: this loop is a third of its time)."""
    wanted = {i for i in item_ids if i is not None}
    return _shown(_label_rows(wanted), wanted, names) if wanted else {}


class ShownLabelsAhead:
    """``shown_labels_of_items`` of one batch read while the caller works on the previous one:

        with ahead.reading(item_ids):  # the query is sent
            ...  # encode the previous batch, no database use
        labels = ahead.labels          # its result

    On PostgreSQL the query goes out in pipeline mode (psycopg) and the server runs it while the
    block runs, in its own process: an export's label reads (a third of its time) overlap its
    encoding. The block must not use the connection; it is left only when the result is in, so
    the connection is free between batches. Elsewhere the labels are read when the block opens."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.labels: dict[int, list[dict[str, Any]]] = {}

    @contextmanager
    def reading(self, item_ids: list[int | None]) -> Iterator[None]:
        wanted = {i for i in item_ids if i is not None}
        if not wanted:
            self.labels = {}
            yield
            return
        if connection.vendor != "postgresql":
            self.labels = _shown(_label_rows(wanted), wanted, self.names)
            yield
            return
        sql, params = _label_query(wanted)
        connection.ensure_connection()
        raw = connection.connection
        with raw.pipeline() as pipeline:
            cursor = psycopg.Cursor(raw)  # binding on the server: what pipeline mode needs
            cursor.execute(sql, params)
            pipeline.sync()  # sent: the server runs it now
            try:
                yield
            finally:
                rows = cursor.fetchall()
                cursor.close()
        self.labels = _shown(rows, wanted, self.names)
