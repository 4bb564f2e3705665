"""Pieces of the lease protocol shared by every table of leased rows (collection items, judge items):
the database clock leases are stamped with, the batched finish (many rows in one statement, each
only while it still holds its lease token), and the local watchdog that, with no broker and no
beat, hands on the runs whose executor thread died with its process.

A table qualifies when it has ``state``, ``lease_token``, ``lease_expires_at`` and ``finished_at``
columns. Attempts add up and error logs append (``added`` / ``appended``), so a row retried after
an error keeps the history of every call made for it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, connections, models, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Field
from django.db.models.functions import Now
from django.utils import timezone

logger = logging.getLogger(__name__)


def db_clock(seconds: float = 0) -> Any:
    """The database's clock, ``seconds`` ahead (or behind): every lease and heartbeat is stamped and
    compared with it, so the skew of one worker's host clock cannot steal a live lease."""
    if not seconds:
        return Now()
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def _column(model: type[models.Model], name: str) -> tuple[Field[Any, Any], str]:
    model_field = model._meta.get_field(name)
    if not isinstance(model_field, Field) or model_field.column is None:
        raise TypeError(f"{model.__name__}.{name} is not a concrete column.")
    return model_field, model_field.column


def leased_rows_finish(
    *,
    model: type[models.Model],
    entries: Sequence[tuple[uuid.UUID, Any]],
    fields: Sequence[str],
    finished: str,
    leased: str,
    now: Any = None,
    added: Sequence[str] = ("attempts",),
    appended: Sequence[str] = ("errors",),
) -> int:
    """Write each result (an object with ``id`` and ``fields``) to its row if the row is ``leased``
    under the result's token; the row becomes ``finished``, its lease cleared. Returns the rows
    written. On PostgreSQL one ``UPDATE … FROM jsonb_to_recordset(…)``; elsewhere one UPDATE per row."""
    if not entries:
        return 0
    finished, leased = str(finished), str(leased)  # a TextChoices member as its plain value
    if connection.vendor == "postgresql":
        return _finish_postgresql(model, entries, fields, finished, leased, now, added, appended)
    return _finish_portable(model, entries, fields, finished, leased, now or timezone.now(), added, appended)


