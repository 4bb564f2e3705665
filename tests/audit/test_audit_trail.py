"""The audit trail: append-only in PostgreSQL, hash-chained, verified by a command; the staff page
filters and exports CSV with neutralised cells; events carry client address and user agent."""

from __future__ import annotations

import csv
import io
import itertools

import pgtrigger
import pytest
from django.core.management import CommandError, call_command
from django.db import ProgrammingError, connection, transaction
from django.test import Client

from accounts.roles import Role
from audit.models import AuditEvent
from audit.services import audit_record, audit_seal
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def events() -> list[AuditEvent]:
    actor = UserFactory(role=Role.MAINTAINER)
    return [audit_record(actor=actor, action="release_cut", target=actor, details={"n": n}) for n in range(4)]


def _verify() -> str:
    out = io.StringIO()
    call_command("audit_verify", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_database_refuses_update_and_delete_on_the_audit_table(events) -> None:
    assert connection.vendor == "postgresql"
    for statement in (
        lambda: AuditEvent.objects.filter(pk=events[0].pk).update(action="tampered"),
        lambda: AuditEvent.objects.filter(pk=events[1].pk).delete(),
    ):
        with pytest.raises(ProgrammingError, match=r"Cannot (update|delete) rows"), transaction.atomic():
            statement()
    assert AuditEvent.objects.get(pk=events[0].pk).action == "release_cut"
    assert AuditEvent.objects.filter(pk=events[1].pk).exists()
    with (
        connection.cursor() as cursor,
        pytest.raises(ProgrammingError, match="Cannot update"),
        transaction.atomic(),
    ):
        cursor.execute("UPDATE audit_auditevent SET details = '{}' WHERE id = %s", [events[2].pk])
    # The one update allowed is sealing; once sealed, not even the seal may change.
    assert audit_seal() >= 4
    with pytest.raises(ProgrammingError, match="Cannot update rows"), transaction.atomic():
        AuditEvent.objects.filter(pk=events[3].pk).update(seq=99, hash="0" * 64)
    with pytest.raises(ProgrammingError, match="Cannot update rows"), transaction.atomic():
        AuditEvent.objects.filter(pk=events[0].pk).update(details={"n": 7})


def test_the_database_refuses_sealing_with_changed_content(events) -> None:
    with pytest.raises(ProgrammingError, match="Cannot update rows"), transaction.atomic():
        AuditEvent.objects.filter(pk=events[0].pk).update(seq=1, hash="a" * 64, action="tampered")


def test_events_are_written_unsealed_and_sealed_in_one_chain(events) -> None:
    # Inside the test's transaction nothing has committed: no event is chained yet, and none waited.
    assert [AuditEvent.objects.get(pk=e.pk).seq for e in events] == [None] * 4
    assert audit_seal() >= 4
    assert audit_seal() == 0
    chained = list(AuditEvent.objects.filter(pk__in=[e.pk for e in events]).order_by("seq"))
    assert [e.pk for e in chained] == [e.pk for e in events]
    for before, after in itertools.pairwise(chained):
        assert after.seq == before.seq + 1
        assert after.prev_hash == before.hash
    assert "chain intact" in _verify()


def test_a_committed_write_is_sealed_after_its_transaction(django_capture_on_commit_callbacks) -> None:
    actor = UserFactory(role=Role.MAINTAINER)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        first = audit_record(actor=actor, action="release_cut", target=actor, details={"n": 1})
        second = audit_record(actor=actor, action="release_cut", target=actor, details={"n": 2})
    assert len(callbacks) == 1  # one sealer per transaction, however many events it wrote
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.seq is not None
    assert second.seq == first.seq + 1
    assert second.prev_hash == first.hash != ""


def test_a_read_is_committed_unsealed_and_chained_by_the_next_write(
    django_capture_on_commit_callbacks,
) -> None:
    """A read of released data (``seal=False``) pays for no sealing transaction of its own; the next
    audited write seals it, in order, before its own event."""
    actor = UserFactory(role=Role.MAINTAINER)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        read = audit_record(actor=actor, action="file_download", target=actor, details={"n": 1}, seal=False)
    assert callbacks == []
    read.refresh_from_db()
    assert read.seq is None
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        write = audit_record(actor=actor, action="release_cut", target=actor, details={"n": 2})
    read.refresh_from_db()
    write.refresh_from_db()
    assert read.seq is not None
    assert write.seq == read.seq + 1
    assert write.prev_hash == read.hash != ""


def test_chain_links_each_event_to_the_previous(events) -> None:
    assert "chain intact" in _verify()
    chained = [AuditEvent.objects.get(pk=e.pk) for e in events]
    for before, after in itertools.pairwise(chained):
        assert after.prev_hash == before.hash


TRIGGERS = ("audit.AuditEvent:audit_seal_only", "audit.AuditEvent:audit_no_delete")


def test_audit_verify_detects_an_altered_event(events) -> None:
    audit_seal()
    with pgtrigger.ignore(*TRIGGERS):
        AuditEvent.objects.filter(pk=events[1].pk).update(details={"n": 99})
    with pytest.raises(CommandError, match="1 problem"):
        _verify()


def test_audit_verify_detects_a_deleted_event(events) -> None:
    audit_seal()
    with pgtrigger.ignore(*TRIGGERS):
        AuditEvent.objects.filter(pk=events[2].pk).delete()
    err = io.StringIO()
    with pytest.raises(CommandError, match="broken"):
        call_command("audit_verify", stdout=io.StringIO(), stderr=err)
    assert f"gap: event {events[3].pk} follows a hash" in err.getvalue()


def test_events_record_the_client_address_and_user_agent() -> None:
    user = UserFactory(role=Role.RESEARCHER)
    client = Client(HTTP_USER_AGENT="pytest-agent/1.0", REMOTE_ADDR="198.51.100.9")
    client.force_login(user)
    response = client.post("/api/v1/auth/token/")
    assert response.status_code == 201
    event = AuditEvent.objects.get(action="token_issue", actor=user)
    assert (event.ip_address, event.user_agent) == ("198.51.100.9", "pytest-agent/1.0")


STAFF_PAGE = "/audit/"
EXPORT = "/audit/export.csv"


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (None, 302),
        (Role.RESEARCHER, 403),
        (Role.CLINICIAN, 403),
        (Role.ADJUDICATOR, 403),
        (Role.DATA_COMMITTEE, 403),
        (Role.MAINTAINER, 200),
    ],
)
def test_staff_audit_page_permission_table(role, expected) -> None:
    client = Client()
    if role is not None:
        client.force_login(UserFactory(role=role))
    assert client.get(STAFF_PAGE).status_code == expected
    assert client.get(EXPORT).status_code == expected


