"""Audit events get client address, user agent and a hash chain; existing events are chained in id
order before PostgreSQL starts refusing UPDATE and DELETE on the table."""

import django.utils.timezone
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models

from audit.chain import GENESIS, event_digest


def chain_existing(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    previous = GENESIS
    for event in AuditEvent.objects.order_by("id").iterator():
        event.prev_hash = previous
        event.hash = event_digest(
            previous,
            {
                "actor_id": event.actor_id,
                "action": event.action,
                "target_type": event.target_type,
                "target_id": event.target_id,
                "details": event.details,
                "created_at": event.created_at,
                "ip_address": event.ip_address,
                "user_agent": event.user_agent,
            },
        )
        event.save(update_fields=["prev_hash", "hash"])
        previous = event.hash


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="ip_address",
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="user_agent",
            field=models.CharField(blank=True, max_length=400),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="created_at",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
        pgtrigger.migrations.AddTrigger(
            model_name="auditevent",
            trigger=pgtrigger.compiler.Trigger(
                name="audit_append_only",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;",
                    hash="04f8f2f6fab2cf336bff74f00537adf876acce3f",
                    operation="UPDATE OR DELETE",
                    pgid="pgtrigger_audit_append_only_f6eda",
                    table="audit_auditevent",
                    when="BEFORE",
                ),
            ),
        ),
    ]
