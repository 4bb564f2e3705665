"""A granted download does the minimum before the web server takes over: the user, its roles,
one query for the file with its release, one for the caller's grant, one audit event."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_a_granted_download_asks_for_file_and_grant_once_and_writes_one_event(world, settings) -> None:
    settings.SENDFILE_BACKEND = "django_sendfile.backends.nginx"
    from django_sendfile import utils as sendfile_utils

    sendfile_utils._get_sendfile.cache_clear()
    client = Client()
    client.force_login(world.users["granted"])
    url = f"/releases/{world.release.pk}/files/restricted/parquet/labels/labels-00000.parquet"
    client.get(url)  # the first request of a session may write it (privileged clock, CSRF)
    events = AuditEvent.objects.count()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    sendfile_utils._get_sendfile.cache_clear()
    assert response.status_code == 200
    assert response.has_header("X-Accel-Redirect")
    assert AuditEvent.objects.count() == events + 1
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    # The user (the session is read from the cache: cached_db), the user's roles and
    # delegated-review duty (the MFA rule), ONE query for the file with its release, ONE for the
    # caller's active grant (two small queries cost less to compile than one that holds both),
    # then the audit event: one INSERT, no lock, no sealing (a read is chained by the next sealer).
    # Savepoints are the test's transaction.
    assert len(statements) == 6, statements
    assert not any("django_session" in sql for sql in statements)
    assert sum("access_accessrequest" in sql for sql in statements) == 1
    assert sum("releases_releasefile" in sql for sql in statements) == 1
    assert sum(sql.startswith("INSERT") for sql in statements) == 1
    assert not any(sql.startswith("UPDATE") for sql in statements)  # the session is not rewritten
