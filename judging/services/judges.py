"""Judge templates (new versions only, never edits) and judge configurations."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from accounts.models import User
from accounts.policy import can_manage_judges
from audit.actions import AuditAction
from audit.services import audit_record
from evaluations.models import Endpoint
from judging.models import Judge, JudgeTemplate
from judging.prompts import content_hash, template_errors


def _require(actor: User) -> None:
    if not can_manage_judges(actor):
        raise PermissionDenied("Only maintainers manage judges.")


@transaction.atomic
def template_version_create(
    *,
    actor: User,
    slug: str,
    title: str,
    prompt: str,
    parser: str,
    fields: Sequence[str],
    system_prompt: str = "",
    description: str = "",
) -> JudgeTemplate:
    """A new version of template ``slug`` (version 1 when the slug is new)."""
    _require(actor)
    fields = list(fields)
    errors = template_errors(prompt=prompt, parser=parser, fields=fields)
    if errors:
        raise ValidationError(errors)
    digest = content_hash(prompt=prompt, system_prompt=system_prompt, parser=parser, fields=fields)
    # Lock the slug's versions so two maintainers saving at once get versions n+1 and n+2.
    existing = list(JudgeTemplate.objects.select_for_update().filter(slug=slug).order_by("-version"))
    if existing and existing[0].content_hash == digest:
        raise ValidationError({"prompt": f"Identical to version {existing[0].version}: nothing to save."})
    version = (JudgeTemplate.objects.filter(slug=slug).aggregate(v=Max("version"))["v"] or 0) + 1
    template = JudgeTemplate(
        slug=slug,
        version=version,
        title=title,
        description=description,
        system_prompt=system_prompt,
        prompt=prompt,
        parser=parser,
        fields=fields,
        content_hash=digest,
        created_by=actor,
    )
    template.full_clean()
    template.save()
    audit_record(
        actor=actor,
        action=AuditAction.JUDGE_TEMPLATE_CREATE,
        target=template,
        details={"slug": slug, "version": version, "hash": digest},
    )
    return template


@transaction.atomic
def judge_create(
    *,
    actor: User,
    slug: str,
    name: str,
    endpoint: Endpoint,
    template: JudgeTemplate,
    temperature: float | None = 0.0,
    seed: int | None = None,
    max_tokens: int | None = None,
    samples: int = 1,
) -> Judge:
    _require(actor)
    judge = Judge(
        slug=slug,
        name=name,
        endpoint=endpoint,
        template=template,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        samples=samples,
        created_by=actor,
    )
    judge.full_clean()
    if not endpoint.is_active:
        raise ValidationError({"endpoint": "The endpoint is not active."})
    judge.save()
    audit_record(
        actor=actor,
        action=AuditAction.JUDGE_CREATE,
        target=judge,
        details={"template": f"{template.slug} v{template.version}", "endpoint": endpoint.slug},
    )
    return judge


@transaction.atomic
def judge_template_update(*, actor: User, judge: Judge, template: JudgeTemplate) -> Judge:
    """Point a judge at another template version. Its trust stays with the old version (void)."""
    _require(actor)
    old = judge.template
    judge.template = template
    judge.save(update_fields=["template"])
    audit_record(
        actor=actor,
        action=AuditAction.JUDGE_TEMPLATE_UPDATE,
        target=judge,
        details={"from": f"{old.slug} v{old.version}", "to": f"{template.slug} v{template.version}"},
    )
    return judge
