"""Bulk inserts for imports: ``bulk_create``'s contract (instances in, the same instances back with
their ids set, no signals, no ``save()``), written by ``COPY`` on PostgreSQL.

On PostgreSQL the ids are drawn from the table's own sequence first (one statement), then every row
is streamed by ``COPY ... FROM STDIN`` with its id: no SQL to compile, no parameters to quote, and
the instances know their ids as ``bulk_create`` would tell them. Elsewhere (SQLite, the embedded
default) it is ``bulk_create`` itself. Inside the caller's transaction either way, so an import that
fails later still leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import orjson
from django.db import connections, models, router
from django.utils import timezone

M = TypeVar("M", bound=models.Model)
_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.FloatField,
    models.ForeignKey,
)


def bulk_insert(objs: Iterable[M], *, batch_size: int = 2000) -> list[M]:
    """Insert the (unsaved, same-model) instances and return them with their primary keys set.
    ``batch_size`` is ``bulk_create``'s, for the fallback; ``COPY`` streams the rows in one go."""
    rows = list(objs)
    if not rows:
        return rows
    model = type(rows[0])
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return model._default_manager.bulk_create(rows, batch_size=batch_size)
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields = [field for field in meta.concrete_fields if field is not pk]
    # Plain columns are written as the instance holds them (what ``get_db_prep_save`` would return
    # for values of their own type); the rest (JSON, dates, defaults computed on save) go through
    # the field.
    plain = [isinstance(field, _PLAIN) and not getattr(field, "auto_now", False) for field in fields]
    quote = connection.ops.quote_name
    names = [pk.column, *(field.column for field in fields)]
    columns = ", ".join(quote(name) for name in names if name is not None)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for obj, pk_value in zip(rows, ids, strict=True):
                # As bulk_create does: a related instance saved after assignment gives its id now.
                obj._prepare_related_fields_for_save(operation_name="bulk_insert")  # type: ignore[attr-defined]  # private: not in django-stubs
                values = obj.__dict__
                copy.write_row(
                    [
                        pk_value,
                        *(
                            values[field.attname]
                            if is_plain
                            else field.get_db_prep_save(field.pre_save(obj, True), connection)
                            for field, is_plain in zip(fields, plain, strict=True)
                        ),
                    ]
                )
                obj.pk = pk_value
                obj._state.adding = False
                obj._state.db = connection.alias
    return rows


def copy_insert(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> list[int]:
    """Insert ``rows`` (values of the fields whose attribute names are ``columns``, JSON fields as
    Python values) and return their new ids, in order, without building an instance per row on
    PostgreSQL: every other field takes its default, worked out once for the whole batch (``now``
    for ``auto_now`` fields). Elsewhere it is ``bulk_create`` of the instances."""
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        created = model._default_manager.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows]
        )
        return [obj.pk for obj in created]
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    by_name = {field.attname: field for field in meta.concrete_fields}
    listed = [by_name[name] for name in columns]
    others = [field for field in meta.concrete_fields if field is not pk and field.attname not in columns]
    now = timezone.now()
    fixed = [_default(field, now) for field in others]
    json_positions = [
        position for position, field in enumerate(listed) if isinstance(field, models.JSONField)
    ]
    quote = connection.ops.quote_name
    names = ", ".join(quote(str(field.column)) for field in (pk, *listed, *others))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        dumps = orjson.dumps
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({names}) FROM STDIN") as copy:
            write = copy.write_row
            for pk_value, row in zip(ids, rows, strict=True):
                values = [pk_value, *row, *fixed]
                for position in json_positions:
                    value = values[position + 1]
                    if value is not None:
                        values[position + 1] = dumps(value).decode()
                write(values)
    return ids


def _default(field: models.Field, now: object) -> object:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    value = field.get_default()
    if isinstance(field, models.JSONField):
        return None if value is None else orjson.dumps(value).decode()
    if isinstance(value, str):
        return str(value)  # a choices member is written as its value
    return value
