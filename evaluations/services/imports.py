"""Replies collected elsewhere (another tool's labelled set) as a completed collection run.

Each model becomes an inactive registry endpoint, reused by later imports of the same model name,
and each reply a finished response with the file and item it came from as its provenance.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from accounts.policy import can_manage_collection, require
from audit.actions import AuditAction
from audit.services import audit_record
from core.bulk import copy_insert
from evaluations.inspect_logs import read_inspect_log
from evaluations.models import (
    CollectionRun,
    Endpoint,
    ModelResponse,
    ResponseOutcome,
    ResponseState,
    RunStatus,
    RunTarget,
)
from querybank.models import Category, Query
from querybank.services import ImportedPrompt, queries_create_imported

IMPORT_BASE_URL = "https://imported.invalid/"


@dataclass(frozen=True)
class ImportedReply:
    key: str  # the importer's own reference to this reply (its item)
    query: Query
    model: str
    text: str
    file: str
    # What the other tool recorded about the reply (an Inspect log's usage, stop reason, scores).
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    raw_reply: dict[str, Any] | None = None
    # The reply's sample number when the importer numbered it (None: the next of its query and model).
    sample_index: int | None = None


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
    *,
    actor: User,
    name: str,
    origin: dict[str, Any],
    replies: Sequence[ImportedReply],
    parameters: dict[str, Any] | None = None,
) -> tuple[CollectionRun, dict[str, int]]:
    """A completed run holding ``replies``; returns it and its responses' ids by reply key. Several replies
    of one model to one query are its samples, in the order given."""
    imported = run_import_start(
        actor=actor,
        name=name,
        origin=origin,
        models=sorted({reply.model for reply in replies}),
        parameters=parameters,
    )
    created = run_import_add(imported=imported, replies=replies)
    run_import_finish(imported=imported, actor=actor)
    return imported.run, dict(zip((reply.key for reply in replies), created, strict=True))


@dataclass
class ImportedRun:
    """A run being imported in batches (``run_import_add``): its targets by model name, and how
    many responses each (query, target) has so far, which numbers the next one's sample."""

    run: CollectionRun
    targets: dict[str, RunTarget]
    origin: dict[str, Any]
    responses: int = 0
    samples: dict[tuple[int, int], int] = field(default_factory=dict)


def run_import_start(
    *,
    actor: User,
    name: str,
    origin: dict[str, Any],
    models: Sequence[str],
    parameters: dict[str, Any] | None = None,
) -> ImportedRun:
    """A completed run with one target per model, to which ``run_import_add`` adds the replies and
    ``run_import_finish`` writes the audit event (all in the caller's transaction)."""
    require(can_manage_collection, actor, message="Only maintainers import collected replies.")
    now = timezone.now()
    run = CollectionRun.objects.create(
        name=f"Imported: {name}"[:200],
        status=RunStatus.COMPLETED,
        created_by=actor,
        selection=origin,
        parameters=parameters or {},
        started_at=now,
        finished_at=now,
    )
    targets: dict[str, RunTarget] = {}
    for model in sorted(models):
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
    return ImportedRun(run=run, targets=targets, origin=origin)


_RESPONSE_COLUMNS = (
    "run_id",
    "query_id",
    "target_id",
    "sample_index",
    "state",
    "outcome",
    "text",
    "resolved_model",
    "finished_at",
    "request",
    "input_tokens",
    "output_tokens",
    "finish_reason",
    "raw_reply",
)