def test_staff_page_filters_by_actor_action_and_target(events) -> None:
    other = UserFactory(role=Role.RESEARCHER, email="someone-else@example.org")
    audit_record(actor=other, action="token_issue", target=other)
    client = Client()
    client.force_login(UserFactory(role=Role.MAINTAINER))
    html = client.get(STAFF_PAGE, {"actor": "someone-else"}).content.decode()
    assert "1 event" in html
    assert "token_issue" in html
    assert "release_cut" not in html
    html = client.get(
        STAFF_PAGE, {"action": "release_cut", "target_id": str(events[0].target_id)}
    ).content.decode()
    assert "4 events" in html
    assert client.get(STAFF_PAGE, {"since": "not-a-date"}).status_code == 400


def test_csv_export_neutralises_formula_cells_and_is_itself_audited() -> None:
    """A visitor's user agent is theirs to choose: a formula there must not run in a spreadsheet."""
    maintainer = UserFactory(role=Role.MAINTAINER)
    client = Client(HTTP_USER_AGENT="=cmd|' /C calc'!A0")
    client.force_login(maintainer)
    b"".join(client.get(EXPORT, {"actor": maintainer.email}).streaming_content)  # audited, with the agent
    response = client.get(EXPORT, {"actor": maintainer.email})
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    agents = [row["user_agent"] for row in rows]
    assert "'=cmd|' /C calc'!A0" in agents
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    assert AuditEvent.objects.filter(action="audit_export", actor=maintainer).count() == 2
