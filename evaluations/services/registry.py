"""Registering endpoints and pipelines."""

from typing import Any

from django.db import transaction

from accounts.models import User
from accounts.policy import can_manage_collection, require
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SystemActor
from evaluations.models import Endpoint, Pipeline

_MAINTAINERS_ONLY = "Only maintainers register endpoints and pipelines."


@transaction.atomic
def endpoint_create(*, actor: User | SystemActor, **fields: Any) -> Endpoint:
    require(can_manage_collection, actor, message=_MAINTAINERS_ONLY, allow_system=True)
    endpoint = Endpoint(**fields)
    endpoint.full_clean()
    endpoint.save()
    audit_record(
        actor=actor,
        action=AuditAction.ENDPOINT_CREATE,
        target=endpoint,
        details={"slug": endpoint.slug, "base_url": endpoint.base_url, "model": endpoint.model_name},
    )
    return endpoint


@transaction.atomic
def endpoint_update(*, actor: User | SystemActor, endpoint: Endpoint, **fields: Any) -> Endpoint:
    require(can_manage_collection, actor, message=_MAINTAINERS_ONLY, allow_system=True)
    changed = {name: value for name, value in fields.items() if getattr(endpoint, name) != value}
    for name, value in changed.items():
        setattr(endpoint, name, value)
    endpoint.full_clean()
    endpoint.save()
    audit_record(
        actor=actor, action=AuditAction.ENDPOINT_UPDATE, target=endpoint, details={"fields": sorted(changed)}
    )
    return endpoint


@transaction.atomic
def pipeline_create(*, actor: User | SystemActor, **fields: Any) -> Pipeline:
    require(can_manage_collection, actor, message=_MAINTAINERS_ONLY, allow_system=True)
    pipeline = Pipeline(**fields)
    pipeline.full_clean()
    pipeline.save()
    audit_record(
        actor=actor, action=AuditAction.PIPELINE_CREATE, target=pipeline, details={"slug": pipeline.slug}
    )
    return pipeline