def run_import_add(*, imported: ImportedRun, replies: Sequence[ImportedReply]) -> list[int]:
    """Write ``replies`` (their models among the run's targets) as finished responses, in order;
    returns their ids."""
    run = imported.run
    now = run.finished_at or timezone.now()
    samples = imported.samples
    targets = imported.targets
    finished, collected, empty = (
        str(ResponseState.FINISHED),
        str(ResponseOutcome.COLLECTED),
        str(ResponseOutcome.EMPTY),
    )
    rows = []
    for reply in replies:
        target = targets[reply.model].pk
        query = reply.query.pk
        sample = reply.sample_index
        if sample is None:
            sample = samples.get((query, target), 0)
            samples[(query, target)] = sample + 1
        rows.append(
            (
                run.pk,
                query,
                target,
                sample,
                finished,
                collected if reply.text.strip() else empty,
                reply.text,
                reply.model,
                now,
                {"imported_from": reply.file, "item": reply.key, **reply.provenance},
                max(0, reply.input_tokens),
                max(0, reply.output_tokens),
                reply.finish_reason[:40],
                reply.raw_reply,
            )
        )
    ids = copy_insert(ModelResponse, _RESPONSE_COLUMNS, rows)
    imported.responses += len(ids)
    return ids


def run_import_finish(*, imported: ImportedRun, actor: User) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.RUN_IMPORT,
        target=imported.run,
        details={
            "origin": imported.origin,
            "responses": imported.responses,
            "models": sorted(imported.targets),
        },
    )


@dataclass(frozen=True)
class InspectImportResult:
    run: CollectionRun
    responses: int
    new_queries: int


@transaction.atomic
def inspect_log_import(
    *, actor: User, path: str, category: Category, source: str = ""
) -> InspectImportResult:
    """An Inspect AI evaluation log as a completed collection run: each sample (and epoch) a
    response with its usage, stop reason and model-graded scores; each sample's input a query of
    ``source`` (default ``inspect-<task>``), reused when the same id already holds the same text;
    the task, run, model and generation config as the run's provenance."""
    require(can_manage_collection, actor, message="Only maintainers import collected replies.")
    log = read_inspect_log(path)
    source = source or slugify(f"inspect-{log.task}")[:60]
    file_name = Path(path).name
    wanted: dict[str, str] = {}
    for sample in log.samples:
        if wanted.setdefault(sample.sample_id, sample.prompt) != sample.prompt:
            raise ValidationError(f"{file_name}: sample {sample.sample_id} has two different inputs")
    existing = {q.external_id: q for q in Query.objects.filter(source=source, external_id__in=list(wanted))}
    clash = sorted(key for key, q in existing.items() if q.text != wanted[key])
    if clash:
        raise ValidationError(
            f"{file_name}: sample ids {', '.join(clash[:5])} of source {source!r} already hold another text"
        )
    new = [
        ImportedPrompt(
            external_id=key, text=text, category=category, source_file=file_name[:255], source_row=None
        )
        for key, text in wanted.items()
        if key not in existing
    ]
    queries = {**existing, **queries_create_imported(prompts=new, source=source, actor=actor)}
    origin = {
        "imported_from": [file_name],
        "format": "inspect",
        "task": log.task,
        "task_version": log.task_version,
        "inspect_run_id": log.run_id,
        "eval_id": log.eval_id,
        "created": log.created,
        "status": log.status,
        "model": log.model,
        "model_base_url": log.model_base_url,
        "scorers": log.scorers,
        "dataset": log.dataset,
        "inspect_version": log.inspect_version,
    }
    run, responses = run_import_replies(
        actor=actor,
        name=f"{log.task} ({log.model})",
        origin=origin,
        parameters={"generate_config": log.generate_config},
        replies=[
            ImportedReply(
                key=sample.key,
                query=queries[sample.sample_id],
                model=sample.model,
                text=sample.text,
                file=file_name,
                input_tokens=sample.input_tokens,
                output_tokens=sample.output_tokens,
                finish_reason=sample.stop_reason,
                provenance={"inspect": {"sample_id": sample.sample_id, "epoch": sample.epoch}},
                raw_reply={
                    "inspect": {
                        "scores": sample.scores,
                        "target": sample.target,
                        "metadata": sample.metadata,
                        "error": sample.error,
                    }
                },
            )
            for sample in log.samples
        ],
    )
    audit_record(
        actor=actor,
        action=AuditAction.INSPECT_LOG_IMPORT,
        target=run,
        details={**origin, "responses": len(responses), "new_queries": len(new), "source": source},
    )
    return InspectImportResult(run=run, responses=len(responses), new_queries=len(new))
