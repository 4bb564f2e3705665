"""The management commands that read or write the database run on the embedded SQLite default too
(``portable``: bin/test runs this on PostgreSQL and again on SQLite): the audit chain's check, a
collection run's status and export, and an Inspect log's import. (``import_queries``,
``export_queries`` and ``import_annotations`` have portable tests of their own; ``agreement`` never
touches the database.)"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import pgtrigger
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AuditEvent
from evaluations.models import CollectionRun
from tests.scoring.factories import ScoringWorld, scoring_world

pytestmark = [pytest.mark.django_db, pytest.mark.portable]

AUDIT_TRIGGERS = ("audit.AuditEvent:audit_seal_only", "audit.AuditEvent:audit_no_delete")


@pytest.fixture
def world(db: None) -> ScoringWorld:
    return scoring_world(close=True)


def _command(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _triggers_off() -> contextlib.AbstractContextManager[None]:
    """PostgreSQL refuses any change to a sealed event; SQLite has no such trigger to lift."""
    if connection.vendor == "postgresql":
        return pgtrigger.ignore(*AUDIT_TRIGGERS)
    return contextlib.nullcontext()


def test_audit_verify_checks_the_chain_and_finds_an_altered_event(world: ScoringWorld) -> None:
    events = AuditEvent.objects.count()
    assert events > 20  # the world's services each left theirs
    assert f"{events} events, chain intact" in _command("audit_verify")
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()  # the command sealed them all
    altered = AuditEvent.objects.order_by("seq")[5]
    with _triggers_off():
        AuditEvent.objects.filter(pk=altered.pk).update(details={"altered": True})
    with pytest.raises(CommandError, match="1 problem"):
        _command("audit_verify")


def test_collection_run_status_and_export(world: ScoringWorld, tmp_path: Path) -> None:
    run = world.run
    status = _command("collection_run", "status", str(run.pk))
    assert f"run {run.pk} 'Scoring fixture run': completed" in status
    assert "10/10 finished" in status
    assert "collected: 8" in status
    target = tmp_path / "responses.csv"
    _command("collection_run", "export", str(run.pk), "--format", "csv", "--output", str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert sorted(row["outcome"] for row in rows) == ["collected"] * 8 + ["content_filter", "error"]


def test_an_inspect_log_imports(db: None, tmp_path: Path) -> None:
    pytest.importorskip("inspect_ai.log")  # a test dependency: bin/test installs it
    from inspect_ai.log import write_eval_log

    from accounts.roles import Role
    from tests.evaluations.test_inspect_import import _log
    from tests.factories import UserFactory

    path = tmp_path / "probe.eval"
    write_eval_log(_log(), str(path))
    maintainer = UserFactory(role=Role.MAINTAINER)
    out = _command("import_inspect_log", str(path), "--actor", maintainer.email)
    assert "4 responses, 2 new prompts" in out
    run = CollectionRun.objects.get()
    assert (run.status, run.responses.count()) == ("completed", 4)
