"""Replies collected elsewhere (another tool's labelled set) as a completed collection run.

Each model becomes an inactive registry endpoint, reused by later imports of the same model name,
and each reply a finished response with the file and item it came from as its provenance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from accounts.policy import can_manage_collection, require
from audit.actions import AuditAction
from audit.services import audit_record
from evaluations.models import (
    CollectionRun,
    Endpoint,
    ModelResponse,
    ResponseOutcome,
    ResponseState,
    RunStatus,
    RunTarget,
)
from querybank.models import Query

IMPORT_BASE_URL = "https://imported.invalid/"


@dataclass(frozen=True)
class ImportedReply:
    key: str  # the importer's own reference to this reply (its item)
    query: Query
    model: str
    text: str
    file: str


def _endpoint_for(model: str) -> Endpoint:
    base = "imported-" + (slugify(model)[:60] or hashlib.sha256(model.encode()).hexdigest()[:12])
    endpoint = Endpoint.objects.filter(slug=base).first()
    if endpoint is not None and endpoint.model_name == model:
        return endpoint
    if endpoint is not None:  # a different model slugifies the same way: keep them apart
        base = f"{base[:60]}-{hashlib.sha256(model.encode()).hexdigest()[:10]}"
        endpoint = Endpoint.objects.filter(slug=base).first()
        if endpoint is not None:
            return endpoint
    return Endpoint.objects.create(
        slug=base, name=model[:160], base_url=IMPORT_BASE_URL, model_name=model, is_active=False
    )


@transaction.atomic
def run_import_replies(
    *, actor: User, name: str, origin: dict[str, Any], replies: Sequence[ImportedReply]
) -> tuple[CollectionRun, dict[str, ModelResponse]]:
    """A completed run holding ``replies``; returns it and its responses by reply key. Several replies
    of one model to one query are its samples, in the order given."""
    require(can_manage_collection, actor, message="Only maintainers import collected replies.")
    now = timezone.now()
    run = CollectionRun.objects.create(
        name=f"Imported: {name}"[:200],
        status=RunStatus.COMPLETED,
        created_by=actor,
        selection=origin,
        started_at=now,
        finished_at=now,
    )
    targets: dict[str, RunTarget] = {}
    for model in sorted({reply.model for reply in replies}):
        endpoint = _endpoint_for(model)
        targets[model] = RunTarget.objects.create(
            run=run,
            endpoint=endpoint,
            label=model[:200],
            config={
                "input_guard": None,
                "output_guard": None,
                "model": {"name": endpoint.name, "slug": endpoint.slug, "model_name": model},
            },
        )
    samples: dict[tuple[int, int], int] = {}
    rows: list[ModelResponse] = []
    for reply in replies:
        target = targets[reply.model]
        sample = samples.get((reply.query.pk, target.pk), 0)
        samples[(reply.query.pk, target.pk)] = sample + 1
        rows.append(
            ModelResponse(
                run=run,
                query=reply.query,
                target=target,
                sample_index=sample,
                state=ResponseState.FINISHED,
                outcome=ResponseOutcome.COLLECTED if reply.text.strip() else ResponseOutcome.EMPTY,
                text=reply.text,
                resolved_model=reply.model,
                finished_at=now,
                request={"imported_from": reply.file, "item": reply.key},
            )
        )
    created = ModelResponse.objects.bulk_create(rows)
    audit_record(
        actor=actor,
        action=AuditAction.RUN_IMPORT,
        target=run,
        details={"origin": origin, "responses": len(created), "models": sorted(targets)},
    )
    return run, {reply.key: response for reply, response in zip(replies, created, strict=True)}
