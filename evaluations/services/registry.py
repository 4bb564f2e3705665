"""Registering endpoints and pipelines."""

from typing import Any

from django.db import transaction

from accounts.models import User
from audit.services import audit_record
from evaluations.models import Endpoint, Pipeline


@transaction.atomic
def endpoint_create(*, actor: User | None, **fields: Any) -> Endpoint:
    endpoint = Endpoint(**fields)
    endpoint.full_clean()
    endpoint.save()
    audit_record(
        actor=actor,
        action="endpoint_create",
        target=endpoint,
        details={"slug": endpoint.slug, "base_url": endpoint.base_url, "model": endpoint.model_name},
    )
    return endpoint


@transaction.atomic
def endpoint_update(*, actor: User | None, endpoint: Endpoint, **fields: Any) -> Endpoint:
    changed = {name: value for name, value in fields.items() if getattr(endpoint, name) != value}
    for name, value in changed.items():
        setattr(endpoint, name, value)
    endpoint.full_clean()
    endpoint.save()
    audit_record(actor=actor, action="endpoint_update", target=endpoint, details={"fields": sorted(changed)})
    return endpoint


@transaction.atomic
def pipeline_create(*, actor: User | None, **fields: Any) -> Pipeline:
    pipeline = Pipeline(**fields)
    pipeline.full_clean()
    pipeline.save()
    audit_record(actor=actor, action="pipeline_create", target=pipeline, details={"slug": pipeline.slug})
    return pipeline
