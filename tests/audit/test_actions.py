"""Audit actions are an enumeration: an event cannot be written under a name nobody declared."""

import pytest

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from core.actors import SYSTEM

pytestmark = pytest.mark.django_db


def test_an_undeclared_action_is_refused_and_nothing_is_written() -> None:
    with pytest.raises(ValueError, match="'label_sbumit' is not an audit action"):
        audit_record(actor=SYSTEM, action="label_sbumit")  # type: ignore[arg-type]
    assert AuditEvent.objects.count() == 0


def test_a_declared_action_is_stored_by_its_value_and_the_system_as_no_person() -> None:
    event = audit_record(actor=SYSTEM, action=AuditAction.DEMO_SEED, details={"n": 1})
    event.refresh_from_db()
    assert (event.action, event.actor_id, event.details) == ("demo_seed", None, {"n": 1})
