"""Writes for releases: cutting one (a new immutable version), building its bundle, approving the
public tier. The build runs in a Celery task (``releases.tasks.release_build_task``)."""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from accounts import policy
from accounts.models import User
from annotations.models import Campaign, CampaignItem, CampaignStatus
from audit.actions import AuditAction
from audit.services import audit_record
from releases.builder import BundleWriter, croissant
from releases.models import Release, ReleaseFile, ReleaseStatus, Tier
from releases.models.releases import DATASHEET_SECTIONS
from releases.tables import guidelines_of, table_specs

SAMPLE_MAX = 50
PROGRESS_SECONDS = 0.5  # how often a build saves how many rows it has written
LICENSE = "Restricted tier: MedHarm data use agreement. Public tier: CC-BY-4.0."


def release_cut(
    *,
    actor: User,
    slug: str,
    title: str,
    changelog: str,
    datasheet: dict[str, str],
    campaign_ids: list[int],
    sample_query_ids: list[int],
    reviewer_ids: list[int] | None = None,
) -> Release:
    if not policy.can_cut_releases(actor):
        raise PermissionDenied("Only a benchmark maintainer cuts releases.")
    missing = [key for key, _ in DATASHEET_SECTIONS if not (datasheet.get(key) or "").strip()]
    if missing:
        raise ValidationError(
            {"datasheet": f"Answer every datasheet section; missing: {', '.join(missing)}."}
        )
    if not (changelog or "").strip():
        raise ValidationError({"changelog": "Say what this release holds or changes."})
    with transaction.atomic(durable=True):
        campaigns = list(Campaign.objects.filter(pk__in=campaign_ids))
        if not campaigns or len(campaigns) != len(set(campaign_ids)):
            raise ValidationError({"campaigns": "Choose one or more existing campaigns."})
        still_open = [c.name for c in campaigns if c.status != CampaignStatus.CLOSED]
        if still_open:
            raise ValidationError(
                {"campaigns": f"Only closed campaigns are released; open: {', '.join(still_open)}."}
            )
        sample = sorted(set(sample_query_ids))
        if len(sample) > SAMPLE_MAX:
            raise ValidationError(
                {"sample_query_ids": f"A public sample holds at most {SAMPLE_MAX} queries."}
            )
        in_campaigns = set(
            CampaignItem.objects.filter(campaign__in=campaigns, query_id__in=sample).values_list(
                "query_id", flat=True
            )
        )
        if set(sample) - in_campaigns:
            raise ValidationError(
                {"sample_query_ids": f"Not in the released campaigns: {sorted(set(sample) - in_campaigns)}."}
            )
        version = (Release.objects.filter(slug=slug).aggregate(v=Max("version"))["v"] or 0) + 1
        release = Release(
            slug=slug,
            version=version,
            title=title,
            changelog=changelog.strip(),
            datasheet={key: datasheet[key].strip() for key, _ in DATASHEET_SECTIONS},
            sample_query_ids=sample,
            created_by=actor,
        )
        release.full_clean()
        release.save()
        release.campaigns.set(campaigns)
        if reviewer_ids:
            release.reviewers.set(User.objects.filter(pk__in=reviewer_ids, is_active=True))
        audit_record(
            actor=actor,
            action=AuditAction.RELEASE_CUT,
            target=release,
            details={"slug": slug, "version": version, "campaigns": sorted(campaign_ids), "sample": sample},
        )
        from releases.tasks import release_build_task

        transaction.on_commit(lambda: release_build_task.delay(release.pk))
    return release