# PostgreSQL stores no NUL character in text or jsonb (a reply carrying one failed its whole batch,
# again at every flush): each becomes U+FFFD, the replacement character. An escaped backslash
# followed by "u0000" is left alone (an odd number of backslashes is what makes an escape).
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # numeric columns read it back exactly
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _finish_postgresql(
    model: type[models.Model],
    entries: Sequence[tuple[uuid.UUID, Any]],
    fields: Sequence[str],
    finished: str,
    leased: str,
    now: Any,
    added: Sequence[str],
    appended: Sequence[str],
) -> int:
    """The batch travels as ONE jsonb parameter encoded by orjson and is unpacked by
    ``jsonb_to_recordset`` into typed columns: the statement text is the same for every batch, and
    the Python work on the write thread (whose GIL time the event loop pays for) is one C call,
    not an adapter per value. A JSON null is SQL NULL, as Django saves ``None``."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [_column(model, name) for name in fields]
    # Decimals are rounded as Django would round them for the column, then sent as text.
    decimals = [
        (n, f) for n, (f, _) in zip(fields, columns, strict=True) if isinstance(f, models.DecimalField)
    ]
    rows = []
    for token, result in entries:
        row = {"id": result.id, "token": token, **{n: getattr(result, n) for n in fields}}
        for name, model_field in decimals:
            row[name] = model_field.get_db_prep_save(row[name], connection)
        rows.append(row)
    payload = _NUL_ESCAPE.sub(r"\1\\ufffd", orjson.dumps(rows, default=_json_default).decode())

    assignments = []
    for name, (_, column) in zip(fields, columns, strict=True):
        if name in added:
            assignments.append(f"{quote(column)} = r.{quote(column)} + v.{quote(name)}")
        elif name in appended:
            assignments.append(f"{quote(column)} = r.{quote(column)} || v.{quote(name)}")
        else:
            assignments.append(f"{quote(column)} = v.{quote(name)}")
    record = ", ".join(
        f"{quote(name)} {model_field.db_type(connection)}"
        for name, (model_field, _) in zip(fields, columns, strict=True)
    )
    sql = (
        f"UPDATE {table} AS r SET state = %s, lease_token = NULL, lease_expires_at = NULL, "  # noqa: S608
        f"finished_at = {'%s' if now is not None else 'statement_timestamp()'}, {', '.join(assignments)} "
        f"FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, token uuid, {record}) "
        "WHERE r.id = v.id AND r.lease_token = v.token AND r.state = %s"
    )
    head: list[Any] = [finished] + ([now] if now is not None else [])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [*head, payload, leased])
        return cursor.rowcount


def _finish_portable(
    model: type[models.Model],
    entries: Sequence[tuple[uuid.UUID, Any]],
    fields: Sequence[str],
    finished: str,
    leased: str,
    now: Any,
    added: Sequence[str],
    appended: Sequence[str],
) -> int:
    written = 0
    manager = model._default_manager
    with transaction.atomic():
        earlier: dict[int, dict[str, Any]] = {}
        if appended:
            for row in manager.filter(pk__in=[r.id for _, r in entries]).values("id", *appended):
                earlier[row["id"]] = row
        for token, result in entries:
            values: dict[str, Any] = {name: getattr(result, name) for name in fields}
            for name in added:
                if name in values:
                    values[name] = F(name) + values[name]
            for name in appended:
                if name in values:
                    values[name] = list(earlier.get(result.id, {}).get(name) or []) + list(values[name])
            written += manager.filter(pk=result.id, state=leased, lease_token=token).update(
                state=finished, lease_token=None, lease_expires_at=None, finished_at=now, **values
            )
    return written


class LocalWatchdog:
    """A watchdog this process runs itself, on a thread, when there is no beat to run it (the
    embedded default: ``COLLECTION_DISPATCH_IN_THREAD``, no ``REDIS_URL``). While ``watching()``
    says runs are running it calls ``tick()`` (the beat task's own work) every
    ``COLLECTION_WATCHDOG_SECONDS``, then ends by itself. ``ensure()`` starts it unless it runs:
    call it after each dispatch and whenever someone opens a running run, so a run whose executor
    thread died with its process (a server restart, a code reload) is picked up again.

    Deciding to end and deciding to start hold the same lock, so a run started just as the
    watchdog ends is never left unwatched."""

    def __init__(self, name: str, *, watching: Callable[[], bool], tick: Callable[[], object]) -> None:
        self.name = name
        self._watching = watching
        self._tick = tick
        self._lock = threading.Lock()
        self._current: threading.Thread | None = None  # the thread watching; None once it ends
        self.thread: threading.Thread | None = None  # the last one started (alive or ended)

    def ensure(self) -> bool:
        """Start the watchdog unless it runs (or there is a broker); True when it started one."""
        if not settings.COLLECTION_DISPATCH_IN_THREAD:
            return False
        with self._lock:
            if self._current is not None and self._current.is_alive():
                return False
            thread = threading.Thread(target=self._supervise, daemon=True, name=self.name)
            self._current = self.thread = thread
            thread.start()
            return True

    def _keep_going(self) -> bool:
        with self._lock:
            if settings.COLLECTION_DISPATCH_IN_THREAD and self._watching():
                return True
            self._current = None  # ending: the next ensure() starts another
            return False

    def _supervise(self) -> None:
        try:
            while self._keep_going():
                self._tick()
                time.sleep(settings.COLLECTION_WATCHDOG_SECONDS)
        except Exception:
            logger.exception("the local %s stopped", self.name)
            with self._lock:
                self._current = None
        finally:
            connections.close_all()  # this thread's own connections
