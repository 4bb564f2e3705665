"""Registering endpoints and pipelines."""

from decimal import Decimal
from typing import Any, Required, TypedDict, Unpack

from django.db import transaction

from accounts.models import User
from accounts.policy import can_manage_collection, require
from audit.actions import AuditAction
from audit.services import audit_record
from core.actors import SystemActor
from evaluations.models import Endpoint, Pipeline

_MAINTAINERS_ONLY = "Only maintainers register endpoints and pipelines."


class _EndpointSettings(TypedDict, total=False):
    """An endpoint's fields that have defaults, by name and type (the model validates values)."""

    kind: str
    family: str
    guard_format: str
    base_model: Endpoint | None
    api_key_env: str
    default_parameters: dict[str, Any]
    max_concurrency: int
    requests_per_minute: int | None
    tokens_per_minute: int | None
    timeout_seconds: float
    price_input_per_million: Decimal
    price_output_per_million: Decimal
    is_active: bool


class EndpointFields(_EndpointSettings):
    """A new endpoint: the four fields it cannot lack, and any of the others."""

    slug: str
    name: str
    base_url: str
    model_name: str


class EndpointChanges(_EndpointSettings, total=False):
    """An update: any of an endpoint's fields."""

    slug: str
    name: str
    base_url: str
    model_name: str


class PipelineFields(TypedDict, total=False):
    slug: Required[str]
    name: Required[str]
    model: Required[Endpoint]
    input_guard: Endpoint | None
    output_guard: Endpoint | None


@transaction.atomic
def endpoint_create(*, actor: User | SystemActor, **fields: Unpack[EndpointFields]) -> Endpoint:
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
def endpoint_update(
    *, actor: User | SystemActor, endpoint: Endpoint, **fields: Unpack[EndpointChanges]
) -> Endpoint:
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
def pipeline_create(*, actor: User | SystemActor, **fields: Unpack[PipelineFields]) -> Pipeline:
    require(can_manage_collection, actor, message=_MAINTAINERS_ONLY, allow_system=True)
    pipeline = Pipeline(**fields)
    pipeline.full_clean()
    pipeline.save()
    audit_record(
        actor=actor, action=AuditAction.PIPELINE_CREATE, target=pipeline, details={"slug": pipeline.slug}
    )
    return pipeline
