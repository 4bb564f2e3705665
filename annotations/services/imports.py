"""Importing another tool's responses and human labels as a closed campaign, all or nothing.

Each model becomes an inactive registry endpoint (reused by later imports of the same name), the
file a completed collection run, each prompt a query of the import's source, each item a
response, each rater an external rater on the labels, and each adjudicated value an imported
gold decision. The result can be scored and compared like any campaign of the platform.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_import_annotations, require
from annotations.importers import (
    AnnotationImportRejected,
    ImportProblem,
    ImportRow,
    ImportRules,
    read_annotation_files,
)
from annotations.models import (
    Adjudication,
    Campaign,
    CampaignItem,
    CampaignStatus,
    GoldSource,
    Guideline,
    Label,
    Rubric,
    RubricTarget,
)
from annotations.services.adjudication import item_agreement_refresh
from audit.actions import AuditAction
from audit.services import audit_record
from core.imports import import_size_check
from core.locks import advisory_lock
from evaluations.services.imports import ImportedReply, run_import_replies
from querybank.models import Category, Query
from querybank.services import ImportedPrompt, queries_create_imported


@dataclass(frozen=True)
class AnnotationImportResult:
    campaign: Campaign
    items: int
    labels: int
    raters: int
    adjudicated: int
    new_queries: int


def annotations_import(
    *,
    files: Sequence[tuple[str, bytes]],
    file_format: str,
    actor: User,
    name: str,
    rubric: Rubric,
    guideline: Guideline,
    default_category: Category,
    source: str = "annotation-import",
) -> AnnotationImportResult:
    """Import ``files`` (name, bytes) in ``file_format`` ("jsonl" or "csv") as a closed campaign.

    Raises ``AnnotationImportRejected`` with every problem (file, line, field); writes nothing then.
    """
    require(can_import_annotations, actor, message="Only maintainers import annotations.")
    if rubric.target != RubricTarget.RESPONSE:
        raise ValueError("Imported annotations rate responses: choose a response rubric.")
    import_size_check(sizes=[(file_name, len(raw)) for file_name, raw in files])
    specs = {spec.name: spec for spec in rubric.specs()}
    slugs = set(Category.objects.values_list("slug", flat=True))
    rows = read_annotation_files(
        files, file_format, rules=ImportRules(fields=specs, category_exists=slugs.__contains__)
    )
    digest = hashlib.sha256()
    for _, raw in files:
        digest.update(hashlib.sha256(raw).digest())
    import_hash = digest.hexdigest()
    file_names = [file_name for file_name, _ in files]

    with transaction.atomic():
        advisory_lock("annotations:import")
        earlier = Campaign.objects.filter(import_hash=import_hash).first()
        if earlier is not None:
            raise AnnotationImportRejected(
                [
                    ImportProblem(
                        file_names[0],
                        None,
                        None,
                        f"these files were already imported as campaign {earlier.name!r}",
                    )
                ]
            )
        categories = {c.slug: c for c in Category.objects.all()}
        by_item: dict[str, list[ImportRow]] = {}
        for row in rows:
            by_item.setdefault(row.item, []).append(row)

        queries, new_queries = _queries(
            rows, source=source, categories=categories, default=default_category, actor=actor
        )
        run, responses = run_import_replies(
            actor=actor,
            name=name,
            origin={"imported_from": file_names, "format": file_format},
            replies=[
                ImportedReply(
                    key=item_key,
                    query=queries[item_rows[0].prompt_id],
                    model=item_rows[0].model,
                    text=item_rows[0].response,
                    file=item_rows[0].file,
                )
                for item_key, item_rows in by_item.items()
            ],
        )

        raters_per_item = {
            key: {row.rater for row in item_rows if row.value is not None}
            for key, item_rows in by_item.items()
        }
        overlap = max(1, *(len(r) for r in raters_per_item.values()))
        campaign = Campaign.objects.create(
            name=name[:200],
            target=RubricTarget.RESPONSE,
            status=CampaignStatus.CLOSED,
            rubric=rubric,
            guideline=guideline,
            overlap=overlap,
            blind=True,
            seed=secrets.token_hex(16),
            created_by=actor,
            imported_from=", ".join(file_names)[:255],
            import_hash=import_hash,
            closed_at=timezone.now(),
            selection={"runs": [run.pk], "imported_from": file_names},
        )
        items: dict[str, CampaignItem] = {}
        for position, (item_key, raters) in enumerate(raters_per_item.items()):
            response = responses[item_key]
            items[item_key] = CampaignItem.objects.create(
                campaign=campaign,
                query=response.query,
                response=response,
                sort_key=position,
                stratum=f"t{response.target_id}:c{response.query.category_id}",
                required_labels=overlap,
                label_count=len(raters),
            )
        values: dict[tuple[str, str], dict[str, object]] = {}
        for row in rows:
            if row.value is not None:
                values.setdefault((row.item, row.rater), {})[row.field] = row.value
        Label.objects.bulk_create(
            Label(
                item=items[item_key],
                campaign=campaign,
                external_rater=rater,
                rubric=rubric,
                values=label_values,
            )
            for (item_key, rater), label_values in values.items()
        )
        adjudicated = 0
        for item_key, item_rows in by_item.items():
            item = items[item_key]
            item_agreement_refresh(item=item, actor=actor)
            gold = {row.field: row.adjudicated for row in item_rows if row.adjudicated is not None}
            if gold:
                Adjudication.objects.create(
                    item=item,
                    values=gold,
                    rationale=f"Imported from {item_rows[0].file}",
                    rubric=rubric,
                    imported=True,
                )
                CampaignItem.objects.filter(pk=item.pk).update(
                    gold_values=gold, gold_source=GoldSource.ADJUDICATION
                )
                adjudicated += 1
        result = AnnotationImportResult(
            campaign=campaign,
            items=len(items),
            labels=len(values),
            raters=len({row.rater for row in rows}),
            adjudicated=adjudicated,
            new_queries=new_queries,
        )
        audit_record(
            actor=actor,
            action=AuditAction.ANNOTATIONS_IMPORT,
            target=campaign,
            details={
                "files": file_names,
                "format": file_format,
                "hash": import_hash,
                "items": result.items,
                "labels": result.labels,
                "raters": result.raters,
                "adjudicated": adjudicated,
                "models": sorted({row.model for row in rows}),
                "run": run.pk,
                "new_queries": new_queries,
            },
        )
    return result


def _queries(
    rows: list[ImportRow], *, source: str, categories: dict[str, Category], default: Category, actor: User
) -> tuple[dict[str, Query], int]:
    """The query of each prompt id: an existing one of ``source`` (same text), or a new one."""
    wanted: dict[str, ImportRow] = {}
    for row in rows:
        wanted.setdefault(row.prompt_id, row)
    existing = {q.external_id: q for q in Query.objects.filter(source=source, external_id__in=list(wanted))}
    problems = [
        ImportProblem(
            row.file, row.line, "prompt", f"prompt id {key!r} of source {source!r} already holds another text"
        )
        for key, row in wanted.items()
        if key in existing and existing[key].text != row.prompt
    ]
    if problems:
        raise AnnotationImportRejected(problems)
    new = [
        ImportedPrompt(
            external_id=key,
            text=row.prompt,
            category=categories.get(row.category or "", default),
            source_file=row.file,
            source_row=row.line,
        )
        for key, row in wanted.items()
        if key not in existing
    ]
    existing.update(queries_create_imported(prompts=new, source=source, actor=actor))
    return existing, len(new)
