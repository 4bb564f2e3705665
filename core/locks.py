"""Transaction-scoped named locks: serialise writers of rows that may not exist yet."""

from django.db import connection


def advisory_lock(name: str) -> None:
    """Hold a lock on ``name`` until the current transaction ends (PostgreSQL's advisory locks).

    SQLite serialises every writer already (one write transaction at a time), so there it does nothing.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
