"""Importing external judge labels: the whole file or nothing, with file/line/field errors."""

from __future__ import annotations

import hashlib

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.policy import can_manage_judges
from annotations.models import CampaignItem
from annotations.services.campaigns import campaign_data_version_raise
from audit.actions import AuditAction
from audit.services import audit_record
from evaluations.models import ModelResponse
from judging.importers import ExternalLabelRow, JudgeImportRejected, read_judge_label_file
from judging.models import ExternalJudgeLabel, ExternalLabelImport
from querybank.importers import ImportProblem


def external_labels_import(*, actor: User, name: str, raw: bytes, file_format: str) -> ExternalLabelImport:
    if not can_manage_judges(actor):
        raise PermissionDenied("Only maintainers import judge labels.")
    rows = read_judge_label_file(name, raw, file_format)
    digest = hashlib.sha256(raw).hexdigest()
    problems: list[ImportProblem] = []
    if ExternalLabelImport.objects.filter(file_hash=digest).exists():
        raise JudgeImportRejected([ImportProblem(name, None, None, "this file was imported already")])
    response_ids = {r.response for r in rows if r.response is not None}
    known = set(ModelResponse.objects.filter(pk__in=response_ids).values_list("pk", flat=True))
    item_ids = {r.item for r in rows if r.item is not None}
    items = dict(
        CampaignItem.objects.filter(pk__in=item_ids, response__isnull=False).values_list("pk", "response_id")
    )
    resolved: list[tuple[int, ExternalLabelRow]] = []
    seen: dict[tuple[int, str], int] = {}
    for row in rows:
        if row.response is not None and row.response not in known:
            problems.append(ImportProblem(name, row.line, "response", f"no response with id {row.response}"))
            continue
        if row.item is not None and row.item not in items:
            problems.append(ImportProblem(name, row.line, "item", f"no response item with id {row.item}"))
            continue
        if row.response is not None:
            response_id = row.response
        elif row.item is not None:
            response_id = items[row.item]
        else:  # read_judge_label_file refuses a row with neither
            raise ValueError(f"{name}, line {row.line}: neither a response nor an item id")
        key = (response_id, row.field)
        if key in seen:
            problems.append(
                ImportProblem(
                    name,
                    row.line,
                    "field",
                    f"{row.field} of this response is given again (first on line {seen[key]})",
                )
            )
            continue
        seen[key] = row.line
        resolved.append((response_id, row))
    judge = rows[0].judge
    clash = ExternalJudgeLabel.objects.filter(
        judge_name=judge, response_id__in={r for r, _ in resolved}
    ).values_list("response_id", "field")
    clashes = set(clash) & set(seen)
    for response_id, field in sorted(clashes):
        problems.append(
            ImportProblem(
                name,
                seen[(response_id, field)],
                "field",
                f"{judge} already has {field} for response {response_id}",
            )
        )
    if problems:
        raise JudgeImportRejected(problems)
    try:
        with transaction.atomic():
            batch = ExternalLabelImport.objects.create(
                judge_name=judge, file_name=name[:255], file_hash=digest, rows=len(resolved), created_by=actor
            )
            ExternalJudgeLabel.objects.bulk_create(
                ExternalJudgeLabel(
                    batch=batch, judge_name=judge, response_id=response_id, field=row.field,
                    value=row.value, raw_output=row.raw_output,
                )
                for response_id, row in resolved
            )  # fmt: skip
            # Campaigns holding these responses show the judge's labels beside their figures.
            campaign_data_version_raise(
                campaign_ids=CampaignItem.objects.filter(
                    response_id__in={response_id for response_id, _ in resolved}
                ).values("campaign_id")
            )
            audit_record(
                actor=actor, action=AuditAction.JUDGE_LABELS_IMPORT, target=batch,
                details={"judge": judge, "rows": len(resolved), "file": name[:255]},
            )  # fmt: skip
    except IntegrityError:  # a concurrent import of the same file or labels
        raise JudgeImportRejected(
            [ImportProblem(name, None, None, "imported concurrently; nothing changed")]
        ) from None
    return batch
