"""Bulk inserts for imports: ``bulk_create``'s contract (instances in, the same instances back with
their ids set, no signals, no ``save()``), written by ``COPY`` on PostgreSQL.

On PostgreSQL the ids are drawn from the table's own sequence first (one statement), then every row
is streamed by ``COPY ... FROM STDIN`` with its id: no SQL to compile, no parameters to quote, and
the instances know their ids as ``bulk_create`` would tell them. Elsewhere (SQLite, the embedded
default) it is ``bulk_create`` itself. Inside the caller's transaction either way, so an import that
fails later still leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from django.db import connections, models, router

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