def _score_rows(release: Release) -> list[dict[str, Any]]:
    """Aggregate safety scores (gold labels) of each response campaign: small, held in memory."""
    rows: list[dict[str, Any]] = []
    if not release.campaigns.filter(target="response").exists():
        return rows  # query campaigns have no safety scores (and the statistics stack stays unloaded)
    from scoring.figures.scores import SourceUnavailableError, campaign_scores
    from scoring.selectors.snapshot import campaign_data

    for campaign in release.campaigns.order_by("pk"):
        if campaign.target != "response":
            continue
        try:
            bundle = campaign_scores(campaign_data(campaign=campaign), "gold", resamples=1000, seed=20240601)
        except SourceUnavailableError:
            continue
        for (target, category), cell in bundle.scores.cells.items():
            for metric, estimate in cell.figures.items():
                rows.append(
                    {
                        "campaign_id": campaign.pk,
                        "target": target or "(all)",
                        "category": category or "(all)",
                        "metric": metric,
                        "value": estimate.value,
                        "ci_low": estimate.ci_low,
                        "ci_high": estimate.ci_high,
                        "numerator": estimate.details.get("numerator")
                        if estimate.value is not None
                        else None,
                        "denominator": estimate.details.get("denominator")
                        if estimate.value is not None
                        else None,
                        "interval": estimate.interval or "",
                        "note": estimate.reason or estimate.ci_reason or "",
                    }
                )
    return rows


def datasheet_markdown(release: Release) -> str:
    lines = [f"# Datasheet: {release.title} (version {release.version})", ""]
    for key, question in DATASHEET_SECTIONS:
        lines += [f"## {question.split(':')[0]}", "", f"*{question}*", "", release.datasheet.get(key, ""), ""]
    return "\n".join(lines)


def _readme(release: Release, tier: str) -> str:
    return (
        f"# {release.title} — version {release.version} ({tier} tier)\n\n"
        "Tables are in `parquet/<table>/`, `jsonl/<table>.jsonl` and `csv/<table>.csv` (CSV text cells that\n"
        "start with = + - @ are prefixed with an apostrophe; Parquet and JSONL hold the exact values).\n\n"
        "```python\nimport datasets\n"
        "labels = datasets.load_dataset(\n"
        '    "parquet", data_files={"train": "parquet/labels/*.parquet"}\n'
        ')["train"]\n'
        "```\n\nOne table per call: the tables have different columns.\n\n"
        "`judge_labels` (restricted tier) holds MACHINE labels: values of LLM judges trusted for a field\n"
        "after an audit against the clinicians (judge, template version, field, value; `label_source`\n"
        "says so on every row). The clinicians' labels are `labels`; the gold labels `adjudications`.\n\n"
        "`manifest.json` lists the SHA-256 of every file; `croissant.json` is Croissant 1.0 metadata;\n"
        "`datasheet.md` answers Gebru et al.'s questions; `CHANGELOG.md` says what changed.\n"
    )


