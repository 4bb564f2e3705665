"""Reads for the drill-downs: the annotators' labels of one page (or one export batch) of rows,
read for those rows only."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
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


_USER_KEY = re.compile(r"user:[1-9][0-9]*")  # ``Label.rater_key`` of an account


def _shown(
    columns: Sequence[Sequence[Any]], wanted: set[int], names: dict[str, str]
) -> dict[int, list[dict[str, Any]]]:
    """The rows of ``_label_query``, as its four columns, grouped as ``shown_labels_of_items``
    gives them: a rater's name found by its annotator id (no key text per label), the others by
    their key. The values' JSON texts are decoded in one call (one array of the column's texts)."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    if not columns:
        return grouped
    items, annotators, externals, texts = columns
    decoded = orjson.loads("[" + ",".join("null" if text is None else text for text in texts) + "]")
    name = names.get
    users = {int(key[5:]): shown for key, shown in names.items() if _USER_KEY.fullmatch(key)}
    for item_id, annotator_id, external, values in zip(items, annotators, externals, decoded, strict=True):
        if item_id not in wanted:
            continue
        if annotator_id:
            annotator = users.get(annotator_id)
            if annotator is None:
                annotator = f"user:{annotator_id}"
        else:
            annotator = name(f"external:{external}", f"external:{external}")
        shown = {"annotator": annotator, "values": values or {}}
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
    return _shown(list(zip(*_label_rows(wanted), strict=True)), wanted, names) if wanted else {}


class ShownLabelsAhead:
    """``shown_labels_of_items`` of one batch read while the caller works on the previous one:

        with ahead.reading(item_ids):  # this batch's query is sent
            labels = ahead.previous()  # the previous batch's labels, grouped
            ...                        # encode the previous batch, no database use

    On PostgreSQL a thread sends the query on the request's connection and waits for its rows
    (psycopg lets the interpreter run while it waits) while the block groups and encodes the
    previous batch, so the server's work on the next batch, in its own process, overlaps ours
    (read one after the other, the label reads were a third of an export's time). The block
    must not use the connection: it is left only when the thread is done, so the connection is
    the caller's alone again between batches. Elsewhere the labels are read when the block opens.

    Not grouped by the database: ``json_agg(json_build_object(...))`` per item, the rater's name
    looked up from a JSON parameter, spares Python its loop per label but costs the server 2-3
    times the plain read (33-48 ms against 12-20 ms per 5,000 items), and on the shared machine
    the export took longer (4.3 s against 2.0-3.5 s at 200k)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        # The rows read, as columns: four tuples hold a batch's 15,000 labels until it is encoded,
        # not 15,000 row tuples the cycle collector would walk between chunks.
        self._fetched: tuple[list[tuple[Any, ...]], set[int]] = ([], set())
        self._current = self._fetched

    def previous(self) -> dict[int, list[dict[str, Any]]]:
        """The labels read by the ``reading`` before the one now open."""
        columns, wanted = self._current
        return _shown(columns, wanted, self.names)

    @contextmanager
    def reading(self, item_ids: list[int | None]) -> Iterator[None]:
        self._current = self._fetched
        wanted = {i for i in item_ids if i is not None}
        if not wanted:
            self._fetched = ([], wanted)
            yield
            return
        if connection.vendor != "postgresql":
            self._fetched = (list(zip(*_label_rows(wanted), strict=True)), wanted)
            yield
            return
        sql, params = _label_query(wanted)
        connection.ensure_connection()
        raw = connection.connection
        read: dict[str, Any] = {}

        def fetch() -> None:
            try:
                with raw.cursor() as cursor:
                    cursor.execute(sql, params)
                    read["columns"] = list(zip(*cursor.fetchall(), strict=True))
            except BaseException as exc:  # raised again in the caller's thread
                read["error"] = exc

        worker = threading.Thread(target=fetch, name="drilldown-labels-ahead", daemon=True)
        worker.start()
        try:
            yield
        finally:
            worker.join()  # the connection is the caller's again
        if "error" in read:
            raise read["error"]
        self._fetched = (read["columns"], wanted)