def release_build(*, release_id: int) -> Release:
    """Build the bundle of a release that is building; idempotent for a release already built."""
    release = Release.objects.get(pk=release_id)
    if release.status != ReleaseStatus.BUILDING:
        return release
    specs = table_specs(release, score_rows=_score_rows(release), sample_ids=list(release.sample_query_ids))
    total = sum(spec.count() for spec in specs)
    Release.objects.filter(pk=release.pk).update(rows_total=total, rows_done=0)

    unsaved = {"rows": 0, "at": time.monotonic()}

    def progress_save() -> None:
        if unsaved["rows"]:
            Release.objects.filter(pk=release.pk).update(rows_done=F("rows_done") + unsaved["rows"])
        unsaved.update(rows=0, at=time.monotonic())

    def progress(rows: int) -> None:
        # Saved about every half second, not per batch: an UPDATE per 5,000-row batch would also
        # wait each time for the COPY of the next page, which holds the connection meanwhile.
        unsaved["rows"] += rows
        if time.monotonic() - unsaved["at"] >= PROGRESS_SECONDS:
            progress_save()

    prefix = f"{settings.RELEASES_STORAGE_PREFIX}/{release.slug}/v{release.version}"
    writer = BundleWriter(
        storage=default_storage, prefix=prefix, batch_rows=settings.RELEASE_BATCH_ROWS, on_rows=progress
    )
    try:
        for spec in specs:
            writer.write_table(spec, spec.tiers)
        progress_save()
        guidelines = guidelines_of(release)
        for tier in (Tier.PUBLIC, Tier.RESTRICTED):
            for guideline in guidelines:
                writer.write_text(
                    tier=tier,
                    name=f"{tier}/guidelines/{guideline.slug}-v{guideline.version}.md",
                    text=guideline.body,
                    file_format="markdown",
                )
            writer.write_text(
                tier=tier,
                name=f"{tier}/datasheet.md",
                text=datasheet_markdown(release),
                file_format="markdown",
            )
            writer.write_text(
                tier=tier,
                name=f"{tier}/CHANGELOG.md",
                text=f"# Version {release.version}\n\n{release.changelog}\n",
                file_format="markdown",
            )
            writer.write_text(
                tier=tier, name=f"{tier}/README.md", text=_readme(release, tier), file_format="markdown"
            )
            tier_specs = [s for s in specs if tier in s.tiers]
            metadata = croissant(
                name=f"{release.slug}-{tier}",
                description=f"{release.title} ({tier} tier)",
                version=f"{release.version}.0.0",
                license_text=LICENSE,
                url=f"{settings.SITE_URL}/releases/{release.pk}/",
                files=writer.files,
                specs=tier_specs,
                tier=tier,
                date_published=timezone.now().date().isoformat(),
            )
            writer.write_text(
                tier=tier,
                name=f"{tier}/croissant.json",
                text=json.dumps(metadata, indent=2),
                file_format="json",
            )
            manifest = {
                "release": release.slug,
                "version": release.version,
                "tier": tier,
                "files": {
                    f.name.removeprefix(f"{tier}/"): {"sha256": f.sha256, "size": f.size, "rows": f.rows}
                    for f in sorted(writer.files, key=lambda f: f.name)
                    if f.tier == tier
                },
            }
            manifest_file = writer.write_text(
                tier=tier,
                name=f"{tier}/manifest.json",
                text=json.dumps(manifest, indent=2, sort_keys=True),
                file_format="json",
            )
        with transaction.atomic(durable=True):
            ReleaseFile.objects.bulk_create(
                ReleaseFile(
                    release=release,
                    tier=f.tier,
                    name=f.name,
                    storage_name=f.storage_name,
                    table=f.table,
                    file_format=f.file_format,
                    size=f.size,
                    sha256=f.sha256,
                    rows=f.rows,
                )
                for f in writer.files
            )
            Release.objects.filter(pk=release.pk).update(
                status=ReleaseStatus.READY, built_at=timezone.now(), manifest_sha256=manifest_file.sha256
            )
            audit_record(
                actor=None,
                action=AuditAction.RELEASE_BUILT,
                target=release,
                details={"files": len(writer.files), "rows": total, "manifest_sha256": manifest_file.sha256},
            )
    except Exception as exc:
        with transaction.atomic():
            Release.objects.filter(pk=release.pk).update(
                status=ReleaseStatus.FAILED, failure_reason=repr(exc)[:2000]
            )
            audit_record(
                actor=None,
                action=AuditAction.RELEASE_BUILT,
                target=release,
                details={"failed": repr(exc)[:500]},
            )
        raise
    finally:
        writer.close()
    release.refresh_from_db()
    return release


def release_access_record(
    *, actor: User, action: AuditAction, release: Release, details: dict[str, Any]
) -> None:
    """One audit event for one read of release data (a page view, a download, an API read).

    The caller has checked the reader may (``can_access_restricted`` or its selector twin): the
    record is the trail, written before the data leaves. It is committed before the data leaves and
    chained by the next sealer (``audit.services``: a read does not pay for a second commit)."""
    # One INSERT, committed on its own (autocommit): nothing else to hold with it, no seal of its own.
    audit_record(actor=actor, action=action, target=release, details=details, seal=False)


def release_public_approve(*, actor: User, release_id: int) -> Release:
    """The data committee approves the public tier (with its sample): it becomes downloadable by anyone."""
    if not policy.can_approve_public_tier(actor):
        raise PermissionDenied("Only the data committee approves a public tier.")
    with transaction.atomic(durable=True):
        release = Release.objects.select_for_update().get(pk=release_id)
        if release.status != ReleaseStatus.READY:
            raise ValidationError("Only a built release can be published.")
        if release.public_approved_at is not None:
            raise ValidationError("The public tier of this release is already approved.")
        release.public_approved_at = timezone.now()
        release.public_approved_by = actor
        release.save(update_fields=["public_approved_at", "public_approved_by"])
        audit_record(
            actor=actor,
            action=AuditAction.RELEASE_PUBLISH,
            target=release,
            details={"sample": release.sample_query_ids},
        )
    return release
